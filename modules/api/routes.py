"""The /sdapi/v1 endpoints over one ``Runtime``: the paths, methods and response shapes of A1111 1.10.

Handlers are plain (non-async) functions, so FastAPI runs each in a worker thread: a generation waits for
the runtime's queue lock (shared with the UI) while /progress, /interrupt and /skip answer at once.
Errors: HTTPException as raised (4xx with {"detail": ...}); anything unexpected becomes A1111's JSON
error body with status 500, logged with its traceback, and never leaves the queue locked (the runtime
releases it in ``finally``).
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from modules.api import catalog, codec, generation
from modules.api import models as m
from modules.images import read_info_from_image
from modules.infotext import parse_infotext
from modules.models.storage import ModelFileError
from modules.processing import postprocess
from modules.processing.job import GenerationJob

log = logging.getLogger(__name__)
PREFIX = "/sdapi/v1"
# A1111 also has "deepdanbooru" (an anime tagger); this app ships only the CLIP interrogator.
INTERROGATORS = ("clip",)


class ApiRoute(APIRoute):
    """A route that answers unexpected exceptions with A1111's JSON error body instead of plain text."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (HTTPException, RequestValidationError):
                raise
            except ModelFileError as error:  # a client's choice of a broken file: refused, nothing changed
                return JSONResponse(status_code=422, content={"detail": str(error)})
            except Exception as error:
                log.exception("API error: %s %s", request.method, request.url.path)
                body = {"error": type(error).__name__, "detail": "", "body": "", "errors": str(error)}
                return JSONResponse(status_code=500, content=body)

        return guarded


