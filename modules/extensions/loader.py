"""Finding, ordering, installing and importing extensions (folders under extensions-builtin/ and
extensions/), in the layout users of other Stable Diffusion web UIs already have."""

from __future__ import annotations

import configparser
import hashlib
import importlib.util
import inspect
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules import paths
from modules.extensions.registry import ExtensionRegistry, loading

BUILTIN_DIR = paths.ROOT / "extensions-builtin"
USER_DIR = paths.ROOT / "extensions"


@dataclass
class Extension:
    name: str
    path: Path
    builtin: bool
    enabled: bool = True
    requires: list[str] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)

    @property
    def scripts(self) -> list[Path]:
        return sorted((self.path / "scripts").glob("*.py"))

    @property
    def javascript(self) -> list[Path]:
        return sorted((self.path / "javascript").glob("*.js"))

    @property
    def stylesheet(self) -> Path | None:
        css = self.path / "style.css"
        return css if css.is_file() else None

    def version(self) -> str | None:
        """The git commit of the extension's folder, if it is a clone."""
        try:
            done = subprocess.run(["git", "-C", str(self.path), "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.replace(",", " ").split() if n.strip()]


def read_extension(path: Path, builtin: bool) -> Extension:
    ext = Extension(name=path.name, path=path, builtin=builtin)
    ini = path / "metadata.ini"
    if ini.is_file():
        parser = configparser.ConfigParser()
        parser.read(ini, encoding="utf-8")
        if parser.has_section("Extension"):
            section = parser["Extension"]
            ext.name = section.get("Name", ext.name).strip() or ext.name
            ext.requires = _names(section.get("Requires", ""))
            ext.before = _names(section.get("Before", ""))
            ext.after = _names(section.get("After", ""))
    return ext


def discover(disabled: set[str], disable_all: bool = False, builtin_only: bool = False,
             dirs: tuple[tuple[Path, bool], ...] = ((BUILTIN_DIR, True), (USER_DIR, False))) -> list[Extension]:
    """Every extension folder, in load order; ``enabled`` reflects the user's choices and flags."""
    found: list[Extension] = []
    for folder, builtin in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            ext = read_extension(path, builtin)
            ext.enabled = not disable_all and not (builtin_only and not builtin) and ext.name not in disabled
            found.append(ext)
    return order(found)


def order(extensions: list[Extension]) -> list[Extension]:
    """Built-ins first, then alphabetical, moved so that Requires/After come earlier and Before later."""
    names = {e.name: e for e in extensions}
    placed: list[Extension] = []
    visiting: set[str] = set()

    def place(ext: Extension) -> None:
        if ext in placed or ext.name in visiting:
            return  # a cycle keeps the default order
        visiting.add(ext.name)
        earlier = ext.requires + ext.after + [o.name for o in extensions if ext.name in o.before]
        for name in earlier:
            if name in names:
                place(names[name])
        visiting.discard(ext.name)
        placed.append(ext)

    for ext in sorted(extensions, key=lambda e: (not e.builtin, e.name.lower())):
        place(ext)
    return placed


def run_preloads(extensions: list[Extension], parser: Any, registry: ExtensionRegistry) -> None:
    for ext in extensions:
        preload = ext.path / "preload.py"
        if ext.enabled and preload.is_file():
            try:
                module = _import(preload, f"ext_preload_{_safe(ext.name)}")
                if hasattr(module, "preload"):
                    module.preload(parser)
            except Exception as error:
                registry.report(ext.name, "preload.py", error)


def run_installers(extensions: list[Extension], stamps_file: Path, registry: ExtensionRegistry) -> None:
    """Run each enabled extension's install.py once per change of its content, in a subprocess."""
    stamps = json.loads(stamps_file.read_text()) if stamps_file.is_file() else {}
    for ext in extensions:
        installer = ext.path / "install.py"
        if not ext.enabled or not installer.is_file():
            continue
        digest = hashlib.sha256(installer.read_bytes()).hexdigest()
        if stamps.get(ext.name) == digest:
            continue
        done = subprocess.run([sys.executable, str(installer)], cwd=ext.path, capture_output=True, text=True,
                              timeout=1800)
        if done.returncode != 0:
            registry.report(ext.name, "install.py", RuntimeError(done.stderr.strip()[-2000:] or "failed"))
            continue
        stamps[ext.name] = digest
    stamps_file.parent.mkdir(parents=True, exist_ok=True)
    stamps_file.write_text(json.dumps(stamps, indent=2))


def load_scripts(extensions: list[Extension], registry: ExtensionRegistry) -> None:
    """Import every enabled extension's scripts; instantiate their Script subclasses."""
    from modules.extensions.api import Script

    for ext in extensions:
        if not ext.enabled:
            continue
        for file in ext.scripts:
            try:
                with loading(registry, ext.name):
                    module = _import(file, f"ext_{_safe(ext.name)}_{_safe(file.stem)}")
                for _, cls in inspect.getmembers(module, inspect.isclass):
                    if issubclass(cls, Script) and cls is not Script and cls.__module__ == module.__name__:
                        script = cls()
                        script.name = ext.name
                        registry.scripts.append(script)
            except Exception as error:
                registry.report(ext.name, f"scripts/{file.name}", error)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _import(path: Path, module_name: str) -> Any:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module
