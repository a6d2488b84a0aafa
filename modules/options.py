"""User settings: their definitions (sections, labels, defaults) and the config.json that stores them.

A generation never reads live settings: it takes an immutable ``snapshot()`` (plus the request's
override_settings) when it starts, so changing a setting mid-request cannot change that request.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from modules import output_paths
from modules.fields import Field, FieldError, Resolvers


@dataclass(frozen=True)
class OptionInfo:
    """The declaration of one setting, in A1111's shape: key, default, label, section, control.

    Its type is its default's; a slider's ``minimum``/``maximum`` and a radio's or dropdown's ``choices``
    (in ``component_args``) are also the values it accepts, on every path that sets it (Settings tab,
    ``POST /options``, ``override_settings``, config.json, a parameters text read back). ``infotext`` is
    the parameters-text key A1111 gives the setting; ``lookup`` names a list only the app knows
    (checkpoints, VAEs); ``validator`` adds a rule of its own (raising ValueError).
    """

    key: str
    default: Any
    label: str
    section: str
    component: str = "textbox"  # textbox, number, slider, checkbox, dropdown, radio
    component_args: Mapping[str, Any] = field(default_factory=dict)
    restart_required: bool = False
    infotext: str | None = None
    lookup: str | None = None
    minimum: float | None = None  # for a number box, which has no slider range to say it
    maximum: float | None = None
    validator: Callable[[Any], None] | None = None

    @property
    def spec(self) -> Field:
        """The setting as a typed ``Field`` (what checks its values)."""
        args = self.component_args
        choices = args.get("choices") if self.component in ("radio", "dropdown") else None
        return Field(
            kind=type(self.default) if self.default is not None else str,
            default=self.default,
            name=self.key,
            minimum=args.get("minimum", self.minimum),
            maximum=args.get("maximum", self.maximum),
            choices=tuple(choices) if choices is not None and self.lookup is None else None,
            lookup=self.lookup,
            label=self.label,
            control=self.component,
            infotext=self.infotext,
            section=self.section,
            restart_required=self.restart_required,
            validator=self.validator,
        )

    def check(self, value: Any, resolvers: Resolvers | None = None) -> Any:
        return self.spec.check(value, resolvers)


# A1111's "show_progress_type" names; its "Approx NN" and "TAESD" need decoder files this app does not
# ship (A1111 downloads them), so they are not offered.
PREVIEW_FULL, PREVIEW_CHEAP = "Full", "Approx cheap"
PREVIEW_METHODS = (PREVIEW_FULL, PREVIEW_CHEAP)

SECTIONS = {
    "saving-images": "Saving images/grids",
    "saving-paths": "Paths for saving",
    "sd": "Stable Diffusion",
    "img2img": "img2img",
    "sampler-params": "Sampler parameters",
    "optimizations": "Optimizations",
    "live-previews": "Live previews",
    "extra_networks": "Extra Networks",
    "interrogate": "Interrogate",
    "ui": "User interface",
    "system": "System",
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
        o(
            "samples_filename_pattern",
            "",
            "Images filename pattern",
            "saving-images",
            validator=output_paths.check_pattern,
        ),
        o("save_images_add_number", True, "Add number to filename when saving", "saving-images", "checkbox"),
        o("grid_save", True, "Always save all generated image grids", "saving-images", "checkbox"),
        o(
            "grid_only_if_multiple",
            True,
            "Do not save grids consisting of one picture",
            "saving-images",
            "checkbox",
        ),
        o(
            "enable_pnginfo",
            True,
            "Save text information about generation parameters as chunks to png files",
            "saving-images",
            "checkbox",
        ),
        o("save_to_dirs", True, "Save images to a subdirectory", "saving-paths", "checkbox"),
        o(
            "directories_filename_pattern",
            "[date]",
            "Directory name pattern",
            "saving-paths",
            validator=output_paths.check_pattern,
        ),
        o(
            "outdir_txt2img_samples",
            "",
            "Output directory for txt2img images (inside the outputs folder)",
            "saving-paths",
            lookup="output_folder",
        ),
        o(
            "outdir_img2img_samples",
            "",
            "Output directory for img2img images (inside the outputs folder)",
            "saving-paths",
            lookup="output_folder",
        ),
        # A1111 records the checkpoint by its hash ("Model hash"); a text naming only "Model" is read too.
        o(
            "sd_model_checkpoint",
            "",
            "Stable Diffusion checkpoint",
            "sd",
            "dropdown",
            infotext="Model hash",
            lookup="checkpoint",
        ),
        o(
            "sd_checkpoints_limit",
            1,
            "Maximum number of checkpoints loaded at the same time",
            "sd",
            "slider",
            {"minimum": 1, "maximum": 10, "step": 1},
        ),
        o("sd_vae", "Automatic", "SD VAE", "sd", "dropdown", infotext="VAE", lookup="vae"),
        o(
            "CLIP_stop_at_last_layers",
            1,
            "Clip skip",
            "sd",
            "slider",
            {"minimum": 1, "maximum": 12, "step": 1},
            infotext="Clip skip",
        ),
        o(
            "emphasis",
            "Original",
            "Emphasis mode",
            "sd",
            "radio",
            {"choices": ["Original", "No norm", "Ignore", "None"]},  # "None": brackets are plain text
            infotext="Emphasis",
        ),
        o(
            "enable_prompt_comments",
            True,
            "Enable comments (# hides the rest of the line from generation)",
            "sd",
            "checkbox",
        ),
        o(
            "include_styles_into_token_counters",
            True,
            "Count tokens of enabled styles",
            "sd",
            "checkbox",
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
            infotext="RNG",
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
            infotext="Noise multiplier",
        ),
        o(
            "inpainting_mask_weight",
            1.0,
            "Inpainting conditioning mask strength",
            "img2img",
            "slider",
            {"minimum": 0.0, "maximum": 1.0, "step": 0.01},
            infotext="Conditional mask weight",
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
        o(
            "eta_noise_seed_delta",
            0,
            "Eta noise seed delta",
            "sampler-params",
            "number",
            {"precision": 0},
            infotext="ENSD",
            minimum=-(2**31),
            maximum=2**31 - 1,
        ),
        o(
            "eta_ancestral",
            1.0,
            "Eta for k-diffusion samplers",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 1.0, "step": 0.01},
            infotext="Eta",
        ),
        o(
            "eta_ddim",
            0.0,
            "Eta for DDIM",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 1.0, "step": 0.01},
            infotext="Eta DDIM",
        ),
        o(
            "s_churn",
            0.0,
            "sigma churn",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 100.0, "step": 0.01},
            infotext="Sigma churn",
        ),
        o(
            "s_tmin",
            0.0,
            "sigma tmin",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 10.0, "step": 0.01},
            infotext="Sigma tmin",
        ),
        o(
            "s_tmax",
            0.0,
            "sigma tmax",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 999.0, "step": 0.01},
            infotext="Sigma tmax",
        ),
        o(
            "s_noise",
            1.0,
            "sigma noise",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 1.1, "step": 0.001},
            infotext="Sigma noise",
        ),
        o(
            "s_min_uncond",
            0.0,
            "Negative Guidance minimum sigma (skip the negative prompt on every other step below this "
            "sigma; 0 = off, higher = faster)",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 15.0, "step": 0.01},
            infotext="NGMS",
        ),
        o(
            "s_min_uncond_all",
            False,
            "Negative Guidance minimum sigma all steps (skip on every step below it, not every other)",
            "sampler-params",
            "checkbox",
            infotext="NGMS all steps",
        ),
        o(
            "skip_early_cond",
            0.0,
            "Ignore negative prompt during early sampling (the share of steps at the start run without it)",
            "sampler-params",
            "slider",
            {"minimum": 0.0, "maximum": 1.0, "step": 0.01},
            infotext="Skip Early CFG",
        ),
        o(
            "token_merging_ratio",
            0.0,
            "Token merging ratio (0 = off, higher = faster self-attention, the image changes more)",
            "optimizations",
            "slider",
            {"minimum": 0.0, "maximum": 0.9, "step": 0.1},
            infotext="Token merging ratio",
        ),
        o(
            "token_merging_ratio_img2img",
            0.0,
            "Token merging ratio for img2img (only applies if non-zero and overrides above)",
            "optimizations",
            "slider",
            {"minimum": 0.0, "maximum": 0.9, "step": 0.1},
        ),
        o(
            "token_merging_ratio_hr",
            0.0,
            "Token merging ratio for high-res pass (only applies if non-zero and overrides above)",
            "optimizations",
            "slider",
            {"minimum": 0.0, "maximum": 0.9, "step": 0.1},
            infotext="Token merging ratio hr",
        ),
        o(
            "use_old_scheduling",
            False,
            "Use old prompt editing timelines",
            "sampler-params",
            "checkbox",
            infotext="Old prompt editing timelines",
        ),
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
            "show_progress_type",
            PREVIEW_CHEAP,
            "Live preview method (Full: the VAE decodes the preview, as slow as the final decode; "
            "Approx cheap: a linear map of the latents, the model's own or its family's)",
            "live-previews",
            "radio",
            {"choices": list(PREVIEW_METHODS)},
        ),
        o(
            "extra_networks_default_multiplier",
            1.0,
            "Default multiplier for extra networks",
            "extra_networks",
            "slider",
            {"minimum": 0.0, "maximum": 2.0, "step": 0.01},
        ),
        # Interrogate: A1111's keys, labels and defaults, plus the model folders and our two modes.
        o("interrogate_keep_models_in_memory", False, "Keep models in VRAM", "interrogate", "checkbox"),
        o(
            "interrogate_clip_model",
            "",
            "CLIP model folder (under models/CLIP or a path; empty: the first there, else the bundled one)",
            "interrogate",
        ),
        o(
            "interrogate_blip_model",
            "",
            "BLIP model folder (under models/BLIP or a path; empty: the first there, else no caption model)",
            "interrogate",
        ),
        o(
            "interrogate_mode",
            "fast",
            "Interrogate mode (fast: best phrases of each list; best: greedy, slower)",
            "interrogate",
            "radio",
            {"choices": ["fast", "best"]},
        ),
        o(
            "interrogate_best_max_phrases",
            16,
            "Best mode: most phrases added",
            "interrogate",
            "slider",
            {"minimum": 1, "maximum": 64, "step": 1},
        ),
        o(
            "interrogate_clip_num_beams",
            1,
            "BLIP: num_beams",
            "interrogate",
            "slider",
            {"minimum": 1, "maximum": 16, "step": 1},
        ),
        o(
            "interrogate_clip_min_length",
            24,
            "BLIP: minimum description length",
            "interrogate",
            "slider",
            {"minimum": 1, "maximum": 128, "step": 1},
        ),
        o(
            "interrogate_clip_max_length",
            48,
            "BLIP: maximum description length",
            "interrogate",
            "slider",
            {"minimum": 1, "maximum": 256, "step": 1},
        ),
        o(
            "interrogate_clip_dict_limit",
            1500,
            "CLIP: maximum number of lines in text file (0 = no limit)",
            "interrogate",
            "number",
            {"precision": 0},
            minimum=0,
            maximum=1_000_000,
        ),
        o("return_grid", True, "Show grid in gallery", "ui", "checkbox"),
        o("ui_theme", "dark", "Theme", "ui", "radio", {"choices": ["dark", "light"]}, restart_required=True),
        # Decoded pixels cost memory (a tiny PNG can declare 12000x12000, over 400 MB as RGB): uploads to the
        # API and the UI that declare more are refused before decoding. 50 megapixels fits an 8K photo.
        o(
            "upload_max_megapixels",
            50.0,
            "Largest image accepted from a client, in megapixels",
            "system",
            "number",
            minimum=0.01,
            maximum=1000.0,
        ),
    ]


@functools.cache
def builtin_definitions() -> Mapping[str, OptionInfo]:
    """The built-in settings by key (what a runtime starts with, before extensions add theirs)."""
    return MappingProxyType({info.key: info for info in _builtin_options()})


class Options:
    """The live settings of one running app, persisted to ``config.json`` in the data dir.

    Every value is checked against its declaration before it is stored or used: a bad value is refused
    with a ValueError naming the setting (``FieldError``), and one found in config.json at start-up (or
    when an extension declares its setting later) is reset to the default with a warning, so a
    hand-edited file can never stop the app or break a generation.
    """

    def __init__(self, path: Path | None, definitions: list[OptionInfo] | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self.definitions: dict[str, OptionInfo] = {}
        # Checkers for settings whose choices only the running app knows ("checkpoint", "vae"), set by
        # the runtime; without one such a value is only checked to be text.
        self.resolvers: dict[str, Callable[[Any], Any]] = {}
        self._values: dict[str, Any] = {}
        self._watchers: dict[str, list[Callable[[Any], None]]] = {}
        self._backup: Path | None = None  # where a config.json with refused values was copied
        if path is not None and path.exists():
            self._values = self._read(path)
        for info in definitions if definitions is not None else _builtin_options():
            self.add(info)

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            # A broken config must not stop the app; the file is kept aside for the user to inspect.
            self._set_aside(f"could not read settings from {path} ({error}); using defaults")
            return {}
        if not isinstance(data, dict):
            self._set_aside(f"{path} holds {type(data).__name__}, not settings; using defaults")
            return {}
        return data

    def _set_aside(self, reason: str) -> None:
        """Warn, and copy config.json beside itself (config.json.bad, .bad-1, ...; never replacing one)
        before a value of it is dropped: the next save rewrites the file without what was refused."""
        if self._backup is not None or self.path is None:
            print(f"Warning: {reason}.")
            return
        for n in range(1000):
            target = self.path.with_name(self.path.name + (".bad" if n == 0 else f".bad-{n}"))
            try:
                with open(target, "xb") as out:
                    out.write(self.path.read_bytes())
            except FileExistsError:
                continue
            except OSError as error:
                print(f"Warning: {reason}; could not keep a copy ({error}).")
                return
            self._backup = target
            print(f"Warning: {reason}. The file as it was is kept as {target}.")
            return

    def add(self, info: OptionInfo) -> None:
        """Register a setting (extensions add theirs the same way); a stored value it refuses is reset."""
        with self._lock:
            self.definitions[info.key] = info
            if info.key in self._values:
                try:
                    self._values[info.key] = info.check(self._values[info.key])
                except FieldError as error:
                    self._set_aside(f"setting {error}; using the default {info.default!r} instead")
                    del self._values[info.key]

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

    def checked(self, values: Mapping[str, Any], known_only: bool = False) -> dict[str, Any]:
        """``values`` converted and checked against their settings, storing nothing; a FieldError names
        the first bad one. Unknown keys pass unchanged (an extension may declare them later) unless
        ``known_only``."""
        result = {}
        for key, value in values.items():
            info = self.definitions.get(key)
            if info is None:
                if known_only:
                    raise FieldError(key, "unknown setting")
                result[key] = value
            else:
                result[key] = info.check(value, self.resolvers)
        return result

    def update(self, values: Mapping[str, Any]) -> None:
        """Set several settings at once and save: all are checked first, so a bad one changes nothing."""
        with self._lock:
            checked = self.checked(values)
            self._values.update(checked)
            self.save()
            for key in checked:
                for watcher in self._watchers.get(key, ()):
                    watcher(checked[key])

    def watch(self, key: str, watcher: Callable[[Any], None]) -> None:
        """Call ``watcher`` with the value now and after every change of ``key`` (for process-wide state
        that follows a setting, such as the image decoder's pixel limit)."""
        with self._lock:
            self._watchers.setdefault(key, []).append(watcher)
            watcher(self.get(key))

    def snapshot(self, overrides: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """An immutable view of every setting now, with per-request overrides (checked) applied."""
        checked = self.checked(overrides or {})
        with self._lock:
            values = {key: info.default for key, info in self.definitions.items()}
            values.update(self._values)
        values.update(checked)
        return MappingProxyType(values)

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".config-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._values, f, indent=4, ensure_ascii=False, allow_nan=False)
            os.replace(tmp, self.path)
