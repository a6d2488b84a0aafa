"""The typed description of one generation request, and what it produces.

Field names follow the /sdapi/v1 request fields, so the UI, the API and scripts fill the same object.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from modules.fields import Resolvers, declare, fields_of
from modules.options import builtin_definitions

MAX_SIDE = 4096
MAX_BATCH = 64
MAX_STEPS = 1000
SEED_RANGE = {"minimum": -(2**63), "maximum": 2**64 - 1}  # what torch.manual_seed accepts

BOTH = frozenset({"txt2img", "img2img"})
TXT2IMG = frozenset({"txt2img"})
IMG2IMG = frozenset({"img2img"})


class ResizeMode(enum.IntEnum):
    """How img2img fits its input to the job's size; the values are A1111's API codes."""

    JUST_RESIZE = 0
    CROP_AND_RESIZE = 1
    RESIZE_AND_FILL = 2
    LATENT_UPSCALE = 3  # resized as latents, after encoding at the input's own size


class MaskedContent(enum.IntEnum):
    """What the masked area starts from before inpainting; the values are A1111's API codes."""

    FILL = 0
    ORIGINAL = 1
    LATENT_NOISE = 2
    LATENT_NOTHING = 3


class MaskMode(enum.IntEnum):
    INPAINT_MASKED = 0
    INPAINT_NOT_MASKED = 1


RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)")
MASKED_CONTENT = ("fill", "original", "latent noise", "latent nothing")
MASK_MODES = ("Inpaint masked", "Inpaint not masked")
INPAINT_AREAS = ("Whole picture", "Only masked")
USE_SAME_SAMPLER = "Use same sampler"
USE_SAME_SCHEDULER = "Use same scheduler"
USE_SAME_CHECKPOINT = "Use same checkpoint"


def _styles_are_names(value: list[Any]) -> None:
    if not all(isinstance(name, str) for name in value):
        raise ValueError("must be a list of style names")


def _script_args_are_json(value: list[Any]) -> None:
    # Script arguments arrive from JSON; anything else cannot be meant (and would reach extension code).
    if not all(isinstance(arg, str | int | float | bool | list | dict) or arg is None for arg in value):
        raise ValueError("must be a list of JSON values")


def _setting(key: str) -> dict[str, Any]:
    """A nullable job field taking the type and range of the setting it overrides for one job."""
    spec = builtin_definitions()[key].spec
    return {"kind": spec.kind, "nullable": True, "minimum": spec.minimum, "maximum": spec.maximum}


