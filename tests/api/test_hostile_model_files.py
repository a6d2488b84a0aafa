"""Model files that lie: refused with a 4xx naming the problem, before allocating; the model in use and
the saved settings stay as they were."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from modules.models.storage import ModelFileError, read_keys, read_state_dict


def hostile(folder, checkpoint):
    data = checkpoint.read_bytes()
    header_size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + header_size])
    files = {"truncated": data[: len(data) // 2]}
    key = next(k for k in header if k != "__metadata__")
    past = dict(header)
    past[key] = {**header[key], "data_offsets": [header[key]["data_offsets"][0], len(data) * 4]}
    raw = json.dumps(past).encode()
    files["offsets-past-end"] = struct.pack("<Q", len(raw)) + raw + data[8 + header_size :]
    huge = json.dumps(
        {"w": {"dtype": "F32", "shape": [20000, 20000], "data_offsets": [0, 1_600_000_000]}}
    ).encode()
    files["huge-in-222-bytes"] = (struct.pack("<Q", len(huge)) + huge).ljust(222, b"\0")
    files["garbage-header"] = struct.pack("<Q", 40) + b"{not json" + b"\0" * 100
    paths = {}
    for name, content in files.items():
        path = folder / f"{name}.safetensors"
        path.write_bytes(content)
        paths[name] = path
    return paths


NAMES = ["truncated", "offsets-past-end", "huge-in-222-bytes", "garbage-header"]


@pytest.mark.parametrize("name", NAMES)
def test_reader_refuses_before_allocating(tmp_path, checkpoint, name, monkeypatch):
    path = hostile(tmp_path, checkpoint)[name]
    allocated = []
    real_empty = torch.empty
    monkeypatch.setattr(torch, "empty", lambda *a, **k: allocated.append(a) or real_empty(*a, **k))
    with pytest.raises(ModelFileError, match=name):
        read_state_dict(path)
    with pytest.raises(ModelFileError):
        read_keys(path)
    assert all(torch.Size(a[0]).numel() <= 1 for a in allocated if a)  # nothing the size of a tensor


@pytest.mark.parametrize("name", NAMES)
def test_selecting_a_broken_checkpoint_is_refused_and_changes_nothing(client, runtime, checkpoint, name):
    runtime.model_loader = None
    folder = runtime.paths.ckpt_dir
    hostile(folder, checkpoint)
    runtime.models.refresh()
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "tiny-test"}).status_code == 200
    selected = runtime.options.get("sd_model_checkpoint")
    saved = runtime.paths.config_file.read_text()
    response = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": name})
    assert response.status_code == 422
    assert name in response.json()["detail"]
    assert runtime.options.get("sd_model_checkpoint") == selected
    assert runtime.paths.config_file.read_text() == saved
    body = {"prompt": "a circle", "steps": 1, "width": 64, "height": 64}
    assert client.post("/sdapi/v1/txt2img", json=body).status_code == 200  # still generates
