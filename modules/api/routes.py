"""The /sdapi/v1 endpoints over one ``Runtime``: the paths, methods and response shapes of A1111 1.10.

Generations and other queued work are async handlers that submit a task to the runtime's job queue
(shared with the UI) and await it, so a waiting request holds no worker thread and /progress, /interrupt
and /skip answer at once however many wait. The other handlers are plain functions run in FastAPI's
worker threads. Errors: HTTPException as raised (4xx with {"detail": ...}); anything unexpected becomes
A1111's JSON error body with status 500, logged with its traceback (the queue moves on to the next task).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from modules.api import catalog, codec, generation
from modules.api import models as m
from modules.images import read_info_from_image
from modules.infotext import parse_infotext
from modules.jobs import check_task_id
from modules.models.manager import LoadFailed
from modules.models.storage import ModelFileError
from modules.processing import postprocess
from modules.processing.job import GenerationJob

if TYPE_CHECKING:
    from modules.runtime import Runtime

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
            except (StarletteHTTPException, RequestValidationError):  # FastAPI's own 400s are Starlette's
                raise
            except ModelFileError as error:  # a client's choice of a broken file: refused, nothing changed
                return JSONResponse(status_code=422, content={"detail": str(error)})
            except Exception as error:
                log.exception("API error: %s %s", request.method, request.url.path)
                body = {"error": type(error).__name__, "detail": "", "body": "", "errors": str(error)}
                return JSONResponse(status_code=500, content=body)

        return guarded


async def strict_json_body(request: Request) -> None:
    """422 naming the place when a body holds NaN, Infinity, an overflowing number or a lone surrogate."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    body = await request.body()
    if not body:
        return
    try:
        data = await request.json()  # the parse FastAPI made for the body model, cached on the request
    except RecursionError:
        raise HTTPException(status_code=422, detail="body: nested too deeply") from None
    except ValueError:  # not JSON (or not UTF-8 JSON): the handler's own body checks answer that
        data = None
    problem = codec.json_body_problem(body, data)
    if problem:
        raise HTTPException(status_code=422, detail=problem)


