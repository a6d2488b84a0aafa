"""``<hypernet:name:weight>``: A1111's hypernetworks, files in models/hypernetworks (``name`` is the stem).

A hypernetwork file (a torch pickle of plain data) maps a context width (768, 320, 640, 1280...) to
two small residual MLPs, one for the keys' and one for the values' input of every attention layer of
that width: ``k_in = x + mlp_k(x) * weight``. As in A1111 they apply in self- and cross-attention
alike (wherever the input width has a pair), several hypernetworks one after the other in prompt
order. The layers are rebuilt from the file's own description (layer_structure, activation_func,
is_layer_norm, dropout) in A1111's layout, so its state dicts load strictly. During a job the UNet's
attention projections get input hooks, which ``deactivate`` removes: the shared model never changes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from modules.extensions.api import ExtraNetwork, Paths, register_extra_network

log = logging.getLogger("hypernetwork")

SUFFIXES = (".pt",)
# A1111's names for the activation functions; its "swish" is Hardswish, kept for its files' sake.
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "linear": torch.nn.Identity,
    "relu": torch.nn.ReLU,
    "leakyrelu": torch.nn.LeakyReLU,
    "elu": torch.nn.ELU,
    "swish": torch.nn.Hardswish,
    "tanh": torch.nn.Tanh,
    "sigmoid": torch.nn.Sigmoid,
    "gelu": torch.nn.GELU,
    "silu": torch.nn.SiLU,
    "mish": torch.nn.Mish,
    "softplus": torch.nn.Softplus,
}
_OLD_KEYS = {"linear1.weight": "linear.0.weight", "linear1.bias": "linear.0.bias"}
_OLD_KEYS |= {"linear2.weight": "linear.1.weight", "linear2.bias": "linear.1.bias"}


def dropout_structure(data: dict[Any, Any], layers: list[float]) -> list[float]:
    """The dropout after each layer; it only places modules (no weights), dropout is off at inference."""
    stored = data.get("dropout_structure")
    if stored is not None:
        return [float(p) for p in stored]
    if not data.get("use_dropout", False):
        return [0.0] * len(layers)
    # A1111's default for files that only say "use_dropout": none on the input, 0.3 on hidden layers,
    # on the last layer only with "last_layer_dropout", none on the output.
    last = 0.3 if data.get("last_layer_dropout", False) else 0.0
    return [0.0] + [0.3] * (len(layers) - 3) + [last, 0.0]


def mlp(width: int, data: dict[Any, Any], state: dict[str, torch.Tensor]) -> torch.nn.Sequential:
    """One residual MLP in A1111's module order: Linear, activation, LayerNorm, Dropout per layer."""
    layers = [float(f) for f in data.get("layer_structure", [1, 2, 1])]
    activation = data.get("activation_func")
    norm = bool(data.get("is_layer_norm", False))
    activate_output = bool(data.get("activate_output", True))
    dropouts = dropout_structure(data, layers)
    modules: list[torch.nn.Module] = []
    for i in range(len(layers) - 1):
        out_features = int(width * layers[i + 1])
        modules.append(torch.nn.Linear(int(width * layers[i]), out_features))
        is_last = i >= len(layers) - 2
        if activation not in (None, "linear") and not (is_last and not activate_output):
            if activation not in ACTIVATIONS:
                raise ValueError(f"unknown activation function {activation!r}")
            modules.append(ACTIVATIONS[activation]())
        if norm:
            modules.append(torch.nn.LayerNorm(out_features))
        if dropouts[i + 1] > 0:
            modules.append(torch.nn.Dropout(dropouts[i + 1]))
    holder = torch.nn.Module()
    holder.linear = torch.nn.Sequential(*modules)
    holder.load_state_dict({_OLD_KEYS.get(k, k): v for k, v in state.items()})
    return holder.linear.eval().requires_grad_(False)


