"""Finding and loading the interrogation models from local folders with transformers; nothing is fetched.

- CLIP: a ``CLIPModel`` folder with its processor (config.json, weights, processor and tokenizer files)
  in ``models/CLIP`` (that folder itself, or its first subfolder in name order), a subfolder or path
  named by the "interrogate_clip_model" setting, else the bundled demo CLIP (``assets/interrogate``).
- BLIP: a ``BlipForConditionalGeneration`` folder with its processor in ``models/BLIP`` or named by
  "interrogate_blip_model". Optional: without it the caption is built from the phrase lists alone.

Every load passes ``local_files_only=True``, so a folder that is incomplete fails with a message here
instead of reaching for the Hugging Face hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from modules.paths import ASSETS

BUNDLED_CLIP = ASSETS / "interrogate" / "demo-shapes-clip"


class MissingModel(RuntimeError):
    """No usable model folder; the message says which folder to fill."""


@dataclass
class LoadedModel:
    """A transformers model with its processor, and the folder both came from."""

    folder: Path
    model: Any
    processor: Any


def find_folder(base: Path, choice: str, kind: str, fallback: Path | None = None) -> Path:
    """The model folder to use: ``choice`` (a subfolder of ``base`` or a path), else ``base`` itself or its
    first subfolder holding a config.json, else ``fallback``; MissingModel says what to put where."""
    if choice:
        for candidate in (base / choice, Path(choice)):
            if (candidate / "config.json").is_file():
                return candidate
        raise MissingModel(
            f"{kind} model {choice!r} not found: put a transformers {kind} folder (config.json, weights, "
            f"processor and tokenizer files) at {base / choice}, or clear the setting"
        )
    if (base / "config.json").is_file():
        return base
    subfolders = sorted(p for p in base.iterdir() if (p / "config.json").is_file()) if base.is_dir() else []
    if subfolders:
        return subfolders[0]
    if fallback is not None and (fallback / "config.json").is_file():
        return fallback
    raise MissingModel(
        f"no {kind} model: put a transformers {kind} folder (config.json, weights, processor and tokenizer "
        f"files, e.g. a copy of openai/clip-vit-large-patch14) in {base}"
    )


def load_clip(folder: Path, device: torch.device) -> LoadedModel:
    from transformers import CLIPModel, CLIPProcessor

    try:
        model = CLIPModel.from_pretrained(folder, local_files_only=True)
        processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise MissingModel(f"CLIP folder {folder} could not be loaded: {error}") from error
    return LoadedModel(folder, model.to(device).eval(), processor)


def load_blip(folder: Path, device: torch.device) -> LoadedModel:
    from transformers import BlipForConditionalGeneration, BlipProcessor

    try:
        model = BlipForConditionalGeneration.from_pretrained(folder, local_files_only=True)
        processor = BlipProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise MissingModel(f"BLIP folder {folder} could not be loaded: {error}") from error
    return LoadedModel(folder, model.to(device).eval(), processor)


def features(output: Any) -> torch.Tensor:
    """Unit-length embeddings from ``get_image_features``/``get_text_features`` (transformers 5 returns a
    model output whose ``pooler_output`` is the projection; older versions a tensor)."""
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    tensor = tensor.float()
    return tensor / tensor.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def image_features(clip: LoadedModel, image: Any) -> torch.Tensor:
    inputs = clip.processor(images=image, return_tensors="pt").to(clip.model.device)
    with torch.inference_mode():
        return features(clip.model.get_image_features(**inputs))[0]


def text_features(clip: LoadedModel, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            inputs = clip.processor(
                text=texts[start : start + batch_size], return_tensors="pt", padding=True, truncation=True
            ).to(clip.model.device)
            chunks.append(features(clip.model.get_text_features(**inputs)))
    return torch.cat(chunks) if chunks else torch.zeros(0)


def caption(blip: LoadedModel, image: Any, num_beams: int, min_length: int, max_length: int) -> str:
    inputs = blip.processor(images=image, return_tensors="pt").to(blip.model.device)
    with torch.inference_mode():
        ids = blip.model.generate(
            **inputs, num_beams=num_beams, min_length=min_length, max_length=max(max_length, min_length)
        )
    return blip.processor.decode(ids[0], skip_special_tokens=True).strip()
