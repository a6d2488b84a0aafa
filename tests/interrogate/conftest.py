"""Fixtures: tiny random BLIP and CLIP folders, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interrogate.helpers import write_tiny_blip, write_tiny_clip


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    return write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture(scope="session")
def tiny_blip_dir(tmp_path_factory) -> Path:
    return write_tiny_blip(tmp_path_factory.mktemp("blip") / "tiny-blip")