@dataclass
class GenerationJob:
    """One generation request. Each field is declared once, here: type, range or choices, default (and
    A1111's API default where it differs), UI label and control, parameters-text key, section.

    Fields set to None are "not set": the settings (or another field) decide.
    """

    prompt: str = declare("", label="Prompt", control="textbox", infotext="Prompt", section="prompt")
    negative_prompt: str = declare(
        "", label="Negative prompt", control="textbox", infotext="Negative prompt", section="prompt"
    )
    styles: list[str] = declare(
        [], label="Styles", lookup="style", api_default=None, validator=_styles_are_names, section="prompt"
    )
    seed: int = declare(
        -1, **SEED_RANGE, label="Seed", control="number", elem_id="seed", infotext="Seed", section="seed"
    )
    subseed: int = declare(
        -1,
        **SEED_RANGE,
        label="Variation seed",
        control="number",
        elem_id="subseed",
        infotext="Variation seed",
        section="seed",
    )
    subseed_strength: float = declare(
        0.0,
        minimum=0,
        maximum=1,
        step=0.01,
        label="Variation strength",
        control="slider",
        elem_id="subseed_strength",
        infotext="Variation seed strength",
        section="seed",
    )
    # 0 or less: no seed resize (A1111's API says -1).
    seed_resize_from_h: int = declare(
        0,
        minimum=-1,
        maximum=MAX_SIDE,
        ui_minimum=0,
        ui_maximum=2048,
        step=8,
        api_default=-1,
        label="Resize seed from height",
        control="slider",
        elem_id="seed_resize_from_h",
        infotext="Seed resize from-2",
        section="seed",
    )
    seed_resize_from_w: int = declare(
        0,
        minimum=-1,
        maximum=MAX_SIDE,
        ui_minimum=0,
        ui_maximum=2048,
        step=8,
        api_default=-1,
        label="Resize seed from width",
        control="slider",
        elem_id="seed_resize_from_w",
        infotext="Seed resize from-1",
        section="seed",
    )
    sampler_name: str = declare(
        "DPM++ 2M",
        lookup="sampler",
        api_default=None,
        label="Sampling method",
        control="dropdown",
        elem_id="sampling",
        infotext="Sampler",
        section="sampling",
    )
    scheduler: str = declare(
        "Automatic",
        lookup="scheduler",
        api_default=None,
        label="Schedule type",
        control="dropdown",
        elem_id="scheduler",
        infotext="Schedule type",
        section="sampling",
    )
    batch_size: int = declare(
        1,
        minimum=1,
        maximum=MAX_BATCH,
        ui_maximum=8,
        step=1,
        label="Batch size",
        control="slider",
        elem_id="batch_size",
        section="size",
    )
    n_iter: int = declare(
        1,
        minimum=1,
        maximum=1000,
        ui_maximum=100,
        step=1,
        label="Batch count",
        control="slider",
        elem_id="batch_count",
        section="size",
    )
    steps: int = declare(
        20,
        minimum=1,
        maximum=MAX_STEPS,
        ui_maximum=150,
        step=1,
        api_default=50,
        label="Sampling steps",
        control="slider",
        elem_id="steps",
        infotext="Steps",
        section="sampling",
    )
    cfg_scale: float = declare(
        7.0,
        minimum=-100,
        maximum=100,
        ui_minimum=1,
        ui_maximum=30,
        step=0.5,
        label="CFG Scale",
        control="slider",
        elem_id="cfg_scale",
        infotext="CFG scale",
        section="sampling",
    )
    width: int = declare(
        512,
        minimum=8,
        maximum=MAX_SIDE,
        ui_minimum=64,
        ui_maximum=2048,
        step=8,
        label="Width",
        control="slider",
        elem_id="width",
        infotext="Size-1",
        section="size",
    )
    height: int = declare(
        512,
        minimum=8,
        maximum=MAX_SIDE,
        ui_minimum=64,
        ui_maximum=2048,
        step=8,
        label="Height",
        control="slider",
        elem_id="height",
        infotext="Size-2",
        section="size",
    )
    # The settings own these values' ranges and parameters-text keys (Clip skip, Eta, Sigma churn...): a
    # job's value overrides the setting for that job, and a text read back sets the setting, as in A1111.
    clip_skip: int | None = declare(
        None, **_setting("CLIP_stop_at_last_layers"), api=False, label="Clip skip"
    )
    eta: float | None = declare(None, **_setting("eta_ancestral"))
    s_churn: float | None = declare(None, **_setting("s_churn"))
    s_tmin: float | None = declare(None, **_setting("s_tmin"))
    s_tmax: float | None = declare(None, **_setting("s_tmax"))
    s_noise: float | None = declare(None, **_setting("s_noise"))
    override_settings: dict[str, Any] = declare({}, api_default=None, section="settings")
    # hires fix (txt2img)
    enable_hr: bool = declare(
        False,
        modes=TXT2IMG,
        label="Enable hires. fix",
        control="checkbox",
        elem_id="enable_hr",
        section="hires",
    )
    hr_scale: float = declare(
        2.0,
        modes=TXT2IMG,
        minimum=1,
        maximum=8,
        ui_maximum=4,
        step=0.05,
        label="Upscale by",
        control="slider",
        elem_id="hr_scale",
        infotext="Hires upscale",
        section="hires",
    )
    hr_upscaler: str = declare(
        "Latent",
        modes=TXT2IMG,
        lookup="hires_upscaler",
        api_default=None,
        label="Upscaler",
        control="dropdown",
        elem_id="hr_upscaler",
        infotext="Hires upscaler",
        section="hires",
    )
    hr_second_pass_steps: int = declare(
        0,
        modes=TXT2IMG,
        minimum=0,
        maximum=MAX_STEPS,
        ui_maximum=150,
        step=1,
        label="Hires steps",
        control="slider",
        elem_id="hires_steps",
        infotext="Hires steps",
        section="hires",
    )
    hr_resize_x: int = declare(
        0,
        modes=TXT2IMG,
        minimum=0,
        maximum=MAX_SIDE,
        ui_maximum=2048,
        step=8,
        label="Resize width to",
        control="slider",
        elem_id="hr_resize_x",
        infotext="Hires resize-1",
        section="hires",
    )
    hr_resize_y: int = declare(
        0,
        modes=TXT2IMG,
        minimum=0,
        maximum=MAX_SIDE,
        ui_maximum=2048,
        step=8,
        label="Resize height to",
        control="slider",
        elem_id="hr_resize_y",
        infotext="Hires resize-2",
        section="hires",
    )
    hr_checkpoint_name: str | None = declare(
        None,
        kind=str,
        modes=TXT2IMG,
        nullable=True,
        lookup="checkpoint",
        same=USE_SAME_CHECKPOINT,
        label="Hires checkpoint",
        control="dropdown",
        elem_id="hr_checkpoint",
        infotext="Hires checkpoint",
        section="hires",
    )
    hr_sampler_name: str | None = declare(
        None,
        kind=str,
        modes=TXT2IMG,
        nullable=True,
        lookup="sampler",
        same=USE_SAME_SAMPLER,
        label="Hires sampling method",
        control="dropdown",
        elem_id="hr_sampler",
        infotext="Hires sampler",
        section="hires",
    )
    hr_scheduler: str | None = declare(
        None,
        kind=str,
        modes=TXT2IMG,
        nullable=True,
        lookup="scheduler",
        same=USE_SAME_SCHEDULER,
        label="Hires schedule type",
        control="dropdown",
        elem_id="hr_scheduler",
        infotext="Hires schedule type",
        section="hires",
    )
    hr_prompt: str = declare(
        "",
        modes=TXT2IMG,
        label="Hires prompt",
        control="textbox",
        elem_id="hr_prompt",
        infotext="Hires prompt",
        section="hires",
    )
    hr_negative_prompt: str = declare(
        "",
        modes=TXT2IMG,
        label="Hires negative prompt",
        control="textbox",
        elem_id="hr_neg_prompt",
        infotext="Hires negative prompt",
        section="hires",
    )
    # None: the mode's default (img2img 0.75, hires fix 0.7)
    denoising_strength: float | None = declare(
        None,
        kind=float,
        nullable=True,
        minimum=0,
        maximum=1,
        step=0.01,
        api_default=0.75,
        label="Denoising strength",
        control="slider",
        elem_id="denoising_strength",
        infotext="Denoising strength",
        section="img2img",
    )
    # img2img / inpainting
    init_images: list[Any] = declare([], modes=IMG2IMG, api=False, section="img2img")  # PIL images
    mask: Any = declare(None, kind=object, modes=IMG2IMG, nullable=True, api=False, section="inpaint")
    # A1111's latent_mask: a mask for the latents and "fill" only (scripts: outpainting mk2's sharper one);
    # the paste-back and a 9-channel model's conditioning keep ``mask``. White = repaint, not blurred.
    latent_mask: Any = declare(None, kind=object, modes=IMG2IMG, nullable=True, api=False, section="inpaint")
    resize_mode: ResizeMode = declare(
        ResizeMode.JUST_RESIZE,
        modes=IMG2IMG,
        coded=ResizeMode,
        choices=RESIZE_MODES,
        label="Resize mode",
        control="radio",
        infotext="Resize mode",
        section="img2img",
    )
    mask_blur: int = declare(
        4,
        modes=IMG2IMG,
        minimum=0,
        maximum=64,
        step=1,
        api_default=None,
        label="Mask blur",
        control="slider",
        elem_id="mask_blur",
        infotext="Mask blur",
        section="inpaint",
    )
    inpainting_fill: MaskedContent = declare(
        MaskedContent.ORIGINAL,
        modes=IMG2IMG,
        coded=MaskedContent,
        choices=MASKED_CONTENT,
        api_default=MaskedContent.FILL,
        label="Masked content",
        control="radio",
        elem_id="inpainting_fill",
        infotext="Masked content",
        section="inpaint",
    )
    inpaint_full_res: bool = declare(
        False,
        modes=IMG2IMG,
        choices=INPAINT_AREAS,
        api_default=True,
        label="Inpaint area",
        control="radio",
        elem_id="inpaint_full_res",
        infotext="Inpaint area",
        section="inpaint",
    )
    inpaint_full_res_padding: int = declare(
        32,
        modes=IMG2IMG,
        minimum=0,
        maximum=256,
        step=4,
        api_default=0,
        label="Only masked padding, pixels",
        control="slider",
        elem_id="inpaint_full_res_padding",
        infotext="Masked area padding",
        section="inpaint",
    )
    inpainting_mask_invert: MaskMode = declare(
        MaskMode.INPAINT_MASKED,
        modes=IMG2IMG,
        coded=MaskMode,
        choices=MASK_MODES,
        label="Mask mode",
        control="radio",
        elem_id="mask_mode",
        infotext="Mask mode",
        section="inpaint",
    )
    initial_noise_multiplier: float | None = declare(
        None, **_setting("initial_noise_multiplier"), modes=IMG2IMG
    )
    # a PIL image for depth checkpoints (otherwise estimated by a model in models/depth)
    depth_map: Any = declare(None, kind=object, modes=IMG2IMG, nullable=True, api=False, section="img2img")
    # scripts (extensions): the selected script and the always-on scripts' args, as the API sends them
    script_name: str | None = declare(None, kind=str, nullable=True, section="scripts")
    script_args: list[Any] = declare([], validator=_script_args_are_json, section="scripts")
    alwayson_scripts: dict[str, Any] = declare({}, section="scripts")
    # output
    do_not_save_samples: bool = declare(False, section="output")
    # img2img batch from the UI: the folder the person at the UI chose (never from the API)
    outpath_samples: str | None = declare(None, kind=str, nullable=True, api=False, section="output")
    do_not_save_grid: bool = declare(False, section="output")
    extra_generation_params: dict[str, Any] = declare({}, api=False, section="output")

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

    def validate(self, resolvers: Resolvers | None = None) -> None:
        """Check every field against its declaration, converting in place ("7" -> 7, 1 -> CROP_AND_RESIZE);
        a ValueError (FieldError) names the first field that is wrong and what it accepts."""
        for name, spec in JOB_FIELDS.items():
            setattr(self, name, spec.check(getattr(self, name), resolvers))
        # A1111 samples latents of side // 8, so a side that is not a multiple of 8 comes out rounded
        # down; the job is rounded here so that the parameters text and info say the size made.
        self.width, self.height = self.width // 8 * 8, self.height // 8 * 8


