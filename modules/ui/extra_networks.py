"""The Extra Networks panel of a generating tab: cards for textual-inversion embeddings and for every
extra network whose handler lists cards (the LoRA extension's ``ExtraNetwork.extra["cards"]``).

The panel opens with the "Show/hide extra networks" button under Generate and lists the cards then
(and on Refresh). Clicking a card adds its text to the prompt, or takes it out again when it is already
there, as A1111's cards do; a network card adds ``<name:file:multiplier>`` with the multiplier from the
"extra_networks_default_multiplier" setting at the time of the click.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image, ImageDraw

from modules.runtime import Runtime
from modules.ui import icons

MULTIPLIER_KEY = "extra_networks_default_multiplier"
SEPARATOR = " "  # A1111's default "extra_networks_add_text_separator"
PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
CARD_SIZE = 192
# Cards keep their size however few there are (Gradio stretches a gallery's columns to fill the row).
CSS = """
.extra-network-cards .grid-container {
    grid-template-columns: repeat(auto-fill, minmax(120px, 160px)) !important;
}
"""
# The network part of a tag as A1111's card script matches it: "<lora:name:0.8>" -> "lora:name".
_TAG = re.compile(r"^<([^:^>]+:[^:]+):[\d.]+>$")


@dataclass(frozen=True)
class Card:
    name: str
    network: str | None  # None: a textual-inversion embedding (its name is the prompt text)
    preview: str | None
    path: str | None = None  # the network's file, for sorting by date


def _modified(card: Card) -> float:
    try:
        return Path(card.path).stat().st_mtime if card.path else 0.0
    except OSError:
        return 0.0


# The panel's sort choices (A1111 offers default order, name and dates); the first is the default.
SORTS: dict[str, Callable[[list[Card]], list[Card]]] = {
    "Default order": list,
    "Name": lambda cards: sorted(cards, key=lambda c: c.name.lower()),
    "Name, Z-A": lambda cards: sorted(cards, key=lambda c: c.name.lower(), reverse=True),
    "Newest first": lambda cards: sorted(cards, key=_modified, reverse=True),
}


def shown_cards(cards: list[Card], search: str, sort: str) -> list[Card]:
    """The cards whose name contains every word of ``search`` (any case), in ``sort`` order."""
    words = (search or "").lower().split()
    found = [card for card in cards if all(word in card.name.lower() for word in words)]
    return SORTS.get(sort, list)(found)


@dataclass
class CardPage:
    """One tab of the panel: a title, how to list its cards and how to rescan their files."""

    title: str
    slug: str
    cards: Callable[[], list[Card]]
    refresh: Callable[[], None]


def preview_beside(path: Path | None) -> str | None:
    """A1111's preview lookup: <stem>.<ext> or <stem>.preview.<ext> next to the file."""
    if path is None:
        return None
    stem = Path(path).with_suffix("")
    for middle in ("", ".preview"):
        for suffix in PREVIEW_SUFFIXES:
            candidate = stem.with_name(stem.name + middle + suffix)
            if candidate.is_file():
                return str(candidate)
    return None


def embedding_page(runtime: Runtime) -> CardPage:
    def cards() -> list[Card]:
        found = runtime.embeddings.embeddings.values()
        return [Card(e.name, None, preview_beside(e.path), str(e.path) if e.path else None) for e in found]

    return CardPage("Textual Inversion", "textual_inversion", cards, runtime.embeddings.load)


def network_pages(runtime: Runtime) -> list[CardPage]:
    """A page per extra network that lists cards; aliases sharing one listing (lora/lyco) appear once."""
    pages, seen = [], set()
    for name, network in runtime.extensions.extra_networks.items():
        list_cards = network.extra.get("cards")
        if list_cards is None or id(list_cards) in seen:
            continue
        seen.add(id(list_cards))
        rescan = network.extra.get("refresh")
        pages.append(
            CardPage(
                network.extra.get("title", name.capitalize()),
                _slug(name),
                lambda n=name, f=list_cards: [
                    Card(c["name"], n, c.get("preview"), c.get("path")) for c in f(runtime.paths)
                ],
                (lambda f=rescan: f(runtime.paths)) if rescan else (lambda: None),
            )
        )
    return pages


def pages(runtime: Runtime) -> list[CardPage]:
    return [embedding_page(runtime), *network_pages(runtime)]


