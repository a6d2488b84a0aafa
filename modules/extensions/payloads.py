"""What extension hooks receive and the kinds of callbacks there are: plain types that the processing
code and the public extension API both import, so neither has to import the other."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Callback(enum.StrEnum):
    """The callback points extensions register for (``api.on_<value>``), each with its arguments."""

    APP_STARTED = "app_started"  # fn(demo, fastapi_app); demo is None with --nowebui
    MODEL_LOADED = "model_loaded"  # fn(bundle)
    UI_TABS = "ui_tabs"  # fn() -> list of (gr.Blocks, title, elem_id)
    UI_SETTINGS = "ui_settings"  # fn(options): options.add(OptionInfo(...))
    BEFORE_IMAGE_SAVED = "before_image_saved"  # fn(ImageSavedParams)
    IMAGE_SAVED = "image_saved"  # fn(ImageSavedParams)
    CFG_DENOISER = "cfg_denoiser"  # fn(DenoiserStep): x, sigma, call_index, conds
    AFTER_CFG = "after_cfg"  # fn(AfterCFG): denoised
    INFOTEXT_PASTED = "infotext_pasted"  # fn(text, params dict): may add/change params


@dataclass
class PostprocessImageArgs:
    image: Any  # PIL image; replace it to change the saved/shown image
    index: int  # the image's index in the whole job


@dataclass
class ImageSavedParams:
    image: Any
    filename: str
    infotext: str | None
    mode: str
