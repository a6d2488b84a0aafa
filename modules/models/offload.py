"""--medvram / --lowvram: model parts live on the host and move to the device only while they run.

A ``OneOnDevice`` group holds units (whole networks for medvram; the UNet's and VAE's blocks for
lowvram, as A1111 splits them) and keeps at most one of them on the device: a forward-pre-hook on
every module of a unit brings that unit over (sending the previous one back to the host) and moves the
call's tensor inputs along. Hooks sit on every submodule, not only on the network's own forward, because
the conditioning code calls a text encoder's layers one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from modules.models.bundle import ModelBundle


class OneOnDevice:
    def __init__(self, device: torch.device, storage: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.storage = torch.device(storage)
        self.active: torch.nn.Module | None = None
        self.moves = 0  # host <-> device transfers of units, the cost these modes trade for memory

    def attach(self, units: Iterable[torch.nn.Module]) -> None:
        for unit in units:
            unit.to(self.storage)
            for module in unit.modules():
                module.register_forward_pre_hook(self._hook(unit), with_kwargs=True)

    def activate(self, unit: torch.nn.Module) -> None:
        if self.active is unit:
            return
        if self.active is not None:
            self.move(self.active, onto_device=False)
        self.move(unit, onto_device=True)
        self.active = unit

    def move(self, unit: torch.nn.Module, onto_device: bool) -> None:
        unit.to(self.device if onto_device else self.storage)
        self.moves += 1

    def _hook(self, unit: torch.nn.Module) -> Any:
        def pre_forward(_module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            self.activate(unit)
            return _to(args, self.device), _to(kwargs, self.device)

        return pre_forward


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device) for v in value)
    return value


def units(bundle: ModelBundle, mode: str) -> list[torch.nn.Module]:
    """What moves as one piece: whole networks (medvram) or their top-level blocks (lowvram)."""
    networks = [*bundle.text_encoders, bundle.unet, bundle.vae]
    if mode == "medvram":
        return networks
    if mode != "lowvram":
        raise ValueError(f"offload mode must be 'medvram' or 'lowvram', not {mode!r}")
    pieces: list[torch.nn.Module] = list(bundle.text_encoders)
    for network in (bundle.unet, bundle.vae):
        for child in network.children():
            # Lists of blocks (down_blocks, up_blocks) move block by block.
            pieces += list(child) if isinstance(child, torch.nn.ModuleList) else [child]
    return pieces


def offload(bundle: ModelBundle, device: torch.device, mode: str) -> OneOnDevice:
    group = OneOnDevice(device)
    group.attach(units(bundle, mode))
    return group