class SdApi:
    """The endpoint handlers; ``router()`` registers them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def router(self, dependencies: list[Any] | None = None) -> APIRouter:
        # After authentication (the dependencies given): a body that is not strict JSON is refused.
        checks = [*(dependencies or []), Depends(strict_json_body)]
        router = APIRouter(prefix=PREFIX, route_class=ApiRoute, dependencies=checks)
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

    async def txt2img(self, request: m.StableDiffusionProcessingTxt2Img, http: Request) -> dict[str, Any]:
        job = await run_in_threadpool(generation.txt2img_job, self.runtime, request)
        return await self._generate("txt2img", request, job, caller(http))

    async def img2img(self, request: m.StableDiffusionProcessingImg2Img, http: Request) -> dict[str, Any]:
        job = await run_in_threadpool(generation.img2img_job, self.runtime, request)
        return await self._generate("img2img", request, job, caller(http))

    async def _generate(
        self, mode: str, request: m.GenerationRequest, job: GenerationJob, user: str
    ) -> dict[str, Any]:
        try:
            task_id = check_task_id(request.force_task_id) if request.force_task_id else None
        except ValueError as error:
            raise generation.invalid("force_task_id", str(error)) from error
        try:
            task = self.runtime.submit_job(mode, job, user=user, task_id=task_id)
        except ValueError as error:  # out-of-range fields, or a task id already in use
            raise HTTPException(status_code=422, detail=str(error)) from error
        try:
            result = await asyncio.wrap_future(task.future)
        except ValueError as error:  # what processing rejects (prompt, sizes...) names the problem
            raise HTTPException(status_code=422, detail=str(error)) from error
        except asyncio.CancelledError:
            if not task.future.cancelled():
                raise  # the client went away: the waiting task was cancelled with it
            raise HTTPException(
                status_code=409, detail=f"task {task.id} was cancelled before it started"
            ) from None
        return await run_in_threadpool(self._respond, request, job, result)

    def _respond(self, request: m.GenerationRequest, job: GenerationJob, result: Any) -> dict[str, Any]:
        if not request.override_settings_restore_afterwards and job.override_settings:
            # A1111 leaves such overrides in place after the request; we store them as settings.
            self.runtime.options.update(job.override_settings)
        settings = self.runtime.options.snapshot(job.override_settings)
        # A grid, when the job made one (only when saving, as A1111), comes first.
        # The extra images (a depth map) follow, without parameters text, as in A1111.
        extra = [""] * len(result.extra_images)
        encoded = (
            generation.encode_images(
                [*result.images, *result.extra_images], [*result.infotexts, *extra], settings
            )
            if request.send_images
            else []
        )
        return {
            "images": encoded,
            "parameters": generation.echo_parameters(request),
            "info": generation.info_json(job, result),
        }

    async def _queued(self, work: Callable[[], Any], label: str, http: Request | None = None) -> Any:
        """Run ``work`` in its turn in the job queue, waiting without holding a thread."""
        task = self.runtime.queue.submit(work, user=caller(http) if http else "", label=label)
        return await asyncio.wrap_future(task.future)

    # --- extras and PNG info --------------------------------------------------------------------------

    async def extra_single_image(
        self, request: m.ExtrasSingleImageRequest, http: Request
    ) -> m.ExtrasSingleImageResponse:
        image = await run_in_threadpool(self._decode, request.image, "image")
        outputs, text = await self._upscale([image], request, http)
        encoded = await run_in_threadpool(self._encode_extras, outputs)
        return m.ExtrasSingleImageResponse(image=encoded[0], html_info=html_info(text))

    async def extra_batch_images(
        self, request: m.ExtrasBatchImagesRequest, http: Request
    ) -> m.ExtrasBatchImagesResponse:
        def decode() -> list[Any]:
            return [self._decode(f.data, f"imageList[{i}]") for i, f in enumerate(request.imageList)]

        images = await run_in_threadpool(decode)
        outputs, text = await self._upscale(images, request, http)
        encoded = await run_in_threadpool(self._encode_extras, outputs)
        return m.ExtrasBatchImagesResponse(images=encoded, html_info=html_info(text))

    async def _upscale(
        self, images: list[Any], request: m.ExtrasRequest, http: Request
    ) -> tuple[list[Any], str]:
        settings = postprocess.UpscaleSettings(
            mode=postprocess.ExtrasResize(request.resize_mode),
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
            # One heavy job at a time, as A1111 queues extras too.
            return await self._queued(
                lambda: postprocess.run_all(images, settings, _image_text), "extras", http
            )
        except postprocess.UnknownUpscaler as error:
            raise HTTPException(status_code=404, detail=str(error)) from error
        except ValueError as error:
            raise HTTPException(status_code=422, detail=str(error)) from error

    def _decode(self, data: str, field: str) -> Any:
        return codec.decode_image(data, field, codec.max_pixels(self.runtime.options))

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
        text, items = read_info_from_image(self._decode(request.image, "image"))
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
        image = self._decode(request.image, "image")
        try:
            return m.InterrogateResponse(caption=self.runtime.interrogate(image))
        except MissingModel as error:  # the server lacks the model folder: not the client's fault
            raise HTTPException(status_code=503, detail=str(error)) from error

    # --- progress -------------------------------------------------------------------------------------

    async def progress(
        self, skip_current_image: bool = False, task_id: str | None = None
    ) -> m.ProgressResponse:
        """A1111's progress of the running task; with ``task_id`` (ours), that task's, queue place included.

        Answered on the event loop (it only reads state under short locks), not in the worker threads,
        where it would wait behind encoding responses when many jobs finish: polls stay fast under load."""
        queue = self.runtime.queue
        running = queue.running()
        current = running[0].id if running else None
        if task_id is None:
            return self._progress(self.runtime.progress, skip_current_image, current)
        status = queue.status(task_id)
        if status is None:
            raise generation.not_found(
                "task_id", f"no task {task_id!r} is queued, running or recently finished"
            )
        task = queue.get(task_id)
        extra = {
            "current_task": current,
            "task_state": str(status.state),
            "queue_position": status.position,
            "queue_length": status.queued,
        }
        if status.state == "running" and task is not None:
            return self._progress(task.progress, skip_current_image, current).model_copy(update=extra)
        state = {"skipped": False, "interrupted": status.state == "cancelled", "job": "", "job_count": 0}
        eta = status.eta_seconds if status.eta_seconds is not None else 0.0
        done = 1.0 if status.state == "done" else 0.0
        return m.ProgressResponse(progress=done, eta_relative=eta, state=state, **extra)

    def _progress(self, progress: Any, skip_current_image: bool, current: str | None) -> m.ProgressResponse:
        report = progress.report()
        state = {
            "skipped": report.skipped,
            "interrupted": report.interrupted,
            "stopping_generation": False,
            "job": report.job,
            "job_count": report.job_count if report.active else 0,  # A1111 zeroes it when a job ends
            "job_timestamp": _job_timestamp(progress.started_at),
            "job_no": report.job_no,
            "sampling_step": report.sampling_step,
            "sampling_steps": report.sampling_steps,
        }
        textinfo = report.textinfo or None
        if not report.active or not report.job_count:
            return m.ProgressResponse(
                progress=0, eta_relative=0, state=state, textinfo=textinfo, current_task=current
            )
        # A1111 adds 0.01 so that a job that has just started is not reported as idle (0).
        fraction = 0.01 + report.job_no / report.job_count
        if report.sampling_steps:
            fraction += report.sampling_step / report.sampling_steps / report.job_count
        elapsed = time.monotonic() - progress.started_at
        preview = None
        if report.preview is not None and not skip_current_image:
            preview = codec.encode_image(report.preview, str(self.runtime.options.get("samples_format")))
        return m.ProgressResponse(
            progress=min(fraction, 1.0),
            eta_relative=elapsed / fraction - elapsed,
            state=state,
            current_image=preview,
            textinfo=textinfo,
            current_task=current,
        )

    def interrupt(self, task_id: str | None = None) -> dict[str, Any]:
        """A1111: stop the running task. With ``task_id``: that task, waiting (leaves the queue) or running."""
        self.runtime.interrupt(task_id)
        return {}

    def skip(self, task_id: str | None = None) -> None:
        """A1111: skip the running task's current batch. With ``task_id``: that task's (a waiting one leaves)."""
        self.runtime.interrupt(task_id, skip=True)

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
            try:
                self.runtime.select_checkpoint(str(checkpoint))  # loads it now, in its turn in the queue
            except LoadFailed as error:  # the checkpoint in use stays, and says so
                raise generation.invalid("sd_model_checkpoint", str(error)) from error

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

    async def refresh_checkpoints(self, http: Request) -> None:
        await self._queued(self.runtime.models.refresh, "refresh checkpoints", http)

    def refresh_loras(self) -> None:
        catalog.refresh_loras(self.runtime)

    async def refresh_embeddings(self, http: Request) -> None:
        # Queued: a running job is reading the embeddings.
        await self._queued(self.runtime.embeddings.load, "refresh embeddings", http)

    async def unload_checkpoint(self, http: Request) -> dict[str, Any]:
        await self._queued(self.runtime.models.unload, "unload checkpoint", http)
        return {}

    async def reload_checkpoint(self, http: Request) -> dict[str, Any]:
        await self._queued(self.runtime.model, "reload checkpoint", http)
        return {}


def caller(http: Request) -> str:
    """Who is asking, for fairness between users: the Basic-auth user name, else the client's address."""
    header = http.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            return "user:" + base64.b64decode(header[6:]).decode("utf-8", "replace").partition(":")[0]
        except (binascii.Error, ValueError):
            pass
    return "client:" + (http.client.host if http.client else "")


def _job_timestamp(started_at: float) -> str:
    started = time.time() - (time.monotonic() - started_at)
    return time.strftime("%Y%m%d%H%M%S", time.localtime(started))


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
