"""Icon buttons and button hints: one table says, for each kind of button, its accessible name, its
tooltip and (for icon buttons) its icon.

Icons are small inline SVGs drawn through a CSS mask in the text colour, not emoji: on a machine with
no emoji font A1111's emoji labels (🔄, 🎲️, ♻️ ...) render as empty boxes. A button made by
``button(kind, ...)`` carries the class ``ui-hint-<kind>``; ``css()`` draws the icons and
``hints_script()`` gives javascript/hints.js the names and tooltips it sets as ``aria-label`` and
``title`` (Gradio's Button has no attribute for either).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import gradio as gr


@dataclass(frozen=True)
class Hint:
    name: str  # the accessible name (aria-label); "" keeps the button's own text as its name
    tooltip: str
    icon: str = ""  # SVG path data on a 24x24 grid, stroked; "" for a text button


HINTS: dict[str, Hint] = {
    "refresh": Hint(
        "Refresh",
        "Refresh the list (finds files added since it was made)",
        "M20 12a8 8 0 1 1-2.3-5.7M20 4v4h-4",
    ),
    "paste": Hint(
        "Read generation parameters",
        "Read generation parameters from the prompt box, or from the last generation if it is empty, "
        "into the UI",
        "M18 6 6 18M6 10v8h8",
    ),
    "style_apply": Hint(
        "Apply styles",
        "Apply the selected styles to the prompt boxes and clear the selection",
        "M9 3h6v3H9zM8 4.5H5V21h14V4.5h-3M8 11h8M8 15h8",
    ),
    "style_save": Hint(
        "Save style",
        "Save the prompt and negative prompt as a new style",
        "M4 4h12l4 4v12H4zM8 4v5h7V4M8 20v-6h8v6",
    ),
    "random_seed": Hint(
        "Random seed",
        "Set the seed to -1: a new random seed for every generation",
        "M4 4h16v16H4zM8.5 8.5h.01M15.5 8.5h.01M12 12h.01M8.5 15.5h.01M15.5 15.5h.01",
    ),
    "reuse_seed": Hint(
        "Reuse seed",
        "Reuse the seed of the selected image (or of the first one of the last generation)",
        "M4 12a8 8 0 0 1 14-5.3M18 3v4h-4M20 12a8 8 0 0 1-14 5.3M6 21v-4h4",
    ),
    "swap_size": Hint(
        "Swap width and height", "Swap width and height", "M8 20V4M4 8l4-4 4 4M16 4v16M12 16l4 4 4-4"
    ),
    "open_folder": Hint(
        "Open images folder", "Open the folder the images are saved in", "M3 5h6l2 2h10v12H3z"
    ),
    "save": Hint(
        "", "Save the image (all of them when none is selected) to the save folder, with a log.csv line"
    ),
    "zip": Hint("", "Save the images and offer them for download as one zip file"),
    "send_img2img": Hint(
        "Send to img2img",
        "Send the image and its generation parameters to the img2img tab",
        "M3 5h18v14H3zM3 16l5-5 4 4 3-3 6 6M15.5 9.5h.01",
    ),
    "send_inpaint": Hint(
        "Send to inpaint",
        "Send the image and its generation parameters to img2img's inpaint tab",
        "M20 4 11 13M11 13c-3 0-4 2-4 4s-1 3-3 3c4 1 9 0 9-4z",
    ),
    "send_extras": Hint(
        "Send to extras",
        "Send the image to the Extras tab (upscaling, face restoration)",
        "M4 10V4h6M20 14v6h-6M4 4l7 7M20 20l-7-7",
    ),
    "generate": Hint("", "Generate (Ctrl+Enter in a prompt box)"),
    "interrupt": Hint("", "Stop now and keep the images made so far (Esc)"),
    "skip": Hint("", "Stop the current image and go on with the next one of the batch (Alt+Enter)"),
}


def classes(kind: str) -> list[str]:
    """The classes that give a button ``kind``'s hint and, where it has one, its icon."""
    hint = HINTS[kind]  # KeyError for an unknown kind: every hint is declared above
    return ["ui-hint", f"ui-hint-{kind}", *(["ui-icon"] if hint.icon else [])]


def button(kind: str, elem_id: str, label: str = "", **kwargs: Any) -> gr.Button:
    """A button with ``kind``'s icon before ``label`` (none for an icon-only button), tooltip and name."""
    extra = kwargs.pop("elem_classes", [])
    kwargs.setdefault("min_width", 40)
    return gr.Button(label, elem_id=elem_id, elem_classes=[*classes(kind), *extra], **kwargs)


def svg(path: str) -> str:
    return (
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' stroke='black' "
        f"stroke-width='2' stroke-linecap='round' stroke-linejoin='round'><path d='{path}'/></svg>"
    )


def css() -> str:
    """Each icon as a mask over the text colour, so it follows the theme (dark or light)."""
    rules = [
        ".ui-icon::before { content: ''; display: inline-block; flex: none; width: 1.3em; height: 1.3em;"
        " background-color: currentColor; -webkit-mask: var(--icon) center / contain no-repeat;"
        " mask: var(--icon) center / contain no-repeat; }",
        # A labelled button keeps its icon on the label's line.
        ".ui-icon:not(:empty) { flex-wrap: nowrap; padding-left: 0.5em; padding-right: 0.5em; }",
        ".ui-icon:not(:empty)::before { width: 1.1em; height: 1.1em; margin-right: 0.3em; }",
    ]
    for kind, hint in HINTS.items():
        if hint.icon:
            url = "data:image/svg+xml," + quote(svg(hint.icon))
            rules.append(f'.ui-hint-{kind} {{ --icon: url("{url}"); }}')
    return "\n".join(rules)


def hints_script() -> str:
    """The table hints.js reads: class -> [accessible name, tooltip]."""
    table = {f"ui-hint-{kind}": [hint.name, hint.tooltip] for kind, hint in HINTS.items()}
    data = json.dumps(table).replace("</", "<\\/")  # never ends the script element early
    return f"<script>window.sdwebuiHints = {data};</script>"
