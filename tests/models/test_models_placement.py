"""Placement: medvram/lowvram keep parts on the host until they run, --upcast-sampling, attention.

The offload tests use a recording stand-in for the device: the group's moves are logged while a real
generation runs on the CPU, and at every network call the unit that runs must be the one on the device.
"""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from modules import cmd_args
from modules.models.bundle import Arch
from modules.models.manager import place
from modules.models.offload import OneOnDevice, units
from modules.models.tiny import build_tiny
from modules.processing.job import GenerationJob
from modules.runtime import Runtime


class Recording(OneOnDevice):
    """Moves for real (host to host here) and logs which unit went where."""

    def __init__(self, device) -> None:
        super().__init__(device)
        self.log: list[tuple[str, str]] = []

    def move(self, unit, onto_device: bool) -> None:
        super().move(unit, onto_device)
        self.log.append((type(unit).__name__, "on" if onto_device else "off"))


def generate(tmp_path, bundle, **kw) -> list:
    runtime = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu"]))
    runtime.model_loader = lambda: bundle
    job = GenerationJob(prompt="a red circle", steps=2, width=32, height=32, seed=7, do_not_save_samples=True)
    return runtime.txt2img(job).images


@pytest.mark.parametrize("mode", ["medvram", "lowvram"])
def test_offload_runs_each_part_on_the_device_and_only_that_one(tmp_path, mode):
    reference = generate(tmp_path, build_tiny(Arch.SD1, 3))
    bundle = build_tiny(Arch.SD1, 3)
    group = Recording(torch.device("cpu"))
    group.attach(units(bundle, mode))
    seen = []

    def check(unit):
        def hook(module, args):
            # the group's own hook ran first: this unit, and no other, is on the device
            assert group.active is unit
            seen.append(type(unit).__name__)

        return hook

    for unit in units(bundle, mode):
        for module in unit.modules():  # the conditioning code calls a text encoder's layers directly
            module.register_forward_pre_hook(check(unit))
    images = generate(tmp_path, bundle)
    assert [a.tobytes() for a in images] == [b.tobytes() for b in reference]
    on = [name for name, where in group.log if where == "on"]
    off = [name for name, where in group.log if where == "off"]
    assert len(on) - len(off) == 1  # exactly one unit left on the device
    assert {"CLIPTextModel", "AutoencoderKL" if mode == "medvram" else "Decoder"} <= set(seen)
    assert group.moves == len(group.log)
    if mode == "medvram":
        # text encoder, then the UNet, then the VAE: each brought over once per generation
        assert on == ["CLIPTextModel", "UNet2DConditionModel", "AutoencoderKL"]
    else:
        assert len(on) > 6 and "UNet2DConditionModel" not in on


def test_lowvram_units_cover_every_parameter():
    bundle = build_tiny(Arch.SDXL, 3)
    covered = {id(p) for unit in units(bundle, "lowvram") for p in unit.parameters()}
    networks = [*bundle.text_encoders, bundle.unet, bundle.vae]
    assert all(id(p) in covered for network in networks for p in network.parameters())


def test_upcast_sampling_keeps_half_weights_and_computes_in_float32():
    full = build_tiny(Arch.SD1, 3)
    half = build_tiny(Arch.SD1, 3)
    for module in (half.unet, half.vae, *half.text_encoders):
        module.to(torch.float16)
    half.dtype = torch.float16
    place(half, torch.device("cpu"), unet_compute_dtype=torch.float32)
    assert half.unet_compute_dtype == torch.float32
    assert half.unet.conv_in.weight.dtype == torch.float16  # stored in half precision between calls
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    cond = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = full.unet(x, torch.tensor([500.0]), encoder_hidden_states=cond).sample
        got = half.unet(x, torch.tensor([500.0]), encoder_hidden_states=cond).sample
    assert got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=2e-2)


def test_attention_is_pytorch_sdpa_by_default():
    bundle = build_tiny(Arch.SD1, 3)
    place(bundle, torch.device("cpu"))
    for network in (bundle.unet, bundle.vae):
        assert all(isinstance(p, AttnProcessor2_0) for p in network.attn_processors.values())
