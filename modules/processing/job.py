"""The typed description of one generation request, and what it produces.

Field names follow the /sdapi/v1 request fields, so the UI, the API and scripts fill the same object.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

MAX_SIDE = 4096
MAX_BATCH = 64


@dataclass
class GenerationJob:
    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] = field(default_factory=list)
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0.0
    seed_resize_from_h: int = 0
    seed_resize_from_w: int = 0
    sampler_name: str = "DPM++ 2M"
    scheduler: str = "Automatic"
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    clip_skip: int | None = None  # None: the "Clip skip" setting
    eta: float | None = None  # None: the sampler-parameters setting
    s_churn: float | None = None
    s_tmin: float | None = None
    s_tmax: float | None = None
    s_noise: float | None = None
    override_settings: dict[str, Any] = field(default_factory=dict)
    # hires fix (txt2img)
    enable_hr: bool = False
    hr_scale: float = 2.0
    hr_upscaler: str = "Latent"
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_sampler_name: str | None = None
    hr_scheduler: str | None = None
    hr_prompt: str = ""
    hr_negative_prompt: str = ""
    denoising_strength: float | None = None  # img2img default 0.75; hires fix default 0.7
    # img2img / inpainting (A1111 API field names and codes)
    init_images: list[Any] = field(default_factory=list)  # PIL images
    mask: Any = None  # PIL image, white = repaint (unless inpainting_mask_invert)
    resize_mode: int = 0  # 0 just resize, 1 crop and resize, 2 resize and fill, 3 latent upscale
    mask_blur: int = 4
    inpainting_fill: int = 1  # 0 fill, 1 original, 2 latent noise, 3 latent nothing
    inpaint_full_res: bool = False  # "Only masked"
    inpaint_full_res_padding: int = 32
    inpainting_mask_invert: int = 0  # 1 = inpaint not masked
    initial_noise_multiplier: float | None = None
    depth_map: Any = None  # PIL image for depth checkpoints (otherwise estimated by a model in models/depth)
    # scripts (extensions): the selected script and the always-on scripts' args, as the API sends them
    script_name: str | None = None
    script_args: list[Any] = field(default_factory=list)
    alwayson_scripts: dict[str, Any] = field(default_factory=dict)
    # output
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    extra_generation_params: dict[str, Any] = field(default_factory=dict)

    def derive(self, **changes: Any) -> GenerationJob:
        """A copy for a sub-job (X/Y/Z cells, matrix and file lines, batch items): its lists and dicts are
        its own, and it selects no script (the running script is the one making it)."""
        fresh = {
            "styles": list(self.styles),
            "override_settings": dict(self.override_settings),
            "extra_generation_params": dict(self.extra_generation_params),
            "init_images": list(self.init_images),
            "script_name": None,
            "script_args": [],
        }
        return dataclasses.replace(self, **{**fresh, **changes})

    def validate(self) -> None:
        """Reject out-of-range values with a message naming the field (UI and API show it as is)."""
        checks = [
            ("width", 8 <= self.width <= MAX_SIDE, f"must be between 8 and {MAX_SIDE}"),
            ("height", 8 <= self.height <= MAX_SIDE, f"must be between 8 and {MAX_SIDE}"),
            ("steps", 1 <= self.steps <= 1000, "must be between 1 and 1000"),
            ("batch_size", 1 <= self.batch_size <= MAX_BATCH, f"must be between 1 and {MAX_BATCH}"),
            ("n_iter", 1 <= self.n_iter <= 1000, "must be between 1 and 1000"),
            ("cfg_scale", -100 <= self.cfg_scale <= 100, "must be between -100 and 100"),
            ("subseed_strength", 0 <= self.subseed_strength <= 1, "must be between 0 and 1"),
        ]
        if self.clip_skip is not None:
            checks.append(("clip_skip", 1 <= self.clip_skip <= 12, "must be between 1 and 12"))
        for name, ok, message in checks:
            if not ok:
                raise ValueError(f"{name} {message} (got {getattr(self, name)!r})")


@dataclass
class GenerationResult:
    images: list[Any]
    seeds: list[int]
    subseeds: list[int]
    prompts: list[str]
    negative_prompts: list[str]
    infotexts: list[str]
    parameters: dict[str, Any]
    saved_paths: list[str] = field(default_factory=list)
    interrupted: bool = False
    comments: list[str] = field(default_factory=list)  # notes for the user, e.g. "Networks not found: x"
    index_of_first_image: int = 0  # 1 when images[0] is the grid of the others

    @property
    def samples(self) -> list[Any]:
        """The generated images without the grid."""
        return self.images[self.index_of_first_image :]

    def add(self, other: GenerationResult) -> None:
        """Append another job's images (not its grid) and their records: scripts combining sub-jobs."""
        self.images += other.samples
        self.infotexts += other.infotexts[other.index_of_first_image :]
        self.seeds += other.seeds
        self.subseeds += other.subseeds
        self.prompts += other.prompts
        self.negative_prompts += other.negative_prompts
        self.saved_paths += other.saved_paths
        self.parameters = self.parameters or other.parameters
        self.interrupted |= other.interrupted

    @property
    def info(self) -> dict[str, Any]:
        """The summary the UI shows and the API returns as its ``info`` JSON."""
        return {
            "prompt": self.prompts[0] if self.prompts else "",
            "all_prompts": self.prompts,
            "negative_prompt": self.negative_prompts[0] if self.negative_prompts else "",
            "all_negative_prompts": self.negative_prompts,
            "seed": self.seeds[0] if self.seeds else -1,
            "all_seeds": self.seeds,
            "subseed": self.subseeds[0] if self.subseeds else -1,
            "all_subseeds": self.subseeds,
            "infotexts": self.infotexts,
            "index_of_first_image": self.index_of_first_image,
            **self.parameters,
        }
