"""The app starts as users start it, serves txt2img to a Gradio client, and works with no network."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gradio_client import Client
from PIL import Image

from tests.ui.conftest import ROOT

pytestmark = pytest.mark.slow


def test_gradio_client_gets_a_txt2img_image(server):
    url = server()
    client = Client(url, verbose=False)
    # Inputs in the order of the txt2img controls: prompt, negative, sampler, scheduler, steps,
    # width, height, batch count, batch size, CFG, seed, variation seed, strength, resize w/h.
    outputs = client.predict(
        "a red circle",
        "",
        "Euler a",
        "Automatic",
        3,
        64,
        64,
        1,
        1,
        7.0,
        42,
        -1,
        0.0,
        0,
        0,
        api_name="/txt2img",
    )
    # Outputs the API exposes: progress, preview, gallery, info html, infotext (buttons/state are UI-only).
    gallery, infotext = outputs[2], outputs[4]
    assert len(gallery) == 1
    image_path = gallery[0]["image"] if isinstance(gallery[0]["image"], str) else gallery[0]["image"]["path"]
    with Image.open(image_path) as image:
        assert image.size == (64, 64)
    assert "Seed: 42" in infotext


@pytest.mark.skipif(sys.platform != "linux", reason="network namespaces are Linux-only")
def test_startup_and_generation_without_network(tmp_path):
    """In a network namespace with only loopback, the app starts, loads its model and answers."""
    script = textwrap.dedent(f"""
        import subprocess, sys, time, urllib.request
        sys.path.insert(0, {str(ROOT)!r})
        from tests.ui.conftest import start_server, wait_for_http
        from pathlib import Path
        proc = start_server([], Path({str(tmp_path)!r}), 7860)
        try:
            wait_for_http("http://127.0.0.1:7860/", proc)
            from gradio_client import Client
            out = Client("http://127.0.0.1:7860/", verbose=False).predict(
                "a blue square", "", "Euler", "Automatic", 2, 64, 64, 1, 1, 5.0, 7, -1, 0.0, 0, 0,
                api_name="/txt2img")
            print("INFO", out[4])
        finally:
            proc.terminate(); proc.wait(20)
    """)
    unshare = [
        "unshare",
        "-n",
        "sh",
        "-c",
        'ip link set lo up && exec "$0" "$@"',
        sys.executable,
        "-c",
        script,
    ]
    done = subprocess.run(unshare, capture_output=True, text=True, timeout=300, cwd=Path(ROOT))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Seed: 7," in done.stdout


def test_gradio_auth_protects_the_ui(server):
    url = server("--gradio-auth", "alice:secret")
    with pytest.raises(ValueError, match="credentials were not provided"):
        Client(url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(url, auth=("alice", "wrong"), verbose=False)
    client = Client(url, auth=("alice", "secret"), verbose=False)
    assert "/txt2img" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
