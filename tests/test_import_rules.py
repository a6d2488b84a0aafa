"""The layering of shared/GUIDE.md, checked over every module's imports (AST, not runtime).

- modules/prompting imports no torch, ui or api (the prompt language runs without torch);
- modules/processing imports no ui or api (one job in, images out, for both front ends);
- modules/ui and modules/api never import each other;
- built-in extensions import only the public extension API (modules.extensions.api).
Imports under ``if TYPE_CHECKING:`` count too: they are what a reader follows.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a file; relative imports resolve against the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            # "from modules import ui" imports the submodule modules.ui; other names are attributes.
            folder = ROOT.joinpath(*name.split("."))
            submodules = [
                f"{name}.{alias.name}"
                for alias in node.names
                if (folder / f"{alias.name}.py").exists() or (folder / alias.name).is_dir()
            ]
            found += [(node.lineno, sub) for sub in submodules] or [(node.lineno, name)]
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


RULES = [
    ("modules/prompting", ("torch", "modules.ui", "modules.api")),
    ("modules/processing", ("modules.ui", "modules.api")),
    ("modules/ui", ("modules.api",)),
    ("modules/api", ("modules.ui",)),
]


def violations() -> list[str]:
    found = []
    for folder, forbidden in RULES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, name in imported_modules(path):
                if any(within(name, f) for f in forbidden):
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    for path in sorted((ROOT / "extensions-builtin").rglob("*.py")):
        for line, name in imported_modules(path):
            if within(name, "modules") and name != "modules.extensions.api":
                found.append(f"{path.relative_to(ROOT)}:{line} imports {name} (only modules.extensions.api)")
    return found


def test_layering_holds():
    assert violations() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import torch\n", ["torch"]),
        ("from modules import ui\n", ["modules.ui"]),
        ("from modules.api.models import X\n", ["modules.api.models"]),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from modules.ui import app\n",
            ["typing", "modules.ui"],
        ),
    ],
)
def test_imports_are_found(tmp_path, monkeypatch, source, expected):
    """The checker itself sees plain, from- and TYPE_CHECKING imports (so the rule test can fail)."""
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    path = tmp_path / "modules" / "prompting" / "x.py"
    path.parent.mkdir(parents=True)
    (tmp_path / "modules" / "ui").mkdir()
    path.write_text(source)
    assert [name for _, name in imported_modules(path)] == expected


def test_a_forbidden_import_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    for folder in (
        "modules/prompting",
        "modules/processing",
        "modules/ui",
        "modules/api",
        "extensions-builtin/x",
    ):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "modules/prompting/bad.py").write_text("import torch\n")
    (tmp_path / "extensions-builtin/x/s.py").write_text("from modules.images import image_grid\n")
    assert violations() == [
        "modules/prompting/bad.py:1 imports torch",
        "extensions-builtin/x/s.py:1 imports modules.images (only modules.extensions.api)",
    ]


def test_the_page_needs_neither_diffusers_nor_transformers():
    """What webui.py imports to build the page leaves diffusers and transformers (seconds of imports)
    to the model's first load, which starts once the page answers."""
    code = (
        "import sys, webui\n"
        "from modules.runtime import Runtime\n"
        "from modules.ui import app\n"
        "from modules.api import server\n"
        "print(sorted(m for m in ('diffusers', 'transformers', 'accelerate') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
