"""The Extensions tab: a read-only table of the folders in extensions/ and extensions-builtin/.

Loading, enabling and installing extensions belong to the extension system; this is only a view.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from modules import paths

HEADERS = ["Extension", "Type", "Folder"]


def installed(roots: list[tuple[Path, str]]) -> list[list[str]]:
    """One row per extension folder (hidden folders skipped), built-in ones last, each sorted by name."""
    rows = []
    for root, kind in roots:
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))):
            rows.append([folder.name, kind, str(folder)])
    return rows


def roots() -> list[tuple[Path, str]]:
    return [(paths.ROOT / "extensions", "user"), (paths.ROOT / "extensions-builtin", "built-in")]


def build() -> None:
    table = gr.Dataframe(
        value=lambda: installed(roots()),
        headers=HEADERS,
        interactive=False,
        elem_id="extensions_installed_table",
        label="Installed",
    )
    refresh = gr.Button("Check for extensions", elem_id="extensions_refresh")
    refresh.click(lambda: installed(roots()), None, table, api_visibility="private")
