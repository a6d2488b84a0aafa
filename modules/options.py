"""User settings: their definitions (sections, labels, defaults) and the config.json that stores them.

A generation never reads live settings: it takes an immutable ``snapshot()`` (plus the request's
override_settings) when it starts, so changing a setting mid-request cannot change that request.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class OptionInfo:
    key: str
    default: Any
    label: str
    section: str
    component: str = "textbox"  # textbox, number, slider, checkbox, dropdown, radio
    component_args: Mapping[str, Any] = field(default_factory=dict)
    restart_required: bool = False


SECTIONS = {
    "saving-images": "Saving images/grids",
    "saving-paths": "Paths for saving",
    "sd": "Stable Diffusion",
    "img2img": "img2img",
    "sampler-params": "Sampler parameters",
    "live-previews": "Live previews",
    "extra_networks": "Extra Networks",
    "ui": "User interface",
}


def _builtin_options() -> list[OptionInfo]:
    o = OptionInfo
    return [
        o("samples_save", True, "Always save all generated images", "saving-images", "checkbox"),
        o(
            "samples_format",
            "png",
            "File format for images",
            "saving-images",
            "dropdown",
            {"choices": ["png", "jpg", "webp"]},
        ),
        o("samples_filename_pattern", "", "Images filename pattern", "saving-images"),
        o("save_images_add_number", True, "Add number to filename when saving", "saving-images", "checkbox"),
        o("grid_save", True, "Always save all generated image grids", "saving-images", "checkbox"),
        o(
            "enable_pnginfo",
            True,
            "Save text information about generation parameters as chunks to png files",
            "saving-images",
            "checkbox",
        ),
        o("save_to_dirs", True, "Save images to a subdirectory", "saving-paths", "checkbox"),
        o("directories_filename_pattern", "[date]", "Directory name pattern", "saving-paths"),
        o("outdir_txt2img_samples", "", "Output directory for txt2img images", "saving-paths"),
        o("outdir_img2img_samples", "", "Output directory for img2img images", "saving-paths"),
        o("sd_model_checkpoint", "", "Stable Diffusion checkpoint", "sd", "dropdown"),
        o(
            "sd_checkpoints_limit",
            1,
            "Maximum number of checkpoints loaded at the same time",
            "sd",
            "slider",
            {"minimum": 1, "maximum": 10, "step": 1},
        ),
        o("sd_vae", "Automatic", "SD VAE", "sd", "dropdown"),
        o(
            "CLIP_stop_at_last_layers",
            1,
            "Clip skip",
            "sd",
            "slider",
            {"minimum": 1, "maximum": 12, "step": 1},
        ),
        o(
            "emphasis",
            "Original",
            "Emphasis mode",
            "sd",
            "radio",
            {"choices": ["Original", "No norm", "Ignore"]},
        ),
        o(
            "comma_padding_backtrack",
            20,
            "Prompt word wrap length limit",
            "sd",
            "slider",
            {"minimum": 0, "maximum": 74, "step": 1},
        ),
        o(
            "randn_source",
            "CPU",
            "Random number generator source",
            "sd",
            "radio",
            {"choices": ["GPU", "CPU", "NV"]},
        ),
        o(
            "img2img_fix_steps",
            False,
            "With img2img, do exactly the amount of steps the slider specifies",
            "img2img",
            "checkbox",
        ),
        o(
            "initial_noise_multiplier",
            1.0,
            "Noise multiplier for img2img",
            "img2img",
            "slider",
            {"minimum": 0.0, "maximum": 1.5, "step": 0.001},
        ),
        o(
            "inpainting_mask_weight",
            1.0,
            "Inpainting conditioning mask strength",
            "img2img",
            "slider",
            {"minimum": 0.0, "maximum": 1.0, "step": 0.01},
        ),
        o(
            "mask_round",
            True,
            "Round mask to latent pixels (sharper inpainting edges)",
            "img2img",
            "checkbox",
        ),
        o(
            "img2img_overlay_original",
            True,
            "Paste the original over unmasked pixels after inpainting",
            "img2img",
            "checkbox",
        ),
        o("eta_noise_seed_delta", 0, "Eta noise seed delta", "sampler-params", "number", {"precision": 0}),
        o(
            "eta_ancestral",
            1.0,
            "Eta for k-diffusion samplers",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 1.0, "step": 0.01},
        ),
        o(
            "eta_ddim",
            0.0,
            "Eta for DDIM",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 1.0, "step": 0.01},
        ),
        o(
            "s_churn",
            0.0,
            "sigma churn",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 100.0, "step": 0.01},
        ),
        o(
            "s_tmin",
            0.0,
            "sigma tmin",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 10.0, "step": 0.01},
        ),
        o(
            "s_tmax",
            0.0,
            "sigma tmax",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 999.0, "step": 0.01},
        ),
        o(
            "s_noise",
            1.0,
            "sigma noise",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 1.1, "step": 0.001},
        ),
        o("use_old_scheduling", False, "Use old prompt editing timelines", "sampler-params", "checkbox"),
        o(
            "show_progress_every_n_steps",
            1,
            "Live preview display period (steps; 0 = off)",
            "live-previews",
            "slider",
            {"minimum": 0, "maximum": 32, "step": 1},
        ),
        o(
            "live_previews_enable",
            True,
            "Show live previews of the created image",
            "live-previews",
            "checkbox",
        ),
        o(
            "extra_networks_default_multiplier",
            1.0,
            "Default multiplier for extra networks",
            "extra_networks",
            "slider",
            {"minimum": 0.0, "maximum": 2.0, "step": 0.01},
        ),
        o("return_grid", True, "Show grid in gallery", "ui", "checkbox"),
        o("ui_theme", "dark", "Theme", "ui", "radio", {"choices": ["dark", "light"]}, restart_required=True),
    ]


class Options:
    """The live settings of one running app, persisted to ``config.json`` in the data dir."""

    def __init__(self, path: Path | None, definitions: list[OptionInfo] | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self.definitions: dict[str, OptionInfo] = {}
        for info in definitions if definitions is not None else _builtin_options():
            self.add(info)
        self._values: dict[str, Any] = {}
        if path is not None and path.exists():
            self._values = self._read(path)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            # A broken config must not stop the app; keep the file for the user to inspect.
            print(f"Warning: could not read settings from {path} ({error}); using defaults.")
            return {}
        return data if isinstance(data, dict) else {}

    def add(self, info: OptionInfo) -> None:
        """Register a setting (extensions add theirs the same way)."""
        with self._lock:
            self.definitions[info.key] = info

    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._values:
                return self._values[key]
            if key in self.definitions:
                return self.definitions[key].default
            raise KeyError(f"unknown setting {key!r}")

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def set(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, values: Mapping[str, Any]) -> None:
        """Set several settings at once and save; unknown keys are kept (an extension may define them later)."""
        with self._lock:
            for key, value in values.items():
                self._values[key] = _coerce(self.definitions.get(key), value)
            self.save()

    def snapshot(self, overrides: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """An immutable view of every setting now, with per-request overrides applied."""
        with self._lock:
            values = {key: info.default for key, info in self.definitions.items()}
            values.update(self._values)
        for key, value in (overrides or {}).items():
            values[key] = _coerce(self.definitions.get(key), value)
        return MappingProxyType(values)

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".config-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._values, f, indent=4, ensure_ascii=False)
            os.replace(tmp, self.path)


def _coerce(info: OptionInfo | None, value: Any) -> Any:
    """Convert a value to the type of the setting's default, so "7" from a form becomes 7."""
    if info is None or value is None:
        return value
    default = info.default
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(float(value))
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"setting {info.key!r}: {value!r} is not a valid {type(default).__name__}"
        ) from error
    return value
