"""A runtime on the tiny model with a temporary data dir, for processing tests."""

from __future__ import annotations

import pytest

from modules import cmd_args
from modules.runtime import Runtime


@pytest.fixture
def runtime(tmp_path, tiny_bundle):
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu"]))
    rt.model_loader = lambda: tiny_bundle
    return rt
