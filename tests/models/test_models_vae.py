"""VAE choice (Automatic / None / a file) and swapping VAE weights into a loaded bundle."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from modules.models import detect, vae
from modules.models.bundle import Arch
from modules.models.convert import VAE_PREFIX, add_prefix, vae_to_original
from modules.models.loader import load_checkpoint, save_checkpoint
from modules.models.storage import save_state_dict

from .conftest import tiny, vae_output


def _write_vae(bundle, path, prefixed: bool) -> None:  # noqa: ANN001
    state = vae_to_original(bundle.vae.state_dict())
    save_state_dict(add_prefix(state, VAE_PREFIX) if prefixed else state, path, {})


def test_resolution_table(tmp_path) -> None:
    ckpt_dir, vae_dir = tmp_path / "sd", tmp_path / "VAE"
    ckpt_dir.mkdir(), vae_dir.mkdir()
    checkpoint = ckpt_dir / "model.safetensors"
    checkpoint.write_bytes(b"x")
    (vae_dir / "other.safetensors").write_bytes(b"x")
    vaes = vae.list_vaes(vae_dir, ckpt_dir)
    assert vae.resolve_vae(vae.AUTOMATIC, checkpoint, vaes) is None
    assert vae.resolve_vae(vae.NONE, checkpoint, vaes) is None
    assert vae.resolve_vae("other.safetensors", checkpoint, vaes) == vae_dir / "other.safetensors"
    with pytest.raises(ValueError, match="missing.pt"):
        vae.resolve_vae("missing.pt", checkpoint, vaes)
    near = ckpt_dir / "model.vae.pt"
    near.write_bytes(b"x")
    vaes = vae.list_vaes(vae_dir, ckpt_dir)
    assert [v.name for v in vaes] == ["model.vae.pt", "other.safetensors"]
    assert vae.resolve_vae(vae.AUTOMATIC, checkpoint, vaes) == near
    assert vae.resolve_vae(vae.NONE, checkpoint, vaes) is None
    assert vae.resolve_vae("other.safetensors", checkpoint, vaes) == near  # A1111's default preference
    assert vae.resolve_vae("other.safetensors", checkpoint, vaes, False) == vae_dir / "other.safetensors"


@pytest.mark.parametrize("prefixed", [True, False])
def test_apply_vae_file_then_restore_own(tmp_path, prefixed: bool) -> None:
    path = tmp_path / "model.safetensors"
    save_checkpoint(tiny(Arch.SD1, seed=3), path)
    bundle = load_checkpoint(path)
    own = vae_output(bundle)
    donor = tiny(Arch.SD1, seed=4)
    _write_vae(donor, tmp_path / "donor.vae.pt", prefixed)
    vae.apply_vae(bundle, tmp_path / "donor.vae.pt")
    assert bundle.vae_name == "donor.vae.pt"
    assert torch.equal(vae_output(bundle), vae_output(donor))
    vae.apply_vae(bundle, None)
    assert bundle.vae_name is None and torch.equal(vae_output(bundle), own)


def test_decode_dtype_upcasts_sdxl_in_fp16() -> None:
    def bundle(skeleton: str, dtype: torch.dtype) -> SimpleNamespace:
        config = SimpleNamespace(**detect.load_skeleton(skeleton, "vae"))
        return SimpleNamespace(vae=SimpleNamespace(dtype=dtype, config=config))

    assert vae.decode_dtype(bundle("sdxl", torch.float16)) == torch.float32
    assert vae.decode_dtype(bundle("sd1", torch.float16)) == torch.float16
    assert vae.decode_dtype(bundle("sd1", torch.float16), no_half_vae=True) == torch.float32
    assert vae.decode_dtype(bundle("sdxl", torch.bfloat16)) == torch.bfloat16
    assert vae.decode_dtype(bundle("sdxl", torch.float32)) == torch.float32
