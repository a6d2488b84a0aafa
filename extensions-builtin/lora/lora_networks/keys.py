"""Which model weight a LoRA file's key prefix patches: kohya names mapped onto our diffusers modules.

kohya-style files name a module by its path with "." -> "_" after a part prefix: ``lora_unet_`` (UNet),
``lora_te_`` (SD1/SD2 text encoder), ``lora_te1_``/``lora_te2_`` (SDXL's two encoders). The UNet path is
either the diffusers one (most SD1 files) or the original LDM/"compvis" one (SDXL files, some SD1 files);
both are accepted, the compvis names through the checkpoint converter's key mapping.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from modules.extensions.api import unet_keys_to_original

if TYPE_CHECKING:
    from modules.extensions.api import ModelBundle

PATCHABLE = (torch.nn.Linear, torch.nn.Conv2d)


@dataclass(frozen=True)
class Target:
    """One patchable module: ``part`` is "unet" or "te" (which multiplier of ``<lora:...>`` applies)."""

    module: torch.nn.Module
    part: str
    name: str


def _kohya(prefix: str, module_path: str) -> str:
    return prefix + module_path.replace(".", "_")


def _unet_targets(unet: torch.nn.Module) -> dict[str, Target]:
    modules = {name: m for name, m in unet.named_modules() if isinstance(m, PATCHABLE)}
    targets = {_kohya("lora_unet_", name): Target(m, "unet", name) for name, m in modules.items()}
    original = unet_keys_to_original({f"{name}.weight": name for name in modules})
    for original_key, name in original.items():
        targets.setdefault(
            _kohya("lora_unet_", original_key.removesuffix(".weight")), targets[_kohya("lora_unet_", name)]
        )
    return targets


def _text_targets(encoder: torch.nn.Module, prefixes: tuple[str, ...]) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for name, module in encoder.named_modules():
        if not isinstance(module, PATCHABLE):
            continue
        # transformers 5 has no "text_model." level; kohya keys (made with older versions) do.
        full = name if name.startswith("text_model.") else f"text_model.{name}"
        for prefix in prefixes:
            targets[_kohya(prefix, full)] = Target(module, "te", name)
    return targets


_cache: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, Target]] = weakref.WeakKeyDictionary()


def targets_for(bundle: ModelBundle) -> dict[str, Target]:
    """Every key prefix a LoRA file may use for this model, built once per loaded UNet."""
    known = _cache.get(bundle.unet)
    if known is not None:
        return known
    targets = _unet_targets(bundle.unet)
    encoders = list(bundle.text_encoders)
    if len(encoders) == 1:
        targets.update(_text_targets(encoders[0], ("lora_te_",)))
    else:
        for index, encoder in enumerate(encoders, start=1):
            targets.update(_text_targets(encoder, (f"lora_te{index}_",)))
    _cache[bundle.unet] = targets
    return targets
