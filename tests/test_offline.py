"""The offline guard: outside connections are refused with a clear message, loopback still works."""

from __future__ import annotations

import os
import socket

import pytest

from modules import offline


@pytest.fixture
def guarded():
    offline.enable(block_network=True)
    yield
    offline.disable_guard()


def test_outside_connection_is_refused_with_a_clear_message(guarded):
    with socket.socket() as s, pytest.raises(offline.OfflineError, match="runs offline"):
        s.connect(("203.0.113.7", 443))  # TEST-NET-3: never reached, refused before any packet


def test_loopback_still_connects(guarded):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket() as client:
            client.connect(server.getsockname())


def test_hub_libraries_are_switched_offline(guarded):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
