"""Checkpoint merging maths and metadata on small files."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from modules.models import merge
from modules.models.storage import read_state_dict, save_state_dict

CONV = merge.FIRST_CONV


def _write(path, seed: int, conv_channels: int = 4, dtype=torch.float32) -> dict:  # noqa: ANN001
    generator = torch.Generator().manual_seed(seed)
    state = {
        CONV: torch.randn(8, conv_channels, 3, 3, generator=generator).to(dtype),
        "model.diffusion_model.out.2.bias": torch.randn(4, generator=generator).to(dtype),
        "cond_stage_model.transformer.text_model.embeddings.position_ids": torch.arange(77.0)[None] + seed,
    }
    save_state_dict(state, path, {})
    return state


def test_weighted_sum(tmp_path) -> None:
    a, b = _write(tmp_path / "a.safetensors", 1), _write(tmp_path / "b.safetensors", 2)
    out = merge.merge_checkpoints(
        merge.MergeRequest(
            tmp_path / "a.safetensors",
            tmp_path / "b.safetensors",
            tmp_path / "m.safetensors",
            multiplier=0.25,
        )
    )
    merged, metadata = read_state_dict(out)
    for key in (CONV, "model.diffusion_model.out.2.bias"):
        assert torch.allclose(merged[key], a[key] * 0.75 + b[key] * 0.25, atol=1e-6)
    position_ids = "cond_stage_model.transformer.text_model.embeddings.position_ids"
    assert torch.equal(merged[position_ids], a[position_ids])  # never merged
    recipe = json.loads(metadata["sd_merge_recipe"])
    sha_a = hashlib.sha256((tmp_path / "a.safetensors").read_bytes()).hexdigest()
    assert recipe["primary_model_hash"] == sha_a and recipe["interp_method"] == "Weighted sum"
    assert json.loads(metadata["sd_merge_models"])[sha_a]["name"] == "a"


def test_add_difference_fp16(tmp_path) -> None:
    paths = [tmp_path / f"{n}.safetensors" for n in "abc"]
    a, b, c = (_write(p, seed) for p, seed in zip(paths, (1, 2, 3), strict=True))
    request = merge.MergeRequest(
        *paths[:2],
        tmp_path / "m.safetensors",
        merge.ADD_DIFFERENCE,
        0.5,
        tertiary=paths[2],
        save_as_half=True,
    )
    merged, metadata = read_state_dict(merge.merge_checkpoints(request))
    assert merged[CONV].dtype == torch.float16
    assert torch.equal(merged[CONV], (a[CONV] + (b[CONV] - c[CONV]) * 0.5).half())
    assert json.loads(metadata["sd_merge_recipe"])["tertiary_model_hash"]


def test_inpainting_a_merges_first_four_channels(tmp_path) -> None:
    a = _write(tmp_path / "a.safetensors", 1, conv_channels=9)
    b = _write(tmp_path / "b.safetensors", 2)
    request = merge.MergeRequest(
        tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "m.safetensors", multiplier=0.5
    )
    merged, metadata = read_state_dict(merge.merge_checkpoints(request))
    assert torch.allclose(merged[CONV][:, :4], (a[CONV][:, :4] + b[CONV]) / 2, atol=1e-6)
    assert torch.equal(merged[CONV][:, 4:], a[CONV][:, 4:])
    assert json.loads(metadata["sd_merge_recipe"])["is_inpainting"] is True
    swapped = merge.MergeRequest(
        tmp_path / "b.safetensors", tmp_path / "a.safetensors", tmp_path / "n.safetensors"
    )
    with pytest.raises(ValueError, match="A must be"):
        merge.merge_checkpoints(swapped)


def test_mixed_precision_promotes(tmp_path) -> None:
    _write(tmp_path / "a.safetensors", 1, dtype=torch.float16)
    _write(tmp_path / "b.safetensors", 2)
    out = merge.merge_checkpoints(
        merge.MergeRequest(tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "m.ckpt")
    )
    assert read_state_dict(out)[0][CONV].dtype == torch.float32


# --- round trips: merged files load like their sources ----------------------------------------------


def _merge_and_load(tmp_path, primary, secondary, multiplier: float = 0.3):  # noqa: ANN001, ANN202
    from modules.models.loader import load_checkpoint

    out = merge.merge_checkpoints(
        merge.MergeRequest(primary, secondary, tmp_path / "merged.safetensors", multiplier=multiplier)
    )
    return load_checkpoint(out), out


def test_the_bundled_model_merged_with_itself_loads_and_is_unchanged(tmp_path) -> None:
    from modules import paths
    from modules.models.detect import METADATA_KEY
    from modules.models.loader import load_checkpoint

    source = paths.BUNDLED_MODELS / "demo-shapes-sd1.safetensors"
    merged, out = _merge_and_load(tmp_path, source, source)  # was: num_channels (16) ... num_groups (32)
    original = load_checkpoint(source)
    assert read_state_dict(out)[1][METADATA_KEY] == read_state_dict(source)[1][METADATA_KEY]
    for mine, theirs in ((merged.unet, original.unet), (merged.vae, original.vae)):
        for (name, a), (_, b) in zip(mine.state_dict().items(), theirs.state_dict().items(), strict=True):
            assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_two_tiny_models_merge_into_a_loadable_weighted_sum(tmp_path) -> None:
    from modules.models.bundle import Arch
    from modules.models.loader import load_checkpoint, save_checkpoint
    from tests.models.conftest import tiny

    a_path, b_path = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_checkpoint(tiny(Arch.SD1, seed=3), a_path)
    save_checkpoint(tiny(Arch.SD1, seed=4), b_path)
    merged, _ = _merge_and_load(tmp_path, a_path, b_path, multiplier=0.3)
    a, b = load_checkpoint(a_path), load_checkpoint(b_path)
    for name, value in merged.unet.state_dict().items():
        expected = a.unet.state_dict()[name] * 0.7 + b.unet.state_dict()[name] * 0.3
        assert torch.allclose(value, expected, atol=1e-5), name


def test_models_of_different_architectures_are_refused(tmp_path) -> None:
    from modules.models.detect import METADATA_KEY

    for name, config in (("a", '{"x": 1}'), ("b", '{"x": 2}')):
        save_state_dict(
            {CONV: torch.zeros(8, 4, 3, 3)}, tmp_path / f"{name}.safetensors", {METADATA_KEY: config}
        )
    with pytest.raises(ValueError, match="different architectures"):
        merge.merge_checkpoints(
            merge.MergeRequest(
                tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "m.safetensors"
            )
        )
