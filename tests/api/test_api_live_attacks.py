"""The attacks of the hardening issue, against a live server started as users start it (``webui.py --api``
with ``--api-auth``): every one is refused with a 4xx, nothing lands outside the data dir, secrets stay
hidden, and the server still generates afterwards."""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Iterator

import pytest
import requests
from PIL import Image

from tests.api.helpers import start_live_server, stop

pytestmark = pytest.mark.slow
AUTH = ("user", "secret-pw")
SMALL = {"prompt": "a", "steps": 1, "width": 64, "height": 64}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[tuple[str, object]]:
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    proc = start_live_server(["--api", "--api-auth", ":".join(AUTH), "--no-bundled-models"], data, port)
    try:
        yield f"http://127.0.0.1:{port}", data
    finally:
        stop(proc)


def raw(base: str, path: str, body: bytes) -> requests.Response:
    headers = {"content-type": "application/json"}
    return requests.post(base + path, data=body, headers=headers, auth=AUTH, timeout=120)


def test_hostile_bodies_get_4xx_and_the_server_keeps_working(live):
    base, data = live
    buffer = io.BytesIO()
    Image.new("RGB", (12_000, 12_000)).save(buffer, format="PNG")
    bomb = base64.b64encode(buffer.getvalue()).decode()
    attacks = [
        ("/sdapi/v1/txt2img", b'{"prompt": "\xff\xfe"}', 400),
        ("/sdapi/v1/txt2img", b'{"prompt":"a","cfg_scale":NaN}', 422),
        ("/sdapi/v1/txt2img", b'{"prompt":"a","eta":1e400}', 422),
        ("/sdapi/v1/txt2img", b'{"prompt":"a\\ud800"}', 422),
        ("/sdapi/v1/txt2img", b'{"prompt":"a","seed_resize_from_w":1000000}', 422),
        ("/sdapi/v1/txt2img", b'{"prompt":"a","script_args":"abc"}', 422),
        ("/sdapi/v1/options", b'{"samples_filename_pattern":"/tmp/escaped-[seed]"}', 422),
        ("/sdapi/v1/options", b'{"samples_filename_pattern":"../../escaped-[seed]"}', 422),
        ("/sdapi/v1/options", b'{"s_noise":"nan"}', 422),
        ("/sdapi/v1/png-info", b'{"image":"' + bomb.encode() + b'"}', 413),
    ]
    for path, body, status in attacks:
        response = raw(base, path, body)
        assert response.status_code == status, (path, body[:80], response.text[:200])
    # the server is intact: it still generates, and nothing was written outside its data dir
    response = requests.post(base + "/sdapi/v1/txt2img", json=SMALL, auth=AUTH, timeout=300)
    assert response.status_code == 200 and len(response.json()["images"]) == 1
    assert not list(data.parent.glob("escaped-*"))


def test_credentials_guard_the_api_and_stay_secret(live):
    base, _ = live
    assert requests.get(base + "/sdapi/v1/cmd-flags", timeout=30).status_code == 401
    flags = requests.get(base + "/sdapi/v1/cmd-flags", auth=AUTH, timeout=30).json()
    assert flags["api_auth"] == "<redacted>"
    # with --api-auth and no --gradio-auth the UI takes the same credentials
    # (Gradio's programmatic API included: its info and config need a login)
    assert requests.get(base + "/config", timeout=30).status_code == 401
    assert requests.get(base + "/gradio_api/info", timeout=30).status_code == 401
    session = requests.Session()
    login = session.post(base + "/login", data={"username": AUTH[0], "password": AUTH[1]}, timeout=30)
    assert login.status_code == 200
    assert session.get(base + "/gradio_api/info", timeout=30).status_code == 200
