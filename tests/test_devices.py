"""Flags to precision and attention, with A1111's flag names."""

from __future__ import annotations

import pytest
import torch

from modules import cmd_args, devices

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


def test_half_precision_by_default_on_a_gpu_and_float32_on_the_cpu():
    assert devices.choose_precision("auto", CUDA) == devices.Precision(torch.float16, torch.float16)
    assert devices.choose_precision("auto", CPU) == devices.Precision(torch.float32, torch.float32)


def test_a1111_flags():
    assert devices.choose_precision("auto", CUDA, no_half=True) == devices.Precision(
        torch.float32, torch.float32
    )
    assert devices.choose_precision("auto", CUDA, no_half_vae=True) == devices.Precision(
        torch.float16, torch.float32
    )
    assert devices.choose_precision("auto", CUDA, upcast_sampling=True) == devices.Precision(
        torch.float16, torch.float16, torch.float32
    )
    # A1111 compatibility: --upcast-sampling does nothing with --no-half.
    assert devices.choose_precision("auto", CUDA, no_half=True, upcast_sampling=True).unet_compute is None


def test_flags_parse_under_a1111_names():
    args = cmd_args.parse(["--no-half", "--no-half-vae", "--upcast-sampling", "--xformers", "--medvram"])
    assert args.no_half and args.no_half_vae and args.upcast_sampling and args.xformers and args.medvram
    assert devices.precision_from_args(args, CUDA).weights == torch.float32


def test_bf16_is_refused_where_the_gpu_lacks_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(SystemExit, match="bfloat16"):
        devices.choose_dtype("bf16", CUDA)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert devices.choose_dtype("bf16", CUDA) == torch.bfloat16


def test_attention_defaults_to_sdpa_and_xformers_needs_the_package(monkeypatch):
    assert devices.choose_attention(False) == "sdpa"
    monkeypatch.setattr(devices, "xformers_available", lambda: False)
    with pytest.raises(SystemExit, match="xformers"):
        devices.choose_attention(True)


def test_nan_messages_name_the_fix():
    from modules.sampling.denoiser import NansError, check_finite

    bad = torch.tensor([float("nan")])
    with pytest.raises(NansError, match="--no-half-vae"):
        check_finite(bad, "VAE", torch.float16)
    with pytest.raises(NansError, match="--upcast-sampling"):
        check_finite(bad, "UNet", torch.float16)


def test_fp16_unet_runs_under_autocast_on_cuda_only():
    import contextlib

    from modules.sampling.denoiser import unet_autocast

    assert isinstance(unet_autocast(CPU, torch.float32), contextlib.nullcontext)
    assert isinstance(unet_autocast(torch.device("meta"), torch.float16), contextlib.nullcontext)
    assert isinstance(unet_autocast(CUDA, torch.bfloat16), contextlib.nullcontext)
    assert isinstance(unet_autocast(CUDA, torch.float16), torch.autocast)


def test_an_fp16_vae_that_overflows_decodes_again_in_float32(monkeypatch):
    from modules.models.bundle import Arch
    from modules.models.tiny import build_tiny
    from modules.processing import vae

    bundle = build_tiny(Arch.SD1, 3)
    bundle.vae.to(torch.float16)
    bundle.vae.register_to_config(force_upcast=False)  # as SD1's real VAE config says
    decode = bundle.vae.decode
    dtypes = []

    def overflowing(z):
        dtypes.append(z.dtype)
        out = decode(z)
        if z.dtype == torch.float16:
            out.sample[0, 0, 0, 0] = float("inf")
        return out

    monkeypatch.setattr(bundle.vae, "decode", overflowing)
    pixels = vae.decode_pixels(bundle, torch.zeros(1, 4, 8, 8))
    assert dtypes == [torch.float16, torch.float32]
    assert torch.isfinite(pixels).all() and bundle.vae.dtype == torch.float16  # only this decode


@pytest.mark.parametrize(
    ("precision", "device", "native", "hinted"),
    [
        ("auto", "cpu", True, True),
        ("auto", "cpu", False, False),  # bf16 without the instructions is slower: no tip
        ("fp32", "cpu", True, False),  # chosen by the user
        ("bf16", "cpu", True, False),
        ("auto", "cuda", True, False),
        ("auto --no-half", "cpu", True, False),  # float32 asked for
    ],
)
def test_the_bf16_tip_shows_only_where_bf16_pays_and_nothing_was_chosen(
    monkeypatch, precision, device, native, hinted
):
    monkeypatch.setattr(devices, "cpu_computes_bf16", lambda: native)
    precision, _, flag = precision.partition(" ")
    hint = devices.precision_hint(precision, torch.device(device), no_half=flag == "--no-half")
    assert (hint is not None) == hinted
    if hinted:
        assert "--precision bf16" in hint
