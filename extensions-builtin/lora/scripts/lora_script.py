"""Registers the ``lora`` extra network (and A1111's older ``lyco`` spelling), its setting, and the list
of LoRA files the Extra Networks UI and /sdapi/v1/loras show (``ExtraNetwork.extra``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modules.extensions.api import ExtraNetwork, OptionInfo, Paths, on_ui_settings, register_extra_network

EXTENSION_DIR = Path(__file__).resolve().parents[1]
# The loader imports scripts by file path; the extension's own package needs its folder on sys.path.
if str(EXTENSION_DIR) not in sys.path:
    sys.path.insert(0, str(EXTENSION_DIR))

from lora_networks import HASHES_OPTION, LoraHandler  # noqa: E402

# LoRAs that ship with the project: <project>/assets/lora (the extension is <project>/extensions-builtin/lora);
# not under assets/models, whose files are all listed as checkpoints.
BUNDLED_LORA_DIR = EXTENSION_DIR.parents[1] / "assets" / "lora"

handler = LoraHandler(BUNDLED_LORA_DIR)


def items(paths: Paths) -> list[dict[str, Any]]:
    """The /sdapi/v1/loras list: [{name, alias, path, metadata}]."""
    return [lora.item() for lora in handler.library(paths).files()]


def cards(paths: Paths) -> list[dict[str, Any]]:
    """What an Extra Networks card shows: the API fields plus the preview image's path and the prompt tag."""
    return [
        {
            **lora.item(),
            "preview": str(lora.preview) if lora.preview else None,
            "prompt": f"<lora:{lora.name}:1>",
        }
        for lora in handler.library(paths).files()
    ]


def refresh(paths: Paths) -> None:
    handler.library(paths).refresh()


def _network(tag: str) -> ExtraNetwork:
    return ExtraNetwork(
        name=tag,
        activate=lambda p, calls: handler.activate(p, tag, calls),
        deactivate=handler.deactivate,
        extra={"items": items, "cards": cards, "refresh": refresh},
    )


register_extra_network(_network("lora"))
register_extra_network(_network("lyco"))  # A1111 keeps the LyCORIS extension's tag working


@on_ui_settings
def add_settings(options: Any) -> None:
    options.add(OptionInfo(HASHES_OPTION, True, "Add Lora hashes to infotext", "Extra Networks", "checkbox"))
