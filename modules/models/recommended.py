"""A checkpoint's recommended generation defaults (size, CFG scale, sampler, steps), carried in its file.

A model trained for one size and guidance range draws badly at another (the bundled demo model is made
for 64x64 at CFG 3-5, the UI's defaults are SD's 512x512 at CFG 7), so a .safetensors file may name the
values it works best with: the metadata key ``sdwebui_recommended`` holds a JSON object of
``GenerationJob`` field names (the /sdapi/v1 names) and values. The UI fills its controls from it when
the model is selected and the user has not changed them. Values are checked by the fields' own
declarations; one a field refuses is dropped, never applied. Pickles and diffusers folders carry none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modules.fields import FieldError
from modules.models.storage import SAFETENSORS_SUFFIXES, ModelFileError, safetensors_header
from modules.processing.job import JOB_FIELDS

METADATA_KEY = "sdwebui_recommended"
FIELDS = ("width", "height", "cfg_scale", "sampler_name", "steps")


def checked(values: Mapping[str, Any]) -> dict[str, Any]:
    """The recommendable fields of ``values`` their declarations accept, converted; others dropped."""
    out = {}
    for name in FIELDS:
        if name in values and values[name] is not None:
            try:
                out[name] = JOB_FIELDS[name].check(values[name])
            except FieldError:
                continue
    return out


def encode(values: Mapping[str, Any]) -> dict[str, str]:
    """The metadata entry that carries ``values``; ValueError if a value is not recommendable."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"not recommendable: {', '.join(sorted(unknown))} (only {', '.join(FIELDS)})")
    good = checked(values)
    if len(good) != len(values):
        raise ValueError(f"refused by their fields: {', '.join(sorted(set(values) - set(good)))}")
    return {METADATA_KEY: json.dumps(good)}


def parse(metadata: Mapping[str, str]) -> dict[str, Any]:
    """The recommended values in a file's metadata; {} when absent or not a JSON object."""
    try:
        value = json.loads(metadata.get(METADATA_KEY, "{}"))
    except (TypeError, ValueError):
        return {}
    return checked(value) if isinstance(value, dict) else {}


def read(path: Path) -> dict[str, Any]:
    """The recommended values of the checkpoint at ``path`` (its header only; nothing else is read)."""
    path = Path(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES or not path.is_file():
        return {}
    try:
        header, _ = safetensors_header(path)
    except (ModelFileError, OSError):
        return {}
    metadata = header.get("__metadata__") or {}
    return parse(metadata) if isinstance(metadata, dict) else {}
