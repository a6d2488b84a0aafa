"""Adding networks to a model's weights in place, and putting the exact original weights back.

The model is the shared, cached one, so every weight is copied before its first change and copied back
on ``restore()``: after a job the model is bit-identical to before, whatever the networks did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from . import deltas
from .keys import targets_for
from .requests import LoraRequest

if TYPE_CHECKING:
    from modules.extensions.api import ModelBundle

log = logging.getLogger("lora")


@dataclass
class Network:
    """A requested LoRA with its file's tensors; ``identity`` tells two loads of one file apart."""

    request: LoraRequest
    tensors: Mapping[str, Tensor]
    identity: Any


@dataclass
class Patcher:
    _backups: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)  # id(param) -> (param, original)
    _key: tuple[Any, ...] | None = None
    # The networks of the last apply() that fit the model (some module matched and was patchable):
    # only these count as loaded ("Lora hashes" names no other).
    applied: tuple[LoraRequest, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self._backups)

    def apply(self, bundle: ModelBundle, networks: list[Network]) -> tuple[bool, list[str]]:
        """Make the model carry exactly these networks. Returns (weights changed?, warnings)."""
        key = (id(bundle.unet), tuple((n.request, n.identity) for n in networks))
        if key == self._key:
            return False, []  # the next batch wants the same networks: nothing to redo
        changed = self.active
        self.restore()
        warnings: list[str] = []
        applied: list[LoraRequest] = []
        try:
            for network in networks:
                fits, network_warnings = self._add(bundle, network)
                warnings += network_warnings
                if fits:
                    applied.append(network.request)
        except BaseException:
            self.restore()  # never leave half a network in the shared model
            raise
        self._key = key
        self.applied = tuple(applied)
        return changed or self.active, warnings

    def restore(self) -> None:
        with torch.no_grad():
            for param, original in self._backups.values():
                param.copy_(original)
        self._backups.clear()
        self._key = None
        self.applied = ()

    def _add(self, bundle: ModelBundle, network: Network) -> tuple[bool, list[str]]:
        """Patch one network in; (whether it fits the model, warnings)."""
        request, targets = network.request, targets_for(bundle)
        groups = _group(network.tensors)
        unmatched = [prefix for prefix in groups if prefix not in targets]
        warnings = []
        if len(unmatched) == len(groups):
            return False, [
                f"LoRA {request.name}: none of its {len(groups)} modules fit this model ({bundle.arch})"
            ]
        if unmatched:
            log.info(
                "LoRA %s: %d keys did not match the model: %s", request.name, len(unmatched), unmatched[:5]
            )
        for prefix, weights in groups.items():
            target = targets.get(prefix)
            if target is None:
                continue
            multiplier = request.te_multiplier if target.part == "te" else request.unet_multiplier
            if multiplier == 0:
                continue  # weight 0 leaves the weights untouched, bit for bit
            try:
                self._patch(target.module.weight, weights, multiplier, request.dyn_dim)
            except deltas.UnsupportedModule as error:
                warnings.append(f"LoRA {request.name}: {target.name} skipped: {error}")
        matched = len(groups) - len(unmatched)
        return len(warnings) < matched, warnings

    def _patch(
        self, param: Tensor, weights: Mapping[str, Tensor], multiplier: float, dyn: int | None
    ) -> None:
        delta, scale = deltas.compute(weights, param.shape, dyn)
        with torch.no_grad():
            if id(param) not in self._backups:
                self._backups[id(param)] = (param, param.detach().clone())
            # Sum in float32 whatever the model's dtype, then round once into the weight.
            updated = param.float() + delta.to(param.device) * (scale * multiplier)
            param.copy_(updated.to(param.dtype))


def _group(tensors: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """``lora_unet_x.lora_up.weight`` -> {"lora_unet_x": {"lora_up.weight": ...}}."""
    groups: dict[str, dict[str, Tensor]] = {}
    for key, tensor in tensors.items():
        prefix, _, suffix = key.partition(".")
        groups.setdefault(prefix, {})[suffix] = tensor
    return groups
