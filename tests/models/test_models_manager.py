"""The model cache: lookup, LRU eviction, thread safety, reload, VAE switching and offloading."""

from __future__ import annotations

import threading
import time
import weakref

import pytest
import torch

from modules import heap
from modules.models.bundle import Arch
from modules.models.hashes import HashCache
from modules.models.loader import save_checkpoint
from modules.models.manager import LoadOptions, ModelManager, place

from .conftest import tiny, unet_output, vae_output

CPU = LoadOptions(device=torch.device("cpu"))


@pytest.fixture
def folder(tmp_path):  # noqa: ANN001, ANN201
    root = tmp_path / "Stable-diffusion"
    for seed, name in [(3, "a"), (4, "b"), (5, "c")]:
        save_checkpoint(tiny(Arch.SD1, seed=seed), root / f"{name}.safetensors")
    (tmp_path / "VAE").mkdir()
    return tmp_path


def counting_loader(calls: list):  # noqa: ANN001, ANN201
    def load(path, device, dtype, sha256):  # noqa: ANN001, ANN202
        calls.append(path.name)
        time.sleep(0.05)  # widen the window in which concurrent callers could double-load
        bundle = tiny(Arch.SD1)
        return type(bundle)(**{**bundle.__dict__, "path": path, "sha256": sha256})

    return load


def manager(folder, loader=None, capacity: int = 1, **options) -> ModelManager:  # noqa: ANN001
    kwargs = {"loader": loader} if loader else {}
    return ModelManager(
        [folder / "Stable-diffusion"],
        folder / "VAE",
        HashCache(folder / "cache.json"),
        capacity=capacity,
        options=LoadOptions(**{**CPU.__dict__, **options}),
        **kwargs,
    )


def test_lru_eviction_keeps_capacity(folder) -> None:
    calls: list[str] = []
    models = manager(folder, counting_loader(calls), capacity=2)
    models.get("a")
    models.get("b")
    models.get("a")  # a is now the most recent
    models.get("c")  # evicts b
    assert [b.path.name for b in models.loaded()] == ["a.safetensors", "c.safetensors"]
    models.get("a")
    assert calls == ["a.safetensors", "b.safetensors", "c.safetensors"]
    models.get("b")
    assert calls[-1] == "b.safetensors" and len(models.loaded()) == 2


def test_concurrent_gets_load_once(folder) -> None:
    calls: list[str] = []
    models = manager(folder, counting_loader(calls))
    results = []
    threads = [threading.Thread(target=lambda: results.append(models.get("a"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["a.safetensors"] and all(r is results[0] for r in results)


def test_unload_reload_and_unknown(folder) -> None:
    calls: list[str] = []
    models = manager(folder, counting_loader(calls), capacity=3)
    models.get("a"), models.get("b")
    models.unload("a")
    assert [b.path.name for b in models.loaded()] == ["b.safetensors"]
    models.reload("b")
    assert calls == ["a.safetensors", "b.safetensors", "b.safetensors"]
    models.unload()
    assert models.loaded() == []
    with pytest.raises(KeyError, match="a.safetensors"):
        models.get("nope")


def test_unload_frees_a_model_frozen_with_cycles(folder) -> None:
    """Start-up freezes long-lived objects out of the collector (modules.heap); a model loaded before
    that and holding a reference cycle (a hook pointing back at its module) is still freed on unload."""
    models = manager(folder, capacity=1)
    bundle = models.get("a")
    bundle.unet.back_reference = bundle  # a cycle: refcounting alone never frees it
    unet = weakref.ref(bundle.unet)
    del bundle
    heap.settle()
    models.get("b")  # evicts a
    assert unet() is None


@pytest.mark.slow
def test_real_load_hashes_titles_and_vae(folder) -> None:
    models = manager(folder)
    bundle = models.get("b")
    assert bundle.name == "b" and bundle.short_hash == bundle.sha256[:10]
    assert torch.equal(unet_output(bundle), unet_output(tiny(Arch.SD1, seed=4)))
    assert models.refresh()[1].title == f"b.safetensors [{bundle.short_hash}]"
    save_checkpoint(tiny(Arch.SD1, seed=5), folder / "VAE" / "c-vae.safetensors")
    models.set_vae("c-vae.safetensors")
    assert bundle.vae_name == "c-vae.safetensors" and bundle.vae_sha256
    assert torch.equal(vae_output(bundle), vae_output(tiny(Arch.SD1, seed=5)))
    models.set_vae("None")
    assert bundle.vae_name is None
    assert torch.equal(vae_output(bundle), vae_output(tiny(Arch.SD1, seed=4)))


@pytest.mark.parametrize("mode", ["medvram", "lowvram"])
def test_offload_modes_keep_outputs(folder, mode: str) -> None:
    from modules.models.loader import load_checkpoint

    bundle = load_checkpoint(folder / "Stable-diffusion" / "a.safetensors")
    expected = unet_output(bundle)
    place(bundle, torch.device("cpu"), mode)
    assert torch.allclose(unet_output(bundle), expected, atol=1e-6)


def test_bad_offload_mode(folder) -> None:
    with pytest.raises(ValueError, match="offload"):
        manager(folder, offload="turbo")


def test_real_manager_under_concurrent_jobs(folder) -> None:
    """The runtime's own ModelManager (real files, real loading; no model_loader stand-in): jobs from
    eight threads asking for two checkpoints each get their own model's image, as when run one by one."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from modules import cmd_args
    from modules.infotext import parse_infotext
    from modules.processing.job import GenerationJob
    from modules.runtime import Runtime

    runtime = Runtime(
        cmd_args.parse(
            [
                "--data-dir",
                str(folder),
                "--ckpt-dir",
                str(folder / "Stable-diffusion"),
                "--device",
                "cpu",
                "--no-bundled-models",
            ]
        )
    )

    def run(name: str) -> tuple[str, np.ndarray]:
        job = GenerationJob(
            prompt="a circle",
            steps=2,
            width=64,
            height=64,
            seed=5,
            do_not_save_samples=True,
            do_not_save_grid=True,
            override_settings={"sd_model_checkpoint": name},
        )
        result = runtime.txt2img(job)
        return parse_infotext(result.infotexts[0])["Model"], np.asarray(result.images[0])

    alone = {name: run(name) for name in ("a", "b")}
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(run, ["a", "b"] * 4))
    for name, (model, pixels) in zip(["a", "b"] * 4, together, strict=True):
        assert model == alone[name][0] == name
        assert np.array_equal(pixels, alone[name][1])
    assert not np.array_equal(alone["a"][1], alone["b"][1])
