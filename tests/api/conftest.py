"""Fixtures for the API tests: a runtime on the tiny model, a TestClient over it, a checkpoint file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modules import cmd_args
from modules.api.server import create_app
from modules.runtime import Runtime


@pytest.fixture
def runtime(tmp_path, tiny_bundle):
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu", "--no-bundled-models"]))
    rt.model_loader = lambda: tiny_bundle
    return rt


@pytest.fixture
def client(runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


@pytest.fixture
def checkpoint(runtime, tiny_bundle) -> Path:
    """The tiny model saved as a checkpoint file in the runtime's checkpoint folder, listed."""
    from modules.models.loader import save_checkpoint

    path = runtime.paths.ckpt_dir / "tiny-test.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(tiny_bundle, path)
    runtime.models.refresh()
    return path
