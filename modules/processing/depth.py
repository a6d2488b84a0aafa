"""Depth maps for 5-channel depth-to-image checkpoints: estimated by a DPT/MiDaS model the user puts in
models/depth (a transformers-format folder, loaded offline), or uploaded with the job."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from modules.processing import image_cond

if TYPE_CHECKING:
    from modules.processing.job import GenerationJob
    from modules.processing.pipeline import JobPlan
    from modules.runtime import Runtime

DPT_SIZE = 384
_cache: dict[Path, Any] = {}
_cache_lock = threading.Lock()


class DepthModelMissing(ValueError):
    """A depth checkpoint is selected but there is neither a depth model nor an uploaded depth map."""


def find_depth_model(folder: Path) -> Path | None:
    """The first transformers-format depth-estimation model under ``folder`` (a folder with config.json)."""
    if not folder.is_dir():
        return None
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
    return next((p for p in candidates if (p / "config.json").is_file()), None)


def load_depth_model(path: Path) -> Any:
    from transformers import AutoModelForDepthEstimation

    with _cache_lock:
        if path not in _cache:
            _cache[path] = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True).eval()
        return _cache[path]


@torch.no_grad()
def estimate(model: Any, images: list[Image.Image]) -> torch.Tensor:
    """[B, 1, H, W] relative depth (bigger = nearer, as MiDaS/DPT predict) at the images' size."""
    arrays = [
        np.asarray(
            img.convert("RGB").resize((DPT_SIZE, DPT_SIZE), Image.Resampling.BICUBIC), dtype=np.float32
        )
        / 255
        for img in images
    ]
    pixels = (torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) - 0.5) / 0.5
    depth = model(pixel_values=pixels).predicted_depth
    return depth.unsqueeze(1).float()


def uploaded_depth(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image.convert("L"), dtype=np.float32) / 255
    return torch.from_numpy(array)[None, None]


def depth_map(runtime: Runtime, job: GenerationJob, images: list[Image.Image]) -> torch.Tensor:
    if job.depth_map is not None:
        return uploaded_depth(job.depth_map).expand(len(images), -1, -1, -1)
    model_path = find_depth_model(runtime.paths.data_dir / "models" / "depth")
    if model_path is None:
        raise DepthModelMissing(
            "This is a depth-to-image checkpoint: upload a depth map, or put a DPT/MiDaS depth model "
            "(transformers format: config.json + weights) in models/depth"
        )
    return estimate(load_depth_model(model_path), images)


def depth_cond_for(
    runtime: Runtime, plan: JobPlan, images: list[Image.Image], latent_hw: tuple[int, int]
) -> torch.Tensor:
    """The depth channel for the UNet; the map used is shown after the results (plan.extra_images)."""
    depth = depth_map(runtime, plan.job, images)
    cond = image_cond.depth_cond(depth, latent_hw)
    preview = ((cond[0, 0] + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    plan.extra_images.append(Image.fromarray(preview, mode="L").resize(images[0].size))
    return cond