class Hypernetwork:
    def __init__(self, path: Path) -> None:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, dict):
            raise ValueError("not a hypernetwork file")
        self.name = path.stem
        self.pairs = {
            int(width): (mlp(width, data, states[0]), mlp(width, data, states[1]))
            for width, states in data.items()
            if isinstance(width, int)
        }
        if not self.pairs:
            raise ValueError("the file holds no layers")

    def to(self, device: torch.device, dtype: torch.dtype) -> Hypernetwork:
        for pair in self.pairs.values():
            for module in pair:
                module.to(device, dtype)
        return self


def files(paths: Paths) -> dict[str, Path]:
    folder = Path(paths.hypernetwork_dir)
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES) if folder.is_dir() else []
    return {p.stem: p for p in found}


def items(paths: Paths) -> list[dict[str, Any]]:
    """The /sdapi/v1/hypernetworks list, as A1111's: [{name, path}]."""
    return [{"name": name, "path": str(path)} for name, path in files(paths).items()]


def cards(paths: Paths) -> list[dict[str, Any]]:
    """The Extra Networks page: a card per file, with the preview image beside it (A1111's names)."""
    found = []
    for name, path in files(paths).items():
        previews = [
            path.with_name(path.stem + middle + ext)
            for middle in ("", ".preview")
            for ext in (".png", ".jpg")
        ]
        preview = next((str(p) for p in previews if p.is_file()), None)
        found.append({"name": name, "path": str(path), "preview": preview, "prompt": f"<hypernet:{name}:1>"})
    return found


class HypernetworkHandler:
    """The active hypernetworks of the running job, applied by hooks on the attention projections."""

    def __init__(self) -> None:
        self.active: list[tuple[Hypernetwork, float]] = []
        self._hooks: list[Any] = []
        self._cache: dict[tuple[str, float], Hypernetwork] = {}

    def activate(self, p: Any, calls: list[Any]) -> None:
        self.deactivate(p)
        if not calls:
            return
        known = files(p.paths)
        bundle = p.model
        for call in calls:
            name = call.args[0]
            try:
                weight = float(call.args[1]) if len(call.args) > 1 else 1.0
            except ValueError as error:
                _comment(p, f"<hypernet:{':'.join(call.args)}> ignored: {error}")
                continue
            path = known.get(name)
            if path is None:
                _comment(p, f"Hypernetwork not found: {name}")
                continue
            key = (str(path), path.stat().st_mtime)
            try:
                if key not in self._cache:
                    self._cache = {key: Hypernetwork(path)}  # keep the last one read
                network = self._cache[key].to(bundle.device, bundle.dtype)
            except Exception as error:
                _comment(p, f"Hypernetwork {name}: {path.name} could not be read: {error}")
                continue
            self.active.append((network, weight))
        if self.active:
            self._hook(bundle.unet)

    def _hook(self, unet: torch.nn.Module) -> None:
        for module in unet.modules():
            to_k, to_v = getattr(module, "to_k", None), getattr(module, "to_v", None)
            if isinstance(to_k, torch.nn.Linear) and isinstance(to_v, torch.nn.Linear):
                self._hooks.append(to_k.register_forward_pre_hook(self._transform(0)))
                self._hooks.append(to_v.register_forward_pre_hook(self._transform(1)))

    def _transform(self, which: int) -> Any:
        def hook(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
            x = args[0]
            for network, weight in self.active:
                pair = network.pairs.get(x.shape[-1])
                if pair is not None:
                    x = x + pair[which](x) * weight
            return (x, *args[1:])

        return hook

    def deactivate(self, p: Any) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()
        self.active = []


def _comment(p: Any, text: str) -> None:
    if text not in p.comments:
        log.warning(text)
        p.comments.append(text)


handler = HypernetworkHandler()
register_extra_network(
    ExtraNetwork(
        name="hypernet",
        activate=handler.activate,
        deactivate=handler.deactivate,
        extra={"items": items, "cards": cards, "refresh": lambda paths: None, "title": "Hypernetworks"},
    )
)
