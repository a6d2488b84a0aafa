"""Serving: HTTP Basic auth on every API route, the docs page, and attaching to an existing app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from modules.api.routes import SdApi
from modules.api.server import attach, create_app

API = "/sdapi/v1"


def api_paths() -> list[tuple[str, str]]:
    router = SdApi(runtime=None).router()
    return [(next(iter(route.methods)), route.path) for route in router.routes]


def test_every_route_requires_the_credentials(runtime):
    from modules.api.server import LoginLimiter

    unlimited = LoginLimiter(failures=10**9)  # 66 failures on purpose here; the limit has its own test
    client = TestClient(create_app(runtime, [("alice", "s3cret"), ("bob", "pw:with:colons")], unlimited))
    for method, path in api_paths():
        response = client.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Basic"
        assert client.request(method, path, auth=("alice", "wrong")).status_code == 401, path
        assert client.request(method, path, auth=("mallory", "s3cret")).status_code == 401, path
    assert client.get(f"{API}/samplers", auth=("alice", "s3cret")).status_code == 200
    assert client.get(f"{API}/samplers", auth=("bob", "pw:with:colons")).status_code == 200
    assert client.get("/docs").status_code == 200  # the docs page itself is public, as in A1111


def test_without_auth_routes_are_open(client):
    assert client.get(f"{API}/samplers").status_code == 200


def test_all_a1111_paths_are_served():
    paths = {path for _, path in api_paths()}
    for name in (
        "txt2img img2img extra-single-image extra-batch-images png-info progress interrupt skip options "
        "cmd-flags samplers schedulers upscalers latent-upscale-modes sd-models sd-vae loras embeddings "
        "prompt-styles scripts script-info extensions memory refresh-checkpoints refresh-vae refresh-loras "
        "refresh-embeddings unload-checkpoint reload-checkpoint"
    ).split():
        assert f"{API}/{name}" in paths, name


def test_attach_adds_routes_and_docs_to_an_app_without_docs(runtime):
    app = FastAPI(docs_url=None)  # as Gradio creates its app
    app.openapi()  # a schema built before the API existed must not hide it
    attach(app, runtime)
    client = TestClient(app)
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert f"{API}/txt2img" in schema["paths"]
    assert "StableDiffusionProcessingTxt2Img" in schema["components"]["schemas"]


def test_api_alone_tells_extensions_about_its_app(runtime, monkeypatch):
    import uvicorn

    from modules.api import server

    started, served = [], []
    runtime.extensions.add_callback("app_started", lambda demo, app: started.append((demo, app)))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append((app, kw)))
    server.serve_api_only(runtime, runtime.args)
    assert started == [(None, served[0][0])]
    assert served[0][1]["port"] == runtime.args.port
