"""Our page styles must not reach into Gradio's own components by accident: a rule that starts at a
class name Gradio also uses (it drew a grey square on every Gradio toolbar button once, when our icon
class was "icon-button") styles Gradio's elements too. Each rule must start at one of our own classes
or ids, unless it is listed below with the reason it targets Gradio on purpose."""

from __future__ import annotations

import re
from pathlib import Path

import gradio

from modules.ui import app

ASSETS = Path(gradio.__file__).parent / "templates" / "frontend" / "assets"
# Gradio classes we style on purpose, everywhere they appear.
ON_PURPOSE = {
    "secondary-wrap": "every single-choice dropdown keeps its text clear of its arrow (style.css)",
}
CLASS = re.compile(r"\.(-?[_a-zA-Z][\w-]*)")


def gradio_classes() -> set[str]:
    """Every class name in Gradio's stylesheets and in the class attributes of its templates."""
    found: set[str] = set()
    for sheet in ASSETS.glob("*.css"):
        found |= set(CLASS.findall(sheet.read_text(encoding="utf-8", errors="replace")))
    for script in ASSETS.glob("*.js"):
        for attribute in re.findall(
            r'class="([^"<>{}$]*)"', script.read_text(encoding="utf-8", errors="replace")
        ):
            found |= set(attribute.split())
    return {name for name in found if not name.startswith("svelte-")}


def leading_classes(css: str) -> list[tuple[str, str]]:
    """(selector, class) for each class in the first compound of every selector in ``css``."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"url\([^)]*\)", "", css)
    pairs = []
    for selectors in re.findall(r"([^{}]+)\{[^{}]*\}", css):
        for selector in selectors.split(","):
            first = re.split(r"[\s>+~]+", selector.strip())[0]
            pairs += [(selector.strip(), name) for name in CLASS.findall(first)]
    return pairs


def test_gradio_class_names_are_found():
    """The check below means something only if Gradio's names are read (its build layout may move)."""
    assert {"icon-button", "progress-bar", "gallery-container", "error"} <= gradio_classes()


def test_every_rule_starts_at_our_own_class_or_id():
    ours = app.css()
    shared = gradio_classes()
    leaks = [(selector, name) for selector, name in leading_classes(ours) if name in shared]
    leaks = [(selector, name) for selector, name in leaks if name not in ON_PURPOSE]
    assert not leaks, f"rules that also style Gradio's own elements: {leaks}"