JOB_FIELDS = fields_of(GenerationJob)


def infotext_key(name: str) -> str:
    """The parameters-text key of a job field or a setting, from its declaration: writers use this,
    readers the same declarations, so a key is spelled once."""
    spec = JOB_FIELDS.get(name)
    key = spec.infotext_key if spec is not None else None
    if key is None and name in builtin_definitions():
        key = builtin_definitions()[name].infotext  # a setting (a job field may override it per job)
    if not key:
        raise KeyError(f"{name} is not written to the parameters text")
    return key


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
    # A1111's Processed.extra_images (a depth model's depth map): shown and sent after ``images``, with
    # no seed or parameters text, and not samples.
    extra_images: list[Any] = field(default_factory=list)

    @property
    def samples(self) -> list[Any]:
        """The generated images without the grid."""
        return self.images[self.index_of_first_image :]

    @classmethod
    def merged(cls, results: Iterable[GenerationResult], interrupted: bool = False) -> GenerationResult:
        """One result holding the images (not the grids) and records of several sub-jobs, in order."""
        merged = cls(
            images=[], seeds=[], subseeds=[], prompts=[], negative_prompts=[], infotexts=[], parameters={}
        )
        for result in results:
            merged.add(result)
        merged.interrupted |= interrupted
        return merged

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
            # A1111's Processed.comments: one line per note ("Networks not found: x", a skipped tag)
            "comments": "".join(f"{comment}\n" for comment in self.comments),
            **self.parameters,
        }
