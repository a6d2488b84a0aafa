"""The built-in hypernetwork extension: A1111's file layout, the residual MLPs on attention inputs, a job
that uses one, the model left untouched, and /sdapi/v1/hypernetworks. A tiny file is built here."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from modules import cmd_args, paths
from modules.api import catalog
from modules.extensions import loader
from modules.extensions.registry import ExtensionRegistry
from modules.processing.job import GenerationJob
from modules.runtime import Runtime
from modules.prompting import ExtraNetworkCall
from tests.extensions import lora_helpers as h

EXTENSION = paths.ROOT / "extensions-builtin" / "hypernetwork"


def attention_widths(unet: torch.nn.Module) -> set[int]:
    return {m.to_k.in_features for m in unet.modules() if hasattr(m, "to_k") and hasattr(m, "to_v")}


def residual_state(width: int, seed: int) -> dict[str, torch.Tensor]:
    """A1111's layout for layer_structure [1, 2, 1], relu, activate_output False: Linear, ReLU, Linear."""
    g = torch.Generator().manual_seed(seed)
    return {
        "linear.0.weight": torch.randn(2 * width, width, generator=g) * 0.3,
        "linear.0.bias": torch.randn(2 * width, generator=g) * 0.1,
        "linear.2.weight": torch.randn(width, 2 * width, generator=g) * 0.3,
        "linear.2.bias": torch.randn(width, generator=g) * 0.1,
    }


def write_hypernetwork(path: Path, widths: set[int]) -> dict:
    data: dict = {w: [residual_state(w, 2 * w), residual_state(w, 2 * w + 1)] for w in widths}
    data |= {"layer_structure": [1, 2, 1], "activation_func": "relu", "activate_output": False}
    data |= {"is_layer_norm": False, "use_dropout": False, "name": path.stem, "step": 10}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return data


@pytest.fixture
def runtime(tmp_path, tiny_bundle):
    registry = ExtensionRegistry()
    found = loader.discover(set(), dirs=((EXTENSION.parent, True),))
    loader.load_scripts([e for e in found if e.path == EXTENSION], registry)
    assert not registry.errors, registry.errors
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu"]), registry)
    rt.model_loader = lambda: tiny_bundle
    rt.file_data = write_hypernetwork(
        rt.paths.hypernetwork_dir / "tiny.pt", attention_widths(tiny_bundle.unet)
    )
    return rt


def job(prompt: str) -> GenerationJob:
    return GenerationJob(
        prompt=prompt, steps=3, width=64, height=64, seed=5, sampler_name="Euler", do_not_save_samples=True
    )


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


def test_keys_and_values_get_the_residual_mlp_of_their_width(runtime, tiny_bundle):
    handler = runtime.extensions.extra_networks["hypernet"].activate.__self__
    p = SimpleNamespace(paths=runtime.paths, model=tiny_bundle, comments=[])
    attn = next(m for m in tiny_bundle.unet.modules() if hasattr(m, "to_k") and hasattr(m, "to_v"))
    width = attn.to_k.in_features
    x = torch.randn(2, 5, width, generator=torch.Generator().manual_seed(0))
    plain_k, plain_v = attn.to_k(x), attn.to_v(x)
    handler.activate(p, [ExtraNetworkCall("hypernet", ("tiny", "0.5"))])
    try:
        hooked_k, hooked_v = attn.to_k(x), attn.to_v(x)
    finally:
        handler.deactivate(p)
    for which, hooked in ((0, hooked_k), (1, hooked_v)):
        s = runtime.file_data[width][which]
        mlp = (
            torch.relu(x @ s["linear.0.weight"].T + s["linear.0.bias"]) @ s["linear.2.weight"].T
            + s["linear.2.bias"]
        )
        projection = attn.to_k if which == 0 else attn.to_v
        assert torch.allclose(hooked, projection(x + mlp * 0.5), atol=1e-5)
    assert torch.equal(attn.to_k(x), plain_k) and torch.equal(attn.to_v(x), plain_v)  # hooks removed
    assert p.comments == []


@pytest.mark.slow
def test_a_job_with_a_hypernetwork(runtime, tiny_bundle):
    before = h.state_of(tiny_bundle)
    plain = pixels(runtime.txt2img(job("a red circle")))
    used = runtime.txt2img(job("a red circle <hypernet:tiny:1>"))
    assert not np.array_equal(plain, pixels(used))
    assert used.comments == []
    assert np.array_equal(plain, pixels(runtime.txt2img(job("a red circle <hypernet:tiny:0>"))))
    assert np.array_equal(plain, pixels(runtime.txt2img(job("a red circle"))))  # nothing left behind
    h.assert_same_state(before, tiny_bundle)
    missing = runtime.txt2img(job("a red circle <hypernet:nope:1>"))
    assert missing.comments == ["Hypernetwork not found: nope"]
    assert np.array_equal(plain, pixels(missing))


def test_api_lists_the_files(runtime):
    path = runtime.paths.hypernetwork_dir / "tiny.pt"
    assert catalog.hypernetworks(runtime) == [{"name": "tiny", "path": str(path)}]


def test_extra_networks_page_shows_a_card_per_file(runtime):
    from modules.ui import extra_networks

    (page,) = [p for p in extra_networks.network_pages(runtime) if p.title == "Hypernetworks"]
    assert [(c.name, c.network) for c in page.cards()] == [("tiny", "hypernet")]
    assert extra_networks.card_text(page.cards()[0], 1.0) == "<hypernet:tiny:1>"
