"""ui-config.json: user-editable defaults of the UI's controls, keyed like AUTOMATIC1111's web UI.

Keys are "<tab>/<label>/<field>" ("txt2img/Sampling steps/value": 20; sliders also have
"/minimum", "/maximum", "/step"), so users' existing files keep working. The file is read when the UI
is built and written back with any missing keys, so every control's default is listed there.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

# Only controls a user sets; outputs, buttons and images are not defaults.
CONFIGURABLE = (gr.Textbox, gr.Number, gr.Slider, gr.Checkbox, gr.Radio, gr.Dropdown, gr.CheckboxGroup)
SLIDER_FIELDS = ("minimum", "maximum", "step")


class UiConfig:
    """The defaults file of one app; ``apply`` sets controls from it and records what it lacks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, Any] = self._read(path)
        self.missing = False

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            # As A1111: a broken file must not stop the UI; it keeps the file and uses built-in defaults.
            print(f"Warning: could not read {path} ({error}); using built-in UI defaults.")
            return {}
        return data if isinstance(data, dict) else {}

    def apply(self, root: gr.blocks.Block, prefix: str) -> None:
        """Set every labelled control under ``root`` from the file; remember defaults the file lacks."""
        for component in _components(root):
            base = f"{prefix}/{component.label}"
            self._field(component, f"{base}/value", "value")
            if isinstance(component, gr.Slider):
                for name in SLIDER_FIELDS:
                    self._field(component, f"{base}/{name}", name)

    def _field(self, component: gr.components.Component, key: str, attribute: str) -> None:
        if key not in self.values:
            self.values[key] = getattr(component, attribute)
            self.missing = True
            return
        value = self.values[key]
        if attribute == "value" and not _acceptable(component, value):
            print(f"Warning: ui-config.json: {key} = {value!r} is not a valid choice; ignored.")
            return
        setattr(component, attribute, value)

    def save_if_needed(self) -> None:
        """Write the file when keys were missing (first start, or controls added since)."""
        if not self.missing:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ui-config-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.values, out, indent=4, ensure_ascii=False)
        os.replace(tmp, self.path)
        self.missing = False


def _components(root: gr.blocks.Block) -> Iterator[gr.components.Component]:
    for child in getattr(root, "children", []):
        if isinstance(child, CONFIGURABLE) and child.label and not callable(child.value):
            yield child
        yield from _components(child)


def _acceptable(component: gr.components.Component, value: Any) -> bool:
    """A dropdown/radio default must be one of its choices (A1111 also ignores stale ones)."""
    if not isinstance(component, gr.Dropdown | gr.Radio) or getattr(component, "multiselect", False):
        return True
    names = [choice[1] if isinstance(choice, tuple) else choice for choice in component.choices]
    return value in names
