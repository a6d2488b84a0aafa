"""Keep the app off the network: hub libraries in offline mode, outside connections refused loudly.

``enable()`` must run before huggingface_hub, transformers, diffusers or gradio are imported, because
they read their offline switches at import time.
"""

from __future__ import annotations

import ipaddress
import os
import socket

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DIFFUSERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "DO_NOT_TRACK": "1",
}


class OfflineError(ConnectionError):
    """Something tried to reach a host outside this machine while the app runs offline."""


_original_connect = socket.socket.connect


def _is_local(address: object) -> bool:
    if isinstance(address, str):  # AF_UNIX path
        return True
    if not isinstance(address, tuple) or not address:
        return True
    host = str(address[0])
    if host in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise OfflineError(
            f"refused a network connection to {address!r}: this web UI runs offline "
            "(models, tokenizers and configs ship with it). Start with --allow-network to permit it."
        )
    return _original_connect(self, address)


def enable(block_network: bool = True) -> None:
    """Set the hub libraries' offline switches and, if asked, refuse non-loopback connections."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    if block_network:
        socket.socket.connect = _guarded_connect  # type: ignore[method-assign]


def disable_guard() -> None:
    socket.socket.connect = _original_connect  # type: ignore[method-assign]
