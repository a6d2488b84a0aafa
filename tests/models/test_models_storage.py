"""Restricted unpickling, and the safetensors reader."""

from __future__ import annotations

import os

import numpy
import pytest
import torch

from modules.models.loader import load_checkpoint
from modules.models.storage import UnsafeCheckpointError, read_keys, read_state_dict, save_state_dict


class _Payload:
    """Unpickling this would run a shell command that creates a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save(
        {"state_dict": {"model.diffusion_model.x": torch.ones(1)}, "payload": _Payload(str(marker))}, path
    )
    with pytest.raises(UnsafeCheckpointError, match="refused to load.*evil.ckpt|evil.ckpt: refused") as error:
        load_checkpoint(path)
    assert "system" in str(error.value)
    assert not marker.exists()


def test_training_checkpoint_with_numpy_values_loads(tmp_path) -> None:
    path = tmp_path / "train.ckpt"
    state = {"a": torch.arange(3.0)}
    torch.save({"state_dict": state, "global_step": numpy.int64(470000), "scores": numpy.array([0.5])}, path)
    loaded, _ = read_state_dict(path, torch.float16)
    assert loaded["a"].dtype == torch.float16 and torch.equal(loaded["a"].float(), state["a"])


def test_legacy_pickle_format_loads(tmp_path) -> None:
    path = tmp_path / "old.ckpt"
    torch.save({"w": torch.ones(2, 2)}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(read_state_dict(path)[0]["w"], torch.ones(2, 2))


def test_safetensors_reader_filters_and_casts(tmp_path) -> None:
    path = tmp_path / "t.safetensors"
    tensors = {
        "keep.f16": torch.arange(6, dtype=torch.float16).reshape(2, 3),
        "keep.bf16": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
        "keep.int": torch.tensor([7, 8], dtype=torch.int64),
        "keep.empty": torch.zeros(0),
        "drop.me": torch.ones(4),
    }
    save_state_dict(tensors, path, {"note": "hello"})
    assert set(read_keys(path)) == set(tensors)
    loaded, metadata = read_state_dict(path, torch.float32, keep=lambda k: k.startswith("keep."))
    assert metadata == {"note": "hello"} and set(loaded) == {k for k in tensors if k.startswith("keep.")}
    assert loaded["keep.int"].dtype == torch.int64 and torch.equal(loaded["keep.int"], tensors["keep.int"])
    assert loaded["keep.bf16"].dtype == torch.float32
    assert torch.equal(loaded["keep.f16"], tensors["keep.f16"].float())
    assert all(t.data_ptr() % 64 == 0 for t in loaded.values() if t.numel())