def multiplier_text(value: float) -> str:
    """The multiplier as A1111's page writes it: JavaScript number formatting, so 1.0 is "1"."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def card_text(card: Card, multiplier: float) -> str:
    if card.network is None:
        return card.name
    return f"<{card.network}:{card.name}:{multiplier_text(multiplier)}>"


def toggle_in_prompt(prompt: str, text: str, separator: str = SEPARATOR) -> str:
    """Add ``text`` to the prompt, or remove it (and the separator before it) when already there.

    A network tag counts as present with any multiplier, so a second click on a card whose tag the user
    re-weighted still removes it (A1111's behaviour).
    """
    tag = _TAG.match(text)
    body = rf"<{re.escape(tag.group(1))}:[\d.]+>" if tag else re.escape(text)
    removed = re.sub(rf"(?:{re.escape(separator)})?{body}", "", prompt)
    if removed != prompt:
        return removed
    return f"{prompt}{separator}{text}" if prompt else text


def placeholder(name: str) -> Image.Image:
    """A plain card for files without a preview (the caption carries the name)."""
    image = Image.new("RGB", (CARD_SIZE, CARD_SIZE), (60, 64, 72))
    ImageDraw.Draw(image).text((12, CARD_SIZE // 2 - 6), name[:24], fill=(230, 230, 230))
    return image


def card_image(card: Card) -> Image.Image:
    """The preview opened here (not passed as a path): files outside Gradio's allowed folders are fine."""
    if card.preview:
        try:
            with Image.open(card.preview) as image:
                image = image.convert("RGB")
                image.thumbnail((CARD_SIZE * 2, CARD_SIZE * 2))
                return image
        except OSError:
            pass
    return placeholder(card.name)


def gallery_value(cards: list[Card]) -> list[tuple[Image.Image, str]]:
    return [(card_image(card), card.name) for card in cards]


@dataclass
class CardTab:
    page: CardPage
    gallery: gr.Gallery
    cards: gr.State  # the listed cards, in gallery order


@dataclass
class ExtraNetworksPanel:
    panel: gr.Column
    tabs: list[CardTab]
    refresh: gr.Button
    shown: gr.State
    search: gr.Textbox
    sort: gr.Dropdown


def build(runtime: Runtime, tab: str) -> ExtraNetworksPanel:
    """The (hidden) panel; ``wire`` connects it to the prompt and the toggle button."""
    card_tabs = []
    with gr.Column(visible=False, elem_id=f"{tab}_extra_networks_panel") as panel:
        with gr.Row(elem_id=f"{tab}_extra_controls"):
            search = gr.Textbox(
                show_label=False,
                placeholder="Search...",
                elem_id=f"{tab}_extra_search",
                scale=3,
                container=False,
            )
            sort = gr.Dropdown(
                list(SORTS),
                value=next(iter(SORTS)),
                show_label=False,
                elem_id=f"{tab}_extra_sort",
                scale=1,
                container=False,
            )
            refresh = icons.button("refresh", f"{tab}_extra_refresh", "Refresh", size="sm", scale=0)
        with gr.Tabs(overflow_behavior="wrap", elem_id=f"{tab}_extra_tabs"):
            for page in pages(runtime):
                with gr.Tab(page.title, elem_id=f"{tab}_extra_{page.slug}"):
                    gallery = gr.Gallery(
                        show_label=False,
                        elem_id=f"{tab}_{page.slug}_cards",
                        columns=6,
                        height=280,
                        allow_preview=False,
                        interactive=False,
                        format="png",
                        elem_classes="extra-network-cards",
                    )
                    # Inside the Tab: a State directly in Tabs would show up as one more tab.
                    card_tabs.append(CardTab(page, gallery, gr.State([])))
    return ExtraNetworksPanel(panel, card_tabs, refresh, gr.State(False), search, sort)


def wire(runtime: Runtime, panel: ExtraNetworksPanel, toggle: gr.Button, prompt: gr.Textbox) -> None:
    private = {"show_progress": "hidden", "api_visibility": "private"}
    listing = [c for t in panel.tabs for c in (t.gallery, t.cards)]

    def listed(search: str, sort: str) -> list[Any]:
        values = []
        for card_tab in panel.tabs:
            cards = shown_cards(card_tab.page.cards(), search, sort)
            values += [gallery_value(cards), cards]
        return values

    def on_toggle(shown: bool, search: str, sort: str) -> list[Any]:
        # Cards are listed when the panel opens, so a closed panel costs nothing.
        rest = listed(search, sort) if not shown else [gr.update() for _ in listing]
        return [not shown, gr.update(visible=not shown), *rest]

    def on_refresh(search: str, sort: str) -> list[Any]:
        for card_tab in panel.tabs:
            card_tab.page.refresh()
        return listed(search, sort)

    filters = [panel.search, panel.sort]
    toggle.click(on_toggle, [panel.shown, *filters], [panel.shown, panel.panel, *listing], **private)
    panel.refresh.click(on_refresh, filters, listing, **private)
    for control in filters:
        control.change(listed, filters, listing, trigger_mode="always_last", **private)

    def on_select(text: str, cards: list[Card], event: gr.SelectData) -> tuple[Any, Any]:
        # Clearing the selection lets a second click on the same card fire again (to take it out).
        return clicked(runtime, text, cards, event.index), gr.update(selected_index=None)

    for card_tab in panel.tabs:
        card_tab.gallery.select(on_select, [prompt, card_tab.cards], [prompt, card_tab.gallery], **private)


def clicked(runtime: Runtime, prompt: str, cards: list[Card], index: int) -> Any:
    """The prompt after a click on card ``index`` (unchanged for a stale index)."""
    if not 0 <= index < len(cards):
        return gr.update()
    text = card_text(cards[index], runtime.options.get(MULTIPLIER_KEY))
    return toggle_in_prompt(prompt or "", text)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower())
