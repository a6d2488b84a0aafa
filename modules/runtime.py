"""The running app as one explicit object: folders, settings, models, progress and the generation queue.

The UI and the HTTP API both hold the same ``Runtime`` and call its entry points, so they share one
queue (a lock: one generation at a time), one progress state and one set of loaded models.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from modules import devices, output_paths, paths
from modules.conditioning import EmbeddingDatabase
from modules.extensions.registry import ExtensionRegistry
from modules.extensions.runner import ScriptRunner
from modules.interrogate import BatchReport, Folders, Interrogator
from modules.interrogate.models import BUNDLED_CLIP
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
        self.device = devices.choose_device(args.device)
        self.precision = devices.precision_from_args(args, self.device)
        self.dtype = self.precision.weights
        self.progress = Progress()
        self.queue_lock = threading.Lock()
        self.sampling_registry = default_registry()
        offload = "lowvram" if args.lowvram else "medvram" if args.medvram else "none"
        self.models = ModelManager(
            [self.paths.ckpt_dir] + ([] if args.no_bundled_models else [paths.BUNDLED_MODELS]),
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

    def model(self, settings: Mapping[str, Any] | None = None) -> ModelBundle:
        """The bundle of the selected checkpoint ("sd_model_checkpoint"), loading it if needed.

        With a job's ``settings`` snapshot, its checkpoint and VAE choice win (override_settings, X/Y/Z
        cells); the VAE is switched only when it differs from the loaded one.
        """
        if self.model_loader is not None:
            return self.model_loader()
        if not self.models.checkpoints():
            ensure_default_model(self.paths.ckpt_dir)
            self.models.refresh()
        source = settings if settings is not None else self.options
        if source["sd_vae"] != self.models.options.vae:
            self.models.set_vae(source["sd_vae"])
        wanted = source["sd_model_checkpoint"] or (str(self.args.ckpt) if self.args.ckpt else "")
        try:
            bundle = self.models.get(wanted) if wanted else self.models.get(self.models.titles()[0])
        except KeyError:
            print(f"Checkpoint {wanted!r} not found; loading {self.models.titles()[0]} instead.")
            bundle = self.models.get(self.models.titles()[0])
        if bundle is not self._announced:
            self._announced = bundle
            self.extensions.call("model_loaded", bundle)
        return bundle

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
        """Switch the checkpoint used by the next generation (waits for a running one to finish)."""
        with self.queue_lock:
            info = self.models.find(query)
            bundle = self.models.get(info.title)
            self.options.set("sd_model_checkpoint", info.title)
            return bundle

    def select_vae(self, choice: str) -> None:
        with self.queue_lock:
            self.models.set_vae(choice)
            self.options.set("sd_vae", choice)

    def run_job(self, mode: str, job: GenerationJob) -> GenerationResult:
        """Run one generation, waiting for the queue; the UI and the API both come through here."""
        from modules.processing import img2img, txt2img

        generate = {"txt2img": txt2img.generate, "img2img": img2img.generate}[mode]
        job.validate()
        with self.queue_lock:
            settings = self.options.snapshot(job.override_settings)
            self.progress.begin(mode, job_count=job.n_iter)
            try:
                with torch.inference_mode():
                    return generate(self, job, settings)
            finally:
                self.progress.end()

    def interrogate(self, image: Image.Image, mode: str | None = None) -> str:
        """The image as a prompt ("Interrogate CLIP"); waits for the queue, as its models share memory."""
        with self.queue_lock:
            return self.interrogator.interrogate(image, self.options.snapshot(), mode)

    def interrogate_folder(self, input_dir: str | Path, output_dir: str | Path | None) -> BatchReport:
        """A .txt caption beside (or, with ``output_dir``, mirrored under) every image of a folder."""
        with self.queue_lock:
            return self.interrogator.interrogate_folder(input_dir, output_dir, self.options.snapshot())

    def txt2img(self, job: GenerationJob) -> GenerationResult:
        return self.run_job("txt2img", job)

    def img2img(self, job: GenerationJob) -> GenerationResult:
        return self.run_job("img2img", job)


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
