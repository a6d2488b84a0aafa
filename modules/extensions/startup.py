"""Bringing extensions up at start: discover, preload flags, parse the command line, install, import."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modules import cmd_args
from modules.extensions import loader
from modules.extensions.registry import ExtensionRegistry


def disabled_extensions(config_file: Path) -> set[str]:
    """Names the user switched off in the Extensions tab (kept in config.json)."""
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return set(data.get("disabled_extensions", [])) if isinstance(data, dict) else set()


def prepare(argv: list[str] | None) -> tuple[argparse.Namespace, ExtensionRegistry, list[loader.Extension]]:
    """Parse flags (extensions' preload.py may add some), run install.py files, import scripts."""
    parser = cmd_args.build_parser()
    early, _ = parser.parse_known_args(argv)
    registry = ExtensionRegistry()
    extensions = loader.discover(
        disabled_extensions(Path(early.data_dir) / "config.json"),
        disable_all=early.disable_all_extensions,
        builtin_only=early.disable_extra_extensions,
    )
    loader.run_preloads(extensions, parser, registry)
    args = cmd_args.finish(parser.parse_args(argv), argv)
    loader.run_installers(extensions, Path(args.data_dir) / "extensions-installed.json", registry)
    loader.load_scripts(extensions, registry)
    return args, registry, extensions
