"""Request and response bodies of the /sdapi/v1 API, with AUTOMATIC1111 1.10's field names and defaults.

The txt2img/img2img request models are derived from ``GenerationJob``'s field declarations (type,
range or choices, A1111's API default), plus the A1111 fields that are not job fields. Clients written
for A1111 send these exact names and often every field (webuiapi does), so the models accept all of
A1111's fields, including the ones this app ignores (restore_faces, tiling, refiner_*...); fields A1111
does not know are ignored as A1111's pydantic models ignore them. A1111 generates its models from the
processing classes, which makes every field nullable: ``null`` here means "not given" and the default
applies.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from modules.fields import Field as JobField
from modules.options import builtin_definitions
from modules.processing.job import BOTH, IMG2IMG, JOB_FIELDS, TXT2IMG


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        # A1111's models are all Optional[...]; clients send null for "unset" (webuiapi: script_name,
        # hr_sampler_name...). Dropping those keys gives the default and keeps them "unset" for infotext.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


def _annotation(spec: JobField) -> Any:
    """The JSON type A1111's schema gives a job field (coded choices are integers, as in A1111)."""
    if spec.coded is not None:
        base: Any = int
    elif spec.kind is list:
        base = list[str] if spec.lookup == "style" else list[Any]
    elif spec.kind is dict:
        base = dict[str, Any]
    else:
        base = spec.kind
    return base | None if spec.nullable or spec.public_default is None else base


def _pydantic_field(spec: JobField) -> Any:
    default = spec.public_default
    if isinstance(default, enum.IntEnum):
        default = int(default)
    constraints: dict[str, Any] = {"description": f"{spec.label}: {spec.allowed()}" if spec.label else None}
    if spec.minimum is not None:
        constraints["ge"] = spec.minimum
    if spec.maximum is not None:
        constraints["le"] = spec.maximum
    if spec.coded is not None and spec.choices is not None:
        constraints.update(ge=0, le=len(spec.choices) - 1)
    if spec.kind is float:
        constraints["allow_inf_nan"] = False
    # pydantic copies a mutable default for each request, and the schema shows it (A1111's does)
    return Field(default=default, **constraints)


def _job_fields(modes: frozenset[str]) -> dict[str, Any]:
    """The request fields declared on ``GenerationJob`` for exactly these modes."""
    return {
        name: (_annotation(spec), _pydantic_field(spec))
        for name, spec in JOB_FIELDS.items()
        if spec.api and spec.modes == modes
    }


def _like_setting(key: str) -> Any:
    """A nullable request field whose range is the setting ``key``'s (A1111 lets some requests set them)."""
    spec = builtin_definitions()[key].spec
    return Field(default=None, ge=spec.minimum, le=spec.maximum, allow_inf_nan=False)


# Fields of A1111's request bodies that are not job fields: accepted (clients send them all), some read
# by the API layer (sampler_index, save_images, send_images, infotext, mask_blur_x...), the rest ignored.
_A1111_COMMON: dict[str, Any] = {
    "restore_faces": (bool | None, None),
    "tiling": (bool | None, None),
    "s_min_uncond": (float | None, _like_setting("s_min_uncond")),
    "override_settings_restore_afterwards": (bool, True),
    "refiner_checkpoint": (str | None, None),
    "refiner_switch_at": (float | None, Field(default=None, ge=0, le=1, allow_inf_nan=False)),
    "disable_extra_networks": (bool, False),
    "firstpass_image": (str | None, None),
    "comments": (dict[str, Any] | None, None),
    # Fields A1111's API adds on top of the processing class.
    "sampler_index": (str, "Euler"),  # deprecated; used when sampler_name is empty, hence Euler by default
    "send_images": (bool, True),
    "save_images": (bool, False),
    "force_task_id": (str | None, None),
    "infotext": (str | None, None),
}
_A1111_TXT2IMG: dict[str, Any] = {
    "firstphase_width": (int, Field(default=0, ge=0, le=JOB_FIELDS["width"].maximum)),
    "firstphase_height": (int, Field(default=0, ge=0, le=JOB_FIELDS["height"].maximum)),
}
_A1111_IMG2IMG: dict[str, Any] = {
    "init_images": (list[str] | None, None),
    # A1111's slider for instruct-pix2pix models: 0 to 3
    "image_cfg_scale": (float | None, Field(default=None, ge=0, le=3, allow_inf_nan=False)),
    "mask": (str | None, None),
    "mask_blur_x": (int, Field(default=4, ge=0, le=JOB_FIELDS["mask_blur"].maximum)),
    "mask_blur_y": (int, Field(default=4, ge=0, le=JOB_FIELDS["mask_blur"].maximum)),
    "mask_round": (bool, True),
    "latent_mask": (str | None, None),
    "include_init_images": (bool, Field(default=False, exclude=True)),
}

