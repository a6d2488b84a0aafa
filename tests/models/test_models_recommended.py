"""Recommended generation defaults in a checkpoint's metadata, and rewriting a header in place."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from modules import demo_data, paths
from modules.models import recommended
from modules.models.storage import read_state_dict, replace_metadata, safetensors_header, save_state_dict


def tensor_bytes(path) -> bytes:
    _, size = safetensors_header(path)
    return path.read_bytes()[8 + size :]


def test_replace_metadata_keeps_tensor_bytes_and_reads_back(tmp_path):
    path = tmp_path / "m.safetensors"
    state = {"b": torch.arange(5, dtype=torch.float16), "a": torch.ones(2, 3)}
    save_state_dict(state, path, {"x": "1"})
    before = tensor_bytes(path)
    replace_metadata(path, {"x": "2", **recommended.encode({"width": 64})})
    assert tensor_bytes(path) == before
    loaded, metadata = read_state_dict(path)
    assert metadata == {"x": "2", recommended.METADATA_KEY: '{"width": 64}'}
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    _, size = safetensors_header(path)
    assert size % 8 == 0


def test_several_metadata_entries_give_the_same_file_every_time(tmp_path):
    # safetensors writes metadata in hash-map order; save_state_dict sorts it.
    digests = set()
    for i in range(6):
        path = tmp_path / f"{i}.safetensors"
        save_state_dict({"a": torch.zeros(2)}, path, {"c": "3", "a": "1", "b": "2", "d": "4"})
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_sorting_the_metadata_rewrites_only_the_header(tmp_path, monkeypatch):
    from modules.models import storage

    def copy_whole_file(*_):
        raise AssertionError("the weights were copied again")

    monkeypatch.setattr(storage, "replace_metadata", copy_whole_file)
    path = tmp_path / "m.safetensors"
    state = {"b": torch.arange(5, dtype=torch.float16), "a": torch.ones(2, 3)}
    save_state_dict(state, path, {"c": "3", "a": "1", "b": "2"})
    loaded, metadata = read_state_dict(path)
    assert list(metadata) == ["a", "b", "c"] and metadata == {"a": "1", "b": "2", "c": "3"}
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_parse_checks_values_by_their_fields():
    meta = {
        recommended.METADATA_KEY: json.dumps(
            {"width": 64, "height": "96", "cfg_scale": 1e400, "steps": 0, "sampler_name": "Euler", "seed": 5}
        )
    }
    # 1e400 is infinity and steps 0 is out of range: dropped; "96" converts; seed is not recommendable.
    assert recommended.parse(meta) == {"width": 64, "height": 96, "sampler_name": "Euler"}
    assert recommended.parse({recommended.METADATA_KEY: "[1, 2]"}) == {}
    assert recommended.parse({recommended.METADATA_KEY: "{not json"}) == {}
    assert recommended.parse({}) == {}


def test_encode_refuses_what_it_cannot_carry():
    with pytest.raises(ValueError, match="seed"):
        recommended.encode({"seed": 1})
    with pytest.raises(ValueError, match="steps"):
        recommended.encode({"steps": -3})


def test_read_ignores_files_without_a_header(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x01\x00")
    assert recommended.read(tmp_path / "bad.safetensors") == {}
    assert recommended.read(tmp_path / "missing.ckpt") == {}


def test_bundled_model_carries_the_demo_defaults():
    values = recommended.read(paths.BUNDLED_MODELS / "demo-shapes-sd1.safetensors")
    assert values == demo_data.RECOMMENDED
    assert (values["width"], values["height"]) == (64, 64) and 3 <= values["cfg_scale"] <= 5
