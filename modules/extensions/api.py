"""The public extension API, version 1. Extensions import only this module.

An extension is a folder under extensions/ (or extensions-builtin/) with any of:

    scripts/*.py      Script subclasses and callback registrations, imported at start
    install.py        run once per change in a subprocess (install requirements)
    preload.py        ``preload(parser)`` adds command-line flags before they are parsed
    javascript/*.js   added to the page;  style.css  added to the page's styles
    metadata.ini      [Extension] Name=..., Requires=other, Before=..., After=... (load order)

Scripts get the running job as a ``JobContext`` (``p``), never a global: read and change its fields in
the hooks below. Callbacks are registered per extension with ``on_*`` functions; a failing script or
callback is reported with the extension's name and never stops the app or the generation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modules.extensions import registry as _registry
from modules.options import OptionInfo
from modules.processing.job import GenerationJob, GenerationResult
from modules.processing.pipeline import JobPlan
from modules.sampling.denoiser import AfterCFG, DenoiserStep

API_VERSION = "1.0"

__all__ = [
    "API_VERSION", "AfterCFG", "AlwaysVisible", "DenoiserStep", "ExtraNetwork", "GenerationJob",
    "GenerationResult", "ImageSavedParams", "JobContext", "OptionInfo", "PostprocessImageArgs", "Script",
    "on_after_cfg", "on_app_started", "on_before_image_saved", "on_cfg_denoiser", "on_image_saved",
    "on_infotext_pasted", "on_model_loaded", "on_ui_settings", "on_ui_tabs", "register_extra_network",
]


class _AlwaysVisible:
    def __repr__(self) -> str:
        return "AlwaysVisible"


AlwaysVisible = _AlwaysVisible()
"""Return this from ``Script.show`` for a script that always runs, with its UI in the generation panel."""


JobContext = JobPlan
"""What scripts see of a running job (A1111 scripts call it ``p``): ``job`` (the request's fields),
``mode`` ("txt2img"/"img2img"), ``all_prompts``, ``all_negative_prompts``, ``all_seeds``, ``all_subseeds``
(per image; change them in ``process``), ``extra_generation_params`` (written into every image's
parameters text), ``model`` (the ModelBundle in use), ``settings`` (this job's settings snapshot) and
``process_images(job)`` (run another job of the same mode, for a selectable script's ``run``)."""


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


class Script:
    """Subclass in an extension's scripts/*.py. Every hook is optional.

    A selectable script (``show`` returns True) appears in the Script dropdown and replaces the job with
    its ``run``; an ``AlwaysVisible`` script runs its hooks for every job. ``ui`` returns Gradio components
    whose values arrive as ``*args`` in every hook, and are recorded in the parameters text when the
    script puts them in ``p.extra_generation_params``.
    """

    name: str | None = None  # set by the loader: the extension's name
    infotext_fields: list[tuple[Any, str]] = []  # (component, infotext key) pairs for pasting parameters

    def title(self) -> str:
        raise NotImplementedError

    def show(self, is_img2img: bool) -> bool | _AlwaysVisible:
        return True

    def ui(self, is_img2img: bool) -> list[Any]:
        return []

    def run(self, p: JobContext, *args: Any) -> GenerationResult | None:
        """Selectable scripts: do the job (e.g. several runtime calls) and return the combined result."""
        return None

    def process(self, p: JobContext, *args: Any) -> None:
        """Before the first batch: change prompts, seeds, parameters."""

    def before_process_batch(self, p: JobContext, *args: Any, batch_number: int, prompts: list[str],
                             seeds: list[int], subseeds: list[int]) -> None:
        """Before a batch's prompts are parsed (prompts may still be changed in place)."""

    def process_batch(self, p: JobContext, *args: Any, batch_number: int, prompts: list[str],
                      seeds: list[int], subseeds: list[int]) -> None:
        """After extra networks are activated, right before the batch is conditioned and sampled."""

    def post_sample(self, p: JobContext, *args: Any, batch_number: int, samples: Any) -> None:
        """After sampling, before decoding (samples are latents)."""

    def postprocess_batch(self, p: JobContext, *args: Any, batch_number: int, images: list[Any]) -> None:
        """After a batch is decoded."""

    def postprocess_image(self, p: JobContext, pp: PostprocessImageArgs, *args: Any) -> None:
        """For each image before it is saved; set ``pp.image`` to replace it."""

    def before_hr(self, p: JobContext, *args: Any) -> None:
        """Before the hires fix's second pass."""

    def postprocess(self, p: JobContext, result: GenerationResult, *args: Any) -> None:
        """After the whole job."""


@dataclass
class ExtraNetwork:
    """A handler for ``<name:args>`` in prompts (``<lora:film:0.8>``): activate before a batch is
    conditioned, deactivate after the job. ``activate`` gets every call of this network in the batch's
    first prompt (as in A1111, one set of networks serves the whole batch).
    Patch the model only in ways ``deactivate`` fully undoes."""

    name: str
    activate: Callable[[JobContext, list[Any]], None]
    deactivate: Callable[[JobContext], None]
    extra: dict[str, Any] = field(default_factory=dict)


def register_extra_network(network: ExtraNetwork) -> None:
    _registry.current().extra_networks[network.name] = network


def _callback(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _registry.current().add_callback(kind, fn)
        return fn

    register.__name__ = f"on_{kind}"
    register.__doc__ = f"Register a callback for '{kind}' (usable as a decorator)."
    return register


on_app_started = _callback("app_started")  # fn(demo, fastapi_app)
on_model_loaded = _callback("model_loaded")  # fn(bundle)
on_ui_tabs = _callback("ui_tabs")  # fn() -> list of (gr.Blocks, title, elem_id)
on_ui_settings = _callback("ui_settings")  # fn(options): options.add(OptionInfo(...))
on_before_image_saved = _callback("before_image_saved")  # fn(ImageSavedParams)
on_image_saved = _callback("image_saved")  # fn(ImageSavedParams)
on_cfg_denoiser = _callback("cfg_denoiser")  # fn(DenoiserStep): x, sigma, call_index, conds
on_after_cfg = _callback("after_cfg")  # fn(AfterCFG): denoised
on_infotext_pasted = _callback("infotext_pasted")  # fn(text, params dict): may add/change params
