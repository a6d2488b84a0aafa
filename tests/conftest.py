"""Shared fixtures: the tiny model (built once per session) and a free port for live servers."""

from __future__ import annotations

import socket

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_bundle():
    from modules.models.tiny import build_tiny_bundle

    return build_tiny_bundle()


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