GenerationRequest = create_model(
    "GenerationRequest",
    __base__=_Body,
    __doc__="Fields shared by txt2img and img2img (A1111's StableDiffusionProcessing).",
    **_job_fields(BOTH),
    **_A1111_COMMON,
)
# Class names are A1111's OpenAPI schema names, which generated clients use.
StableDiffusionProcessingTxt2Img = create_model(
    "StableDiffusionProcessingTxt2Img", __base__=GenerationRequest, **_job_fields(TXT2IMG), **_A1111_TXT2IMG
)
StableDiffusionProcessingImg2Img = create_model(
    "StableDiffusionProcessingImg2Img", __base__=GenerationRequest, **_job_fields(IMG2IMG), **_A1111_IMG2IMG
)


class TextToImageResponse(BaseModel):
    images: list[str] | None = Field(default=None, description="The generated images, base64-encoded.")
    parameters: dict[str, Any]
    info: str = Field(description="JSON text: seeds, prompts, infotexts and settings of the result.")


class ImageToImageResponse(TextToImageResponse):
    pass


class ExtrasRequest(_Body):
    resize_mode: Literal[0, 1] = Field(default=0, description="0: scale by upscaling_resize; 1: to w x h.")
    show_extras_results: bool = True
    gfpgan_visibility: float = Field(default=0, ge=0, le=1)
    codeformer_visibility: float = Field(default=0, ge=0, le=1)
    codeformer_weight: float = Field(default=0, ge=0, le=1)
    # A1111's Extras sliders: scale 1 to 8, target sides up to 8192 (the result is checked again)
    upscaling_resize: float = Field(default=2, gt=0, le=8)
    upscaling_resize_w: int = Field(default=512, ge=1, le=8192)
    upscaling_resize_h: int = Field(default=512, ge=1, le=8192)
    upscaling_crop: bool = True
    upscaler_1: str = "None"
    upscaler_2: str = "None"
    extras_upscaler_2_visibility: float = Field(default=0, ge=0, le=1)
    upscale_first: bool = False


class ExtrasSingleImageRequest(ExtrasRequest):
    image: str = Field(default="", description="The image, base64-encoded (a data: URL prefix is allowed).")


class FileData(BaseModel):
    data: str = Field(description="The file, base64-encoded.")
    name: str


class ExtrasBatchImagesRequest(ExtrasRequest):
    imageList: list[FileData]  # noqa: N815 - A1111's field name


class ExtrasSingleImageResponse(BaseModel):
    html_info: str
    image: str | None = None


class ExtrasBatchImagesResponse(BaseModel):
    html_info: str
    images: list[str]


class PNGInfoRequest(BaseModel):
    image: str


class PNGInfoResponse(BaseModel):
    info: str
    items: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)


class InterrogateRequest(BaseModel):
    image: str = Field(default="", description="The image, base64-encoded (a data: URL prefix is allowed).")
    model: str = Field(default="clip", description='The interrogator: "clip" (BLIP caption + CLIP phrases).')


class InterrogateResponse(BaseModel):
    caption: str | None = Field(default=None, description="The image described as a prompt.")


class ProgressResponse(BaseModel):
    progress: float = Field(description="0..1 over the whole request")
    eta_relative: float = Field(description="estimated seconds left")
    state: dict[str, Any]
    current_image: str | None = None
    textinfo: str | None = None
    current_task: str | None = None
    # Ours, answered when /progress is asked about one task (``task_id``): where it stands in the queue.
    task_state: str | None = Field(default=None, description="waiting, running, done, failed or cancelled")
    queue_position: int | None = Field(default=None, description="0: running, 1: next; none when finished")
    queue_length: int | None = Field(default=None, description="tasks waiting in all")


class SamplerItem(BaseModel):
    name: str
    aliases: list[str]
    options: dict[str, Any]


class SchedulerItem(BaseModel):
    name: str
    label: str
    aliases: list[str] | None
    default_rho: float | None
    need_inner_model: bool | None


class UpscalerItem(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    model_name: str | None
    model_path: str | None
    model_url: str | None
    scale: float | None


class LatentUpscalerModeItem(BaseModel):
    name: str


class SDModelItem(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    title: str
    model_name: str
    hash: str | None
    sha256: str | None
    filename: str
    config: str | None


class SDVaeItem(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    filename: str


class LoraItem(BaseModel):
    name: str
    alias: str
    path: str
    metadata: dict[str, Any]


class PromptStyleItem(BaseModel):
    name: str
    prompt: str | None
    negative_prompt: str | None


class EmbeddingItem(BaseModel):
    step: int | None
    sd_checkpoint: str | None
    sd_checkpoint_name: str | None
    shape: int = Field(description="the width of each vector")
    vectors: int = Field(description="the number of vectors")


class EmbeddingsResponse(BaseModel):
    loaded: dict[str, EmbeddingItem]
    skipped: dict[str, EmbeddingItem]


class MemoryResponse(BaseModel):
    ram: dict[str, Any]
    cuda: dict[str, Any]


class ScriptsList(BaseModel):
    txt2img: list[str] | None = None
    img2img: list[str] | None = None


class ScriptInfo(BaseModel):
    name: str | None = None
    is_alwayson: bool | None = None
    is_img2img: bool | None = None
    args: list[dict[str, Any]] = Field(default_factory=list)


class ExtensionItem(BaseModel):
    name: str
    remote: str
    branch: str
    commit_hash: str
    version: str
    commit_date: int
    enabled: bool
