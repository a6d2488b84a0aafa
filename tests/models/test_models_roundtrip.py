"""Tiny models of each family written in the original single-file layout load back bit-exactly."""

from __future__ import annotations

import pytest
import torch

from modules.models.bundle import Arch
from modules.models.loader import load_checkpoint, save_checkpoint, save_diffusers

from .conftest import text_outputs, tiny, unet_output, vae_output


def assert_same_weights(original: torch.nn.Module, loaded: torch.nn.Module) -> None:
    assert type(original) is type(loaded)
    a, b = original.state_dict(), loaded.state_dict()
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


def assert_same_outputs(original, loaded) -> None:  # noqa: ANN001 - bundles
    assert torch.equal(unet_output(original), unet_output(loaded))
    assert torch.equal(vae_output(original), vae_output(loaded))
    for a, b in zip(text_outputs(original), text_outputs(loaded), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_single_file_round_trip(variant, suffix, tmp_path) -> None:
    path = tmp_path / f"model{suffix}"
    save_checkpoint(variant, path)
    loaded = load_checkpoint(path)
    assert (loaded.arch, loaded.unet_in_channels, loaded.prediction_type) == (
        variant.arch,
        variant.unet_in_channels,
        variant.prediction_type,
    )
    for a, b in [(variant.unet, loaded.unet), (variant.vae, loaded.vae)]:
        assert_same_weights(a, b)
    for a, b in zip(variant.text_encoders, loaded.text_encoders, strict=True):
        assert_same_weights(a, b)
    assert_same_outputs(variant, loaded)
    assert [t.pad_token for t in loaded.tokenizers] == [t.pad_token for t in variant.tokenizers]
    assert loaded.name == "model" and loaded.path == path


def test_file_is_original_layout(tmp_path) -> None:
    from safetensors import safe_open

    save_checkpoint(tiny(Arch.SDXL), tmp_path / "xl.safetensors")
    with safe_open(tmp_path / "xl.safetensors", "pt") as f:
        keys = set(f.keys())
        qkv = f.get_tensor("conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight")
    assert qkv.shape == (96, 32)  # q, k, v of a 32-wide model, fused
    assert "model.diffusion_model.label_emb.0.0.weight" in keys
    assert "first_stage_model.encoder.mid.attn_1.q.weight" in keys
    assert "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight" in keys
    assert not any(".down_blocks." in k or "to_q" in k and "first_stage" in k for k in keys)


def test_fp16_save_and_load_dtype(tmp_path) -> None:
    bundle = tiny(Arch.SD1)
    save_checkpoint(bundle, tmp_path / "half.safetensors", dtype=torch.float16)
    loaded = load_checkpoint(tmp_path / "half.safetensors", dtype=torch.float32)
    weight = bundle.unet.conv_in.weight
    assert loaded.unet.conv_in.weight.dtype == torch.float32
    assert torch.equal(loaded.unet.conv_in.weight, weight.half().float())
    as_half = load_checkpoint(tmp_path / "half.safetensors", dtype=torch.float16)
    assert as_half.unet.dtype == torch.float16 and as_half.text_encoders[0].dtype == torch.float16


@pytest.mark.slow
@pytest.mark.parametrize(
    "key", [(Arch.SD1, 4, "epsilon"), (Arch.SD2, 4, "v_prediction"), (Arch.SDXL, 4, "epsilon")]
)
def test_diffusers_folder_round_trip(key, tmp_path) -> None:
    bundle = tiny(*key)
    save_diffusers(bundle, tmp_path / "pipe")
    loaded = load_checkpoint(tmp_path / "pipe")
    assert (loaded.arch, loaded.prediction_type, loaded.name) == (bundle.arch, bundle.prediction_type, "pipe")
    assert_same_outputs(bundle, loaded)
