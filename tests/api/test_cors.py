"""Cross-origin access: none by default, only the origins named by --cors-allow-origins or matched by
--cors-allow-origins-regex; Gradio's own permissive CORS middleware is replaced, on a live server too."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modules.api.server import restrict_cross_origin
from tests.api.helpers import start_live_server, stop

EVIL = "http://evil.example"
FRIEND = "http://friend.example:3000"
REGEX = r"https://[a-z]+\.trusted\.example"


def gradio_like_app() -> FastAPI:
    """A FastAPI app carrying Gradio's CORS middleware, as Gradio's launch builds it."""
    from gradio.route_utils import CustomCORSMiddleware

    app = FastAPI()
    app.add_api_route("/x", lambda: {"ok": True}, methods=["GET", "POST"])
    app.add_middleware(CustomCORSMiddleware, strict_cors=True)
    return app


def allowed_origin(client: TestClient, origin: str, host: str = "10.0.0.7:7860") -> str | None:
    # A Host other than localhost is where Gradio's middleware lets every origin in.
    return client.get("/x", headers={"Origin": origin, "Host": host}).headers.get(
        "access-control-allow-origin"
    )


def test_gradio_alone_lets_any_origin_read_a_server_reached_by_address():
    # The hole this guards against: without the policy, any page may read the answers.
    with TestClient(gradio_like_app()) as client:
        assert allowed_origin(client, EVIL) == EVIL


def test_no_cross_origin_access_by_default():
    app = gradio_like_app()
    restrict_cross_origin(app)
    with TestClient(app) as client:
        for host in ("10.0.0.7:7860", "127.0.0.1:7860"):
            response = client.get("/x", headers={"Origin": EVIL, "Host": host})
            assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
        assert allowed_origin(client, "http://localhost:9999") is None
        preflight = client.options(
            "/x", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST", "Host": "10.0.0.7"}
        )
        assert "access-control-allow-origin" not in preflight.headers


def test_named_origins_and_the_regex_are_allowed_and_nothing_else():
    app = gradio_like_app()
    restrict_cross_origin(app, f"{FRIEND}, http://other.example", REGEX)
    with TestClient(app) as client:
        assert allowed_origin(client, FRIEND) == FRIEND
        assert allowed_origin(client, "http://other.example") == "http://other.example"
        assert allowed_origin(client, "https://app.trusted.example") == "https://app.trusted.example"
        # the regex must match the whole origin; a look-alike suffix or another scheme does not
        assert allowed_origin(client, "https://app.trusted.example.evil.example") is None
        assert allowed_origin(client, "http://app.trusted.example") is None
        assert allowed_origin(client, EVIL) is None
        preflight = client.options(
            "/x",
            headers={
                "Origin": FRIEND,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == FRIEND
        assert preflight.headers["access-control-allow-credentials"] == "true"


def test_the_policy_replaces_the_middleware_of_an_app_already_serving():
    app = gradio_like_app()
    with TestClient(app) as client:
        assert allowed_origin(client, EVIL) == EVIL  # the stack is built now, as after Gradio's launch
        restrict_cross_origin(app, FRIEND)
        assert allowed_origin(client, EVIL) is None
        assert allowed_origin(client, FRIEND) == FRIEND


def test_a_broken_regex_stops_the_start_with_a_message():
    with pytest.raises(SystemExit, match="cors-allow-origins-regex"):
        restrict_cross_origin(FastAPI(), None, "https://(unclosed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    flags = [
        "--api",
        "--no-bundled-models",
        "--cors-allow-origins",
        FRIEND,
        "--cors-allow-origins-regex",
        REGEX,
    ]
    proc = start_live_server(flags, data, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/config", "/gradio_api/info", "/sdapi/v1/samplers"])
def test_a_live_server_answers_only_the_allowed_origins(live, path):
    def allowed(origin: str) -> str | None:
        headers = {"Origin": origin, "Host": "10.0.0.7"}  # as if reached from the network
        response = requests.get(live + path, headers=headers, timeout=60)
        assert response.status_code == 200
        return response.headers.get("access-control-allow-origin")

    assert allowed(EVIL) is None
    assert allowed(FRIEND) == FRIEND
    assert allowed("https://ui.trusted.example") == "https://ui.trusted.example"
