"""Serving the API: beside the Gradio UI on its FastAPI app (``--api``), or alone with uvicorn
(``--nowebui``, port 7861 by default), with optional HTTP Basic authentication (``--api-auth``).
"""

from __future__ import annotations

import argparse
import hmac
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from modules.api.routes import SdApi

TITLE = "Stable Diffusion web UI API"


def attach(app: FastAPI, runtime: Any, auth: list[tuple[str, str]] | None = None) -> None:
    """Add every /sdapi/v1 route to ``app`` (every route behind ``auth`` when given) and /docs."""
    dependencies = [Depends(basic_auth(auth))] if auth else []
    app.include_router(SdApi(runtime).router(dependencies))
    app.openapi_schema = None  # the schema may have been built before these routes existed
    if app.docs_url is None:
        # Gradio turns FastAPI's docs page off; A1111 users expect the API's at /docs.
        _add_docs_page(app)


def _add_docs_page(app: FastAPI) -> None:
    openapi_url = app.openapi_url or "/openapi.json"

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{TITLE} - docs")

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)


def basic_auth(credentials: list[tuple[str, str]]) -> Callable[..., None]:
    """A dependency accepting only the given (user, password) pairs; 401 with a Basic challenge otherwise."""
    pairs = [(user.encode(), password.encode()) for user, password in credentials]

    def check(given: HTTPBasicCredentials = Depends(HTTPBasic())) -> None:
        user, password = given.username.encode(), given.password.encode()
        accepted = False
        for known_user, known_password in pairs:
            # Compare every pair in full, so timing reveals neither names nor how much of a password matched.
            user_ok = hmac.compare_digest(user, known_user)
            password_ok = hmac.compare_digest(password, known_password)
            accepted |= user_ok and password_ok
        if not accepted:
            raise HTTPException(
                status_code=401,
                detail="Incorrect username or password",
                headers={"WWW-Authenticate": "Basic"},
            )

    return check


def create_app(runtime: Any, auth: list[tuple[str, str]] | None = None) -> FastAPI:
    """A FastAPI app serving only the API (what ``--nowebui`` runs, and what tests drive)."""
    app = FastAPI(title=TITLE)
    attach(app, runtime, auth)
    return app


def serve_api_only(runtime: Any, args: argparse.Namespace, auth: list[tuple[str, str]] | None = None) -> None:
    """Serve the API alone until stopped (``--nowebui``)."""
    import uvicorn

    app = create_app(runtime, auth)
    # A1111 tells extensions about the API-only app too (with no Gradio Blocks), so they can add routes.
    runtime.extensions.call("app_started", None, app)
    print(f"API listening on http://{args.server_name}:{args.port}/sdapi/v1 (docs at /docs)", flush=True)
    uvicorn.run(app, host=args.server_name, port=args.port, log_level="warning")
