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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modules.extensions import registry as _registry
from modules.extensions.payloads import Callback, ImageSavedParams, PostprocessImageArgs
from modules.grids import GridAnnotation, add_params, draw_grid_annotations, draw_prompt_matrix, save_grid, save_sample
from modules.images import image_grid
from modules.lookup import Lookup
from modules.models.bundle import ModelBundle
from modules.options import OptionInfo
from modules.paths import Paths
from modules.processing.job import MASKED_CONTENT, RESIZE_MODES, GenerationJob, GenerationResult, MaskedContent, ResizeMode
from modules.processing.pipeline import JobPlan
from modules.sampling.denoiser import AfterCFG, DenoiserStep

API_VERSION = "1.1"

__all__ = [
    "API_VERSION", "MASKED_CONTENT", "RESIZE_MODES", "AfterCFG", "AlwaysVisible", "Callback", "DenoiserStep", "ExtraNetwork", "GenerationJob",
    "GenerationResult", "GridAnnotation", "ImageSavedParams", "JobContext", "Lookup", "MaskedContent", "ModelBundle", "OptionInfo", "Paths",
    "PostprocessImageArgs", "ResizeMode", "Script", "add_params", "draw_grid_annotations",
    "draw_prompt_matrix", "image_grid", "on_after_cfg", "on_app_started", "on_before_image_saved",
    "on_cfg_denoiser", "on_image_saved", "on_infotext_pasted", "on_model_loaded", "on_ui_settings",
    "on_ui_tabs", "register_extra_network", "save_grid", "save_sample", "unet_keys_to_original",
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
parameters text), ``model`` (the ModelBundle in use), ``settings`` (this job's settings snapshot),
``progress`` and ``interrupted``, ``lookup`` (sampler, schedule type, checkpoint and VAE names),
``paths`` (the app's folders), ``process_images(job)`` (run another job of the same mode, for a
selectable script's ``run``) and ``run_jobs(jobs, job_count)`` (several, as one progress bar, stopping
at Interrupt)."""


def unet_keys_to_original(keys: Mapping[str, Any]) -> dict[str, Any]:
    """Diffusers-format UNet state-dict keys -> the original (CompVis) keys LoRA files are written for;
    values are carried along."""
    from modules.models.convert import unet_to_original

    return unet_to_original(dict(keys))


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


def _callback(kind: Callback) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _registry.current().add_callback(kind, fn)
        return fn

    register.__name__ = f"on_{kind.value}"
    register.__doc__ = f"Register a callback for {kind.value!r} (usable as a decorator); see ``Callback``."
    return register


# One registration function per callback kind; the kinds and their arguments are listed on Callback.
on_app_started = _callback(Callback.APP_STARTED)
on_model_loaded = _callback(Callback.MODEL_LOADED)
on_ui_tabs = _callback(Callback.UI_TABS)
on_ui_settings = _callback(Callback.UI_SETTINGS)
on_before_image_saved = _callback(Callback.BEFORE_IMAGE_SAVED)
on_image_saved = _callback(Callback.IMAGE_SAVED)
on_cfg_denoiser = _callback(Callback.CFG_DENOISER)
on_after_cfg = _callback(Callback.AFTER_CFG)
on_infotext_pasted = _callback(Callback.INFOTEXT_PASTED)