class SdApi:
    """The endpoint handlers; ``router()`` registers them."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def router(self, dependencies: list[Any] | None = None) -> APIRouter:
        router = APIRouter(prefix=PREFIX, route_class=ApiRoute, dependencies=dependencies or [])
        for method, path, handler, response_model in self._routes():
            router.add_api_route(path, handler, methods=[method], response_model=response_model)
        return router

    def _routes(self) -> list[tuple[str, str, Callable[..., Any], Any]]:
        get, post = "GET", "POST"
        return [
            (post, "/txt2img", self.txt2img, m.TextToImageResponse),
            (post, "/img2img", self.img2img, m.ImageToImageResponse),
            (post, "/extra-single-image", self.extra_single_image, m.ExtrasSingleImageResponse),
            (post, "/extra-batch-images", self.extra_batch_images, m.ExtrasBatchImagesResponse),
            (post, "/png-info", self.png_info, m.PNGInfoResponse),
            (post, "/interrogate", self.interrogate, m.InterrogateResponse),
            (get, "/progress", self.progress, m.ProgressResponse),
            (post, "/interrupt", self.interrupt, None),
            (post, "/skip", self.skip, None),
            (get, "/options", self.get_options, dict[str, Any]),
            (post, "/options", self.set_options, None),
            (get, "/cmd-flags", self.cmd_flags, dict[str, Any]),
            (get, "/samplers", self.samplers, list[m.SamplerItem]),
            (get, "/schedulers", self.schedulers, list[m.SchedulerItem]),
            (get, "/upscalers", self.upscalers, list[m.UpscalerItem]),
            (get, "/latent-upscale-modes", self.latent_upscale_modes, list[m.LatentUpscalerModeItem]),
            (get, "/sd-models", self.sd_models, list[m.SDModelItem]),
            (get, "/sd-vae", self.sd_vae, list[m.SDVaeItem]),
            (get, "/loras", self.loras, list[m.LoraItem]),
            (get, "/embeddings", self.embeddings, m.EmbeddingsResponse),
            (get, "/prompt-styles", self.prompt_styles, list[m.PromptStyleItem]),
            (get, "/hypernetworks", self.hypernetworks, list[dict[str, Any]]),
            (get, "/face-restorers", self.empty_list, list[dict[str, Any]]),
            (get, "/realesrgan-models", self.empty_list, list[dict[str, Any]]),
            (get, "/scripts", self.scripts, m.ScriptsList),
            (get, "/script-info", self.script_info, list[m.ScriptInfo]),
            (get, "/extensions", self.extensions, list[m.ExtensionItem]),
            (get, "/memory", self.memory, m.MemoryResponse),
            (post, "/refresh-checkpoints", self.refresh_checkpoints, None),
            (post, "/refresh-vae", self.nothing, None),
            (post, "/refresh-loras", self.refresh_loras, None),
            (post, "/refresh-embeddings", self.refresh_embeddings, None),
            (post, "/unload-checkpoint", self.unload_checkpoint, None),
            (post, "/reload-checkpoint", self.reload_checkpoint, None),
        ]

    # --- generation -----------------------------------------------------------------------------------

    def txt2img(self, request: m.StableDiffusionProcessingTxt2Img) -> dict[str, Any]:
        job = generation.txt2img_job(self.runtime, request)
        return self._generate("txt2img", request, job)

    def img2img(self, request: m.StableDiffusionProcessingImg2Img) -> dict[str, Any]:
        job = generation.img2img_job(self.runtime, request)
        return self._generate("img2img", request, job)

    def _generate(self, mode: str, request: m.GenerationRequest, job: GenerationJob) -> dict[str, Any]:
        try:
            result = self.runtime.run_job(mode, job)
        except ValueError as error:  # what processing rejects (prompt, sizes...) names the problem
            raise HTTPException(status_code=422, detail=str(error)) from error
        if not request.override_settings_restore_afterwards and job.override_settings:
            # A1111 leaves such overrides in place after the request; we store them as settings.
            self.runtime.options.update(job.override_settings)
        settings = self.runtime.options.snapshot(job.override_settings)
        # With several images, processing puts their grid first, as A1111's API returns them.
        encoded = (
            generation.encode_images(result.images, result.infotexts, settings) if request.send_images else []
        )
        return {
            "images": encoded,
            "parameters": generation.echo_parameters(request),
            "info": generation.info_json(job, result),
        }

    # --- extras and PNG info --------------------------------------------------------------------------

    def extra_single_image(self, request: m.ExtrasSingleImageRequest) -> m.ExtrasSingleImageResponse:
        image = codec.decode_image(request.image, "image")
        outputs, text = self._upscale([image], request)
        return m.ExtrasSingleImageResponse(image=self._encode_extras(outputs)[0], html_info=html_info(text))

    def extra_batch_images(self, request: m.ExtrasBatchImagesRequest) -> m.ExtrasBatchImagesResponse:
        images = [codec.decode_image(f.data, f"imageList[{i}]") for i, f in enumerate(request.imageList)]
        outputs, text = self._upscale(images, request)
        return m.ExtrasBatchImagesResponse(images=self._encode_extras(outputs), html_info=html_info(text))

    def _upscale(self, images: list[Any], request: m.ExtrasRequest) -> tuple[list[Any], str]:
        settings = postprocess.UpscaleSettings(
            mode=request.resize_mode,
            scale=request.upscaling_resize,
            width=request.upscaling_resize_w,
            height=request.upscaling_resize_h,
            crop=request.upscaling_crop,
            upscaler_1=request.upscaler_1,
            upscaler_2=request.upscaler_2,
            upscaler_2_visibility=request.extras_upscaler_2_visibility,
        )
        try:
            postprocess.check_upscaler(request.upscaler_1, "upscaler_1")  # fail before waiting for the queue
            postprocess.check_upscaler(request.upscaler_2, "upscaler_2")
            with self.runtime.queue_lock:  # one heavy job at a time, as A1111 queues extras too
                return postprocess.run_all(images, settings, _image_text)
        except postprocess.UnknownUpscaler as error:
            raise HTTPException(status_code=404, detail=str(error)) from error
        except ValueError as error:
            raise HTTPException(status_code=422, detail=str(error)) from error

    def _encode_extras(self, images: list[Any]) -> list[str]:
        options = self.runtime.options
        file_format = str(options.get("samples_format"))
        keep_text = bool(options.get("enable_pnginfo"))
        return [
            codec.encode_image(i, file_format, codec.text_chunks(i) if keep_text else None) for i in images
        ]

    def png_info(self, request: m.PNGInfoRequest) -> m.PNGInfoResponse:
        if not request.image.strip():
            return m.PNGInfoResponse(info="")  # A1111 answers an empty image with empty info
        text, items = read_info_from_image(codec.decode_image(request.image, "image"))
        text = text or ""
        items = {key: value for key, value in items.items() if _json_safe(value)}
        parameters = parse_infotext(text)
        # As in A1111, extensions may read their own keys out of the text into the parsed dict.
        self.runtime.extensions.call("infotext_pasted", text, parameters)
        return m.PNGInfoResponse(info=text, items=items, parameters=parameters)

    # --- interrogate -----------------------------------------------------------------------------------

    def interrogate(self, request: m.InterrogateRequest) -> m.InterrogateResponse:
        from modules.interrogate import MissingModel

        if request.model not in INTERROGATORS:
            # A1111 answers an unknown model with 404 "Model not found"; we also list the known ones.
            known = ", ".join(INTERROGATORS)
            raise HTTPException(
                status_code=404, detail=f"model: {request.model!r} not found; available: {known}"
            )
        if not request.image.strip():
            raise HTTPException(status_code=400, detail="image: no image given")
        image = codec.decode_image(request.image, "image")
        try:
            return m.InterrogateResponse(caption=self.runtime.interrogate(image))
        except MissingModel as error:  # the server lacks the model folder: not the client's fault
            raise HTTPException(status_code=503, detail=str(error)) from error

    # --- progress -------------------------------------------------------------------------------------

    def progress(self, skip_current_image: bool = False) -> m.ProgressResponse:
        report = self.runtime.progress.report()
        state = {
            "skipped": report.skipped,
            "interrupted": report.interrupted,
            "stopping_generation": False,
            "job": report.job,
            "job_count": report.job_count if report.active else 0,  # A1111 zeroes it when a job ends
            "job_timestamp": self._job_timestamp(),
            "job_no": report.job_no,
            "sampling_step": report.sampling_step,
            "sampling_steps": report.sampling_steps,
        }
        textinfo = report.textinfo or None
        if not report.active or not report.job_count:
            return m.ProgressResponse(progress=0, eta_relative=0, state=state, textinfo=textinfo)
        # A1111 adds 0.01 so that a job that has just started is not reported as idle (0).
        fraction = 0.01 + report.job_no / report.job_count
        if report.sampling_steps:
            fraction += report.sampling_step / report.sampling_steps / report.job_count
        elapsed = time.monotonic() - self.runtime.progress.started_at
        preview = None
        if report.preview is not None and not skip_current_image:
            preview = codec.encode_image(report.preview, str(self.runtime.options.get("samples_format")))
        return m.ProgressResponse(
            progress=min(fraction, 1.0),
            eta_relative=elapsed / fraction - elapsed,
            state=state,
            current_image=preview,
            textinfo=textinfo,
        )

    def _job_timestamp(self) -> str:
        started = time.time() - (time.monotonic() - self.runtime.progress.started_at)
        return time.strftime("%Y%m%d%H%M%S", time.localtime(started))

    def interrupt(self) -> dict[str, Any]:
        self.runtime.progress.interrupt()
        return {}

    def skip(self) -> None:
        self.runtime.progress.skip()

    # --- settings -------------------------------------------------------------------------------------

    def get_options(self) -> dict[str, Any]:
        values = dict(self.runtime.options.snapshot())
        if not values.get("sd_model_checkpoint"):
            # A1111 always names the loaded checkpoint here; clients read the current model from it.
            values["sd_model_checkpoint"] = catalog.current_checkpoint_title(self.runtime) or ""
        return values

    def set_options(self, values: dict[str, Any]) -> None:
        checked = generation.checked_overrides(self.runtime, values, "options")
        checkpoint = checked.pop("sd_model_checkpoint", None)
        vae = checked.pop("sd_vae", None)
        self.runtime.options.update(checked)
        if vae is not None:
            self.runtime.select_vae(vae)
        if checkpoint:
            self.runtime.select_checkpoint(str(checkpoint))  # loads it now, after any running job

    def cmd_flags(self) -> dict[str, Any]:
        return catalog.cmd_flags(self.runtime)

    # --- lists ----------------------------------------------------------------------------------------

    def samplers(self) -> list[dict[str, Any]]:
        return catalog.samplers(self.runtime)

    def schedulers(self) -> list[dict[str, Any]]:
        return catalog.schedulers(self.runtime)

    def upscalers(self) -> list[dict[str, Any]]:
        return catalog.upscalers()

    def latent_upscale_modes(self) -> list[dict[str, str]]:
        return catalog.latent_upscale_modes()

    def sd_models(self) -> list[dict[str, Any]]:
        return catalog.sd_models(self.runtime)

    def sd_vae(self) -> list[dict[str, str]]:
        return catalog.sd_vaes(self.runtime)

    def loras(self) -> list[dict[str, Any]]:
        return catalog.loras(self.runtime)

    def hypernetworks(self) -> list[dict[str, Any]]:
        return catalog.hypernetworks(self.runtime)

    def embeddings(self) -> dict[str, Any]:
        return catalog.embeddings(self.runtime)

    def prompt_styles(self) -> list[dict[str, str]]:
        return catalog.prompt_styles(self.runtime)

    def scripts(self) -> dict[str, list[str]]:
        return catalog.scripts(self.runtime)

    def script_info(self) -> list[dict[str, Any]]:
        return catalog.script_info(self.runtime)

    def extensions(self) -> list[dict[str, Any]]:
        return catalog.extensions(self.runtime)

    def memory(self) -> dict[str, Any]:
        return catalog.memory()

    def empty_list(self) -> list[Any]:
        return []

    # --- refresh and model memory ---------------------------------------------------------------------

    def nothing(self) -> None:
        """Lists that are rescanned on every request need no refresh."""

    def refresh_checkpoints(self) -> None:
        with self.runtime.queue_lock:
            self.runtime.models.refresh()

    def refresh_loras(self) -> None:
        catalog.refresh_loras(self.runtime)

    def refresh_embeddings(self) -> None:
        with self.runtime.queue_lock:  # a running job is reading the embeddings
            self.runtime.embeddings.load()

    def unload_checkpoint(self) -> dict[str, Any]:
        self.runtime.models.unload()
        return {}

    def reload_checkpoint(self) -> dict[str, Any]:
        with self.runtime.queue_lock:
            self.runtime.model()
        return {}


def _image_text(image: Any) -> dict[str, str]:
    """The text chunks an extras result keeps: the source's items and its parameters text."""
    text, items = read_info_from_image(image)
    chunks = {key: value for key, value in items.items() if isinstance(value, str)}
    if text:
        chunks["parameters"] = text
    return chunks


def _json_safe(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def html_info(text: str) -> str:
    """A1111's plaintext_to_html: escaped lines joined by <br> in one paragraph."""
    return "<p>" + "<br>\n".join(html.escape(line) for line in text.split("\n")) + "</p>"
