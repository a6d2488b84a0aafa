"""The running app as one explicit object: folders, settings, models, progress and the generation queue.

The UI and the HTTP API both hold the same ``Runtime`` and call its entry points, so they share one
queue (a lock: one generation at a time), one progress state and one set of loaded models.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from typing import Any

import torch

from modules import devices
from modules.models.bundle import ModelBundle
from modules.options import Options
from modules.paths import Paths
from modules.processing.job import GenerationJob, GenerationResult
from modules.progress import Progress
from modules.sampling.registry import default_registry


class Runtime:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.paths = Paths.from_data_dir(
            args.data_dir,
            ckpt_dir=args.ckpt_dir,
            vae_dir=args.vae_dir,
            lora_dir=args.lora_dir,
            embeddings_dir=args.embeddings_dir,
        )
        self.options = Options(self.paths.config_file)
        self.device = devices.choose_device(args.device)
        self.dtype = devices.choose_dtype(args.precision, self.device)
        self.progress = Progress()
        self.queue_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._bundle: ModelBundle | None = None
        self.model_loader: Callable[[], ModelBundle] = self._default_model
        self.sampling_registry = default_registry()

    def _default_model(self) -> ModelBundle:
        from modules.models.tiny import build_tiny_bundle

        return build_tiny_bundle()

    def model(self) -> ModelBundle:
        with self._model_lock:
            if self._bundle is None:
                bundle = self.model_loader()
                for module in (bundle.unet, bundle.vae, *bundle.text_encoders):
                    module.to(self.device, self.dtype)
                bundle.device, bundle.dtype = self.device, self.dtype
                self._bundle = bundle
            return self._bundle

    def run_job(self, mode: str, job: GenerationJob) -> GenerationResult:
        """Run one generation, waiting for the queue; the UI and the API both come through here."""
        from modules.processing import txt2img

        job.validate()
        with self.queue_lock:
            settings = self.options.snapshot(job.override_settings)
            self.progress.begin(mode, job_count=job.n_iter)
            try:
                with torch.inference_mode():
                    return txt2img.generate(self, job, settings)
            finally:
                self.progress.end()

    def txt2img(self, job: GenerationJob) -> GenerationResult:
        return self.run_job("txt2img", job)

    def state(self) -> dict[str, Any]:
        return {"model": self._bundle.name if self._bundle else None, "device": str(self.device)}
