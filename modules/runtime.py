"""The running app as one explicit object: folders, settings, models and the job queue.

The UI and the HTTP API both hold the same ``Runtime`` and call its entry points, so they share one
queue (``modules.jobs``: one heavy task at a time, fair between users) and one set of loaded models.
``exclusive`` is the one way to do work that needs the models to itself; only work running there may
load, switch or patch a model (``model``), while helpers read what is loaded (``loaded_model``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from modules import devices, heap, images, output_paths, paths
from modules.conditioning import EmbeddingDatabase, TextCache
from modules.extensions.registry import ExtensionRegistry
from modules.extensions.runner import ScriptRunner
from modules.interrogate import BatchReport, Folders, Interrogator
from modules.interrogate.models import BUNDLED_CLIP
from modules.jobs import JobQueue, LocalExecutor, Task, current_task
from modules.lookup import Lookup
from modules.models.bundle import ModelBundle
from modules.models.hashes import HashCache
from modules.models.manager import LoadOptions, ModelManager
from modules.options import Options
from modules.paths import Paths
from modules.processing.job import GenerationJob, GenerationResult
from modules.progress import Progress
from modules.sampling.registry import default_registry
from modules.styles import StyleDatabase

if TYPE_CHECKING:
    from modules.processing.pipeline import JobPlan

# Queue labels of generations: the tasks a running generation lets in between its images.
GENERATION_LABELS = frozenset({"txt2img", "img2img"})


class Runtime:
    def __init__(self, args: argparse.Namespace, extensions: ExtensionRegistry | None = None) -> None:
        self.args = args
        self.extensions = extensions or ExtensionRegistry()
        self.scripts = ScriptRunner(self.extensions)
        self.denoiser_hooks = self.scripts.denoiser_hooks()
        self.paths = Paths.from_data_dir(
            args.data_dir,
            ckpt_dir=args.ckpt_dir,
            vae_dir=args.vae_dir,
            lora_dir=args.lora_dir,
            embeddings_dir=args.embeddings_dir,
        )
        self.options = Options(self.paths.config_file)
        self.options.watch("upload_max_megapixels", images.limit_decoded_pixels)
        self.device = devices.choose_device(args.device)
        self.precision = devices.precision_from_args(args, self.device)
        self.dtype = self.precision.weights
        self.workers = _start_workers(args)  # None: generations run in this process
        slots = len(self.workers.actors()) if self.workers is not None else 1
        self.queue = JobQueue(LocalExecutor(slots))
        self._idle = Progress()  # what ``progress`` reads when nothing runs
        self.sampling_registry = default_registry()
        offload = "lowvram" if args.lowvram else "medvram" if args.medvram else "none"
        if args.ckpt and not Path(args.ckpt).exists():
            raise SystemExit(f"--ckpt {args.ckpt}: no such file or folder")
        self.models = ModelManager(
            [self.paths.ckpt_dir]
            + ([Path(args.ckpt)] if args.ckpt else [])  # listed even when outside the folders, as in A1111
            + ([] if args.no_bundled_models else [paths.BUNDLED_MODELS]),
            self.paths.vae_dir,
            HashCache(self.paths.data_dir / "cache.json"),
            capacity=int(self.options.get("sd_checkpoints_limit")),
            options=LoadOptions(
                device=self.device,
                dtype=self.dtype,
                vae_dtype=self.precision.vae,
                unet_compute_dtype=self.precision.unet_compute,
                attention=devices.choose_attention(getattr(args, "xformers", False)),
                offload=offload,
                vae=self.options.get("sd_vae"),
            ),
        )
        self.lookup = Lookup(self.sampling_registry, self.models)
        self.options.resolvers = self.resolvers()
        self.styles = StyleDatabase(self.paths.styles_file)
        # Bundled first: a later file of the same name wins, so the user's own files override ours.
        self.embeddings = EmbeddingDatabase([paths.BUNDLED_EMBEDDINGS, self.paths.embeddings_dir])
        # Texts encoded by one job serve the next on the same weights (modules.conditioning.text_cache).
        self.text_cache = TextCache()
        self.embeddings.load()
        # Tests and scripts may replace this with a function returning a ready bundle.
        self.model_loader: Callable[[], ModelBundle] | None = None
        self._announced: ModelBundle | None = None  # the last bundle model_loaded callbacks saw
        self.interrogator = Interrogator(
            Folders(
                clip_dir=self.paths.clip_dir,
                blip_dir=self.paths.blip_dir,
                user_lists=self.paths.interrogate_lists_dir,
                cache_dir=self.paths.cache_dir / "interrogate",
                bundled_clip=None if args.no_bundled_models else BUNDLED_CLIP,
            ),
            self.models.hash_cache,
            self.device,
        )

    def resolvers(self) -> dict[str, Callable[[Any], Any]]:
        """Checkers for the declared fields whose choices only the running app knows (``Field.lookup``):
        each returns the value or raises KeyError/ValueError saying it is unknown. None loads a model."""
        from modules.models.vae import AUTOMATIC, NONE
        from modules.processing import hires

        registry = self.sampling_registry

        def sampler(name: str) -> str:
            registry.resolve_sampler(name, None)
            return name

        def scheduler(name: str) -> str:
            registry.schedule_type(name)
            return name

        def checkpoint(name: str) -> str:
            if name:
                self.models.find(name)
            return name

        def vae(name: str) -> str:
            files = self.models.vaes()
            if name in (AUTOMATIC, NONE) or any(name in (v.name, v.path.stem, str(v.path)) for v in files):
                return name
            known = ", ".join([AUTOMATIC, NONE, *(v.name for v in files)])
            raise KeyError(f"VAE {name!r} not found; available: {known}")

        def output_folder(value: str) -> str:
            return output_paths.check_output_folder(self.paths.outputs_dir, value)

        def hires_upscaler(name: str) -> str:
            if name not in hires.upscaler_names():
                raise KeyError(f"upscaler {name!r} not found; available: {', '.join(hires.upscaler_names())}")
            return name

        return {
            "sampler": sampler,
            "scheduler": scheduler,
            "checkpoint": checkpoint,
            "vae": vae,
            "hires_upscaler": hires_upscaler,
            "output_folder": output_folder,
        }

    # --- the queue ----------------------------------------------------------------------------------

    @property
    def progress(self) -> Progress:
        """The progress of the task running on this thread; elsewhere, of the running task (or idle)."""
        task = current_task() or next(iter(self.queue.running()), None)
        return task.progress if task is not None else self._idle

    def exclusive(self, work: Callable[[], Any], label: str = "exclusive", user: str = "") -> Any:
        """Run ``work`` with the models to itself, in its turn in the queue, and return its result.

        Called from inside queued work (a script switching checkpoints), it runs at once: that work
        already holds the queue.
        """
        if current_task() is not None:
            return work()
        return self.queue.submit(work, user=user, label=label).future.result()

    def share_turn(self, plan: JobPlan) -> bool:
        """Between two images of a generation: one waiting generation of another user runs first, so a
        long batch count delays others by one image. The job's extra networks come off the model for
        it (the next batch applies them again); the job keeps its own model and settings snapshot."""
        if not self.queue.others_waiting(GENERATION_LABELS):
            return False
        if self.options["sd_vae"] != self.models.options.vae:
            return False  # the other job would apply a new live VAE to the models this job is using
        self.scripts.deactivate_networks(plan)
        progress = self.progress
        progress.textinfo = "Paused: another user's job runs first"
        try:
            return self.queue.share_turn(GENERATION_LABELS)
        finally:
            progress.textinfo = ""

    def submit_job(self, mode: str, job: GenerationJob, user: str = "", task_id: str | None = None) -> Task:
        """Queue one generation and return its task at once (await ``task.future`` for the result)."""
        job.validate()
        return self.queue.submit(self._generation(mode, job), user=user, label=mode, task_id=task_id)

    def run_job(
        self, mode: str, job: GenerationJob, user: str = "", task_id: str | None = None
    ) -> GenerationResult:
        """Run one generation, waiting for its turn; inside queued work (the UI's task, a batch of
        img2img), at once as part of it."""
        if current_task() is not None:
            job.validate()
            return self._generation(mode, job)()
        return self.submit_job(mode, job, user, task_id).future.result()

    def _generation(self, mode: str, job: GenerationJob) -> Callable[[], GenerationResult]:
        from modules.processing import img2img, txt2img

        generate = {"txt2img": txt2img.generate, "img2img": img2img.generate}[mode]

        def work() -> GenerationResult:
            settings = self.options.snapshot(job.override_settings)
            self.progress.begin(mode, job_count=job.n_iter, batch_size=job.batch_size)
            if self.workers is not None:
                return self.workers.run(mode, job, settings, current_task())
            with torch.inference_mode():
                return generate(self, job, settings)

        return work

    def interrupt(self, task_id: str | None = None, skip: bool = False) -> bool:
        """Stop a task: a waiting one leaves the queue, a running one stops (Skip: its current batch).

        Without a task id, the running task, as A1111's Interrupt and Skip do. False when no such task
        is waiting or running.
        """
        if task_id is None:
            tasks = self.queue.running()
        elif self.queue.cancel(task_id):
            return True
        else:
            task = self.queue.get(task_id)
            tasks = [task] if task is not None and task.state == "running" else []
        for task in tasks:
            task.progress.skip() if skip else task.progress.interrupt()
        return bool(tasks)

    # --- models ---------------------------------------------------------------------------------------

    def model(self, settings: Mapping[str, Any] | None = None) -> ModelBundle:
        """The bundle of the selected checkpoint ("sd_model_checkpoint"), loading it if needed.

        With a job's ``settings`` snapshot, its checkpoint and VAE choice win (override_settings, X/Y/Z
        cells); another VAE than the live one is applied to a view only this job sees. Outside the
        queue this waits for its turn: only queued work loads or switches models.
        """
        if current_task() is None:
            return self.exclusive(lambda: self.model(settings), label="load model")
        if self.model_loader is not None:
            return self.model_loader()
        self.ensure_a_checkpoint()
        if self.options["sd_vae"] != self.models.options.vae:
            self.models.set_vae(self.options["sd_vae"])  # the live choice changed (API options update)
        source = settings if settings is not None else self.options
        wanted = source["sd_model_checkpoint"] or (str(self.args.ckpt) if self.args.ckpt else "")
        try:
            bundle = self.models.get(wanted) if wanted else self.models.get(self.models.titles()[0])
        except KeyError:
            print(f"Checkpoint {wanted!r} not found; loading {self.models.titles()[0]} instead.")
            bundle = self.models.get(self.models.titles()[0])
        if bundle is not self._announced:
            self._announced = bundle
            self.extensions.call("model_loaded", bundle)
        return self._job_view(bundle, source["sd_vae"])

    def ensure_a_checkpoint(self) -> None:
        """With no checkpoint anywhere, write the tiny fallback model so the app still runs."""
        if not self.models.checkpoints():
            ensure_default_model(self.paths.ckpt_dir)
            self.models.refresh()

    def load_in_background(self) -> Task:
        """Load the selected model as the queue's first task and return at once, so the page answers
        while the weights load; a job submitted meanwhile waits behind the load in the queue.

        The fallback model (no checkpoint at all) is written first, if ``ensure_a_checkpoint`` was not
        called before the UI listed the checkpoints.
        The outcome is printed when the load ends; a model that fails to load leaves the app running so
        another checkpoint can be picked.
        """
        self.ensure_a_checkpoint()

        def load() -> ModelBundle:
            bundle = self.model()
            heap.freeze()  # the weights live on: out of later collections (no pause: the page is up)
            return bundle

        task = self.queue.submit(load, label="load model")
        task.future.add_done_callback(_report_load)
        return task

    def _job_view(self, bundle: ModelBundle, vae_choice: str) -> ModelBundle:
        """The job's own view of ``bundle`` with its VAE choice, made once per task and bundle."""
        from modules.models import scope

        if vae_choice == self.models.options.vae:
            return bundle
        task = current_task()
        views = task.context.setdefault("views", {}) if task is not None else {}
        key = (id(bundle), vae_choice)
        if key not in views:
            views[key] = scope.with_vae(self.models, bundle, vae_choice)
        return views[key]

    def loaded_model(self) -> ModelBundle | None:
        """The bundle the last job used (or the newest loaded one), without loading anything: for
        helpers that run on every keystroke, such as the token counter. None when no model is loaded."""
        if self.model_loader is not None:
            return self.model_loader()
        loaded = self.models.loaded()
        if self._announced is not None and any(bundle is self._announced for bundle in loaded):
            return self._announced
        return loaded[-1] if loaded else None

    def select_checkpoint(self, query: str) -> ModelBundle:
        """Switch the checkpoint used by the next generation (in its turn, after those queued before)."""

        def switch() -> ModelBundle:
            info = self.models.find(query)
            bundle = self.models.get(info.title)
            self.options.set("sd_model_checkpoint", info.title)
            return bundle

        return self.exclusive(switch, label="switch checkpoint")

    def select_vae(self, choice: str) -> None:
        def switch() -> None:
            self.models.set_vae(choice)
            self.options.set("sd_vae", choice)

        self.exclusive(switch, label="switch VAE")

    def interrogate(self, image: Image.Image, mode: str | None = None) -> str:
        """The image as a prompt ("Interrogate CLIP"); waits for the queue, as its models share memory."""
        return self.exclusive(
            lambda: self.interrogator.interrogate(image, self.options.snapshot(), mode), label="interrogate"
        )

    def interrogate_folder(self, input_dir: str | Path, output_dir: str | Path | None) -> BatchReport:
        """A .txt caption beside (or, with ``output_dir``, mirrored under) every image of a folder."""
        return self.exclusive(
            lambda: self.interrogator.interrogate_folder(input_dir, output_dir, self.options.snapshot()),
            label="interrogate",
        )

    def txt2img(self, job: GenerationJob) -> GenerationResult:
        return self.run_job("txt2img", job)

    def img2img(self, job: GenerationJob) -> GenerationResult:
        return self.run_job("img2img", job)


def _start_workers(args: argparse.Namespace) -> Any:
    """The Ray worker pool for ``--workers ray``; Ray is not imported otherwise."""
    if getattr(args, "workers", "local") != "ray":
        return None
    from modules.jobs.ray_workers import RayWorkers, default_worker_count

    count = args.ray_workers or default_worker_count()
    return RayWorkers(list(getattr(args, "argv", [])), count, args.ray_address)


def ensure_default_model(ckpt_dir: Path) -> Path:
    """First run with no checkpoint anywhere: write the tiny random-weight model so the app works."""
    from modules.models.loader import save_checkpoint
    from modules.models.tiny import build_tiny_bundle

    target = ckpt_dir / "tiny-random-sd1.safetensors"
    if not target.exists():
        print(f"No checkpoint found: writing the tiny random-weight test model to {target}")
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(build_tiny_bundle(), target)
    return target


def _report_load(future: Future) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is None:
        print(f"Model loaded: {future.result().name}", flush=True)
    else:
        print(f"Loading the model failed: {error}; pick another checkpoint in the UI.", flush=True)
