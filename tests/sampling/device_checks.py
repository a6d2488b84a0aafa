"""Catching device mistakes without a GPU.

``meta_bundle`` puts a tiny model on the meta device in half precision: meta tensors have shapes,
dtypes and a device but no values, so an op that mixes a meta tensor with a host tensor of more than one
element fails exactly as it would on CUDA, and so does any copy back to the host. ``HostTransfers``
records every read of a non-host tensor's values (``.cpu()``, ``.numpy()``, ``.item()``, ``bool()``...)
with the line that asked, and ``check_inputs`` asserts the device and dtype of every tensor a network
is called with.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from modules.models.bundle import Arch, ModelBundle
from modules.models.tiny import build_tiny

META = torch.device("meta")

_READS = {
    torch.Tensor.cpu,
    torch.Tensor.numpy,
    torch.Tensor.tolist,
    torch.Tensor.item,
    torch.Tensor.__bool__,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__index__,
}


@functools.cache
def meta_bundle(
    arch: Arch = Arch.SD1, channels: int = 4, prediction: str = "epsilon", dtype: torch.dtype = torch.float16
) -> ModelBundle:
    """A tiny bundle whose networks live on the meta device in ``dtype`` (the GPU stand-in); cached,
    so tests must not change it."""
    bundle = build_tiny(arch, 3, channels, prediction)
    for module in (bundle.unet, bundle.vae, *bundle.text_encoders):
        module.to(device=META, dtype=dtype)
    bundle.device, bundle.dtype = META, dtype
    return bundle


class HostTransfers(TorchFunctionMode):
    """Records each read of a device tensor's values by the host (the stack line that made it)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensor = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if tensor is not None and tensor.device.type != "cpu":
            to_host = func is torch.Tensor.to and _names_cpu(args[1:], kwargs)
            if func in _READS or to_host:
                frame = traceback.extract_stack(limit=3)[0]
                self.reads.append(
                    f"{func.__name__} of {tuple(tensor.shape)} at {frame.filename}:{frame.lineno}"
                )
        return func(*args, **kwargs)


def _names_cpu(args: tuple, kwargs: dict) -> bool:
    targets = [*args, kwargs.get("device")]
    return any(
        (isinstance(t, (str, torch.device)) and torch.device(t).type == "cpu")
        or (isinstance(t, torch.Tensor) and t.device.type == "cpu")
        for t in targets
    )


@contextmanager
def check_inputs(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> Iterator[list[int]]:
    """Assert at each call of ``module`` that its floating-point tensor inputs are on ``device`` in
    ``dtype`` and its other tensor inputs on ``device``; yields a one-item list counting the calls."""
    calls = [0]

    def hook(_module: Any, args: tuple, kwargs: dict) -> None:
        calls[0] += 1
        for name, value in [*enumerate(args), *kwargs.items()]:
            for tensor in _tensors(value):
                assert tensor.device == device, f"input {name} is on {tensor.device}, not {device}"
                if tensor.is_floating_point():
                    assert tensor.dtype == dtype, f"input {name} is {tensor.dtype}, not {dtype}"

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []
