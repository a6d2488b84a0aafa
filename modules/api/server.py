"""Serving the API: beside the Gradio UI on its FastAPI app (``--api``), or alone with uvicorn
(``--nowebui``, port 7861 by default), with optional HTTP Basic authentication (``--api-auth``).
"""

from __future__ import annotations

import argparse
import hmac
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from modules import heap
from modules.api.routes import SdApi

if TYPE_CHECKING:
    from modules.runtime import Runtime

TITLE = "Stable Diffusion web UI API"


def attach(
    app: FastAPI,
    runtime: Runtime,
    auth: list[tuple[str, str]] | None = None,
    limiter: LoginLimiter | None = None,
) -> None:
    """Add every /sdapi/v1 route to ``app`` (every route behind ``auth`` when given, failed logins limited
    by ``limiter``, 5 a minute per client by default) and /docs."""
    dependencies = [Depends(basic_auth(auth, limiter))] if auth else []
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


class LoginLimiter:
    """Failed logins per client: after ``failures`` within ``window`` seconds, that client is refused for
    the rest of the window (a correct password included), so passwords cannot be guessed at speed."""

    def __init__(self, failures: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.failures, self.window, self.clock = failures, window, clock
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait(self, who: str) -> float:
        """Seconds ``who`` must wait before trying again (0: may try now)."""
        with self._lock:
            now = self.clock()
            recent = [t for t in self._seen.get(who, []) if now - t < self.window]
            self._seen[who] = recent
            return self.window - (now - recent[0]) if len(recent) >= self.failures else 0.0

    def failed(self, who: str) -> None:
        with self._lock:
            self._seen.setdefault(who, []).append(self.clock())

    def succeeded(self, who: str) -> None:
        with self._lock:
            self._seen.pop(who, None)


def credentials_match(credentials: list[tuple[str, str]], user: str, password: str) -> bool:
    """Whether (user, password) is one of the pairs; every pair is compared in full, so timing reveals
    neither names nor how much of a password matched."""
    accepted = False
    for known_user, known_password in credentials:
        user_ok = hmac.compare_digest(user.encode(), known_user.encode())
        password_ok = hmac.compare_digest(password.encode(), known_password.encode())
        accepted |= user_ok and password_ok
    return accepted


def basic_auth(
    credentials: list[tuple[str, str]], limiter: LoginLimiter | None = None
) -> Callable[..., None]:
    """A dependency accepting only the given (user, password) pairs; 401 with a Basic challenge otherwise,
    429 with Retry-After for a client that failed too often lately."""
    limiter = limiter or LoginLimiter()

    def check(request: Request, given: HTTPBasicCredentials = Depends(HTTPBasic())) -> None:
        who = request.client.host if request.client else ""
        wait = limiter.wait(who)
        if wait > 0:
            raise HTTPException(
                status_code=429,
                detail="Too many failed logins; try again later",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        if not credentials_match(credentials, given.username, given.password):
            limiter.failed(who)
            raise HTTPException(
                status_code=401,
                detail="Incorrect username or password",
                headers={"WWW-Authenticate": "Basic"},
            )
        limiter.succeeded(who)

    return check


def ui_login(
    credentials: list[tuple[str, str]], limiter: LoginLimiter | None = None
) -> Callable[[str, str], bool]:
    """Gradio's login check for these pairs, limited per user name (Gradio tells it no client address)."""
    limiter = limiter or LoginLimiter()

    def login(user: str, password: str) -> bool:
        if limiter.wait(user) > 0:
            return False
        if credentials_match(credentials, user, password):
            limiter.succeeded(user)
            return True
        limiter.failed(user)
        return False

    return login


def restrict_cross_origin(app: FastAPI, origins: str | None = None, origin_regex: str | None = None) -> None:
    """Let pages of other origins read the server's answers only when they are named (``origins``,
    comma-separated) or match ``origin_regex`` in full; by default no origin is.

    Gradio's own CORS middleware answers any origin once the server is reached by a name other than
    localhost, so any page a user opens could drive the UI and the API with the user's session; it is
    replaced here, as A1111 replaces it (the same flags, allowing credentials for the origins named).
    """
    allowed = [origin.strip() for origin in (origins or "").split(",") if origin.strip()]
    if origin_regex:
        try:
            re.compile(origin_regex)
        except re.error as error:
            raise SystemExit(
                f"--cors-allow-origins-regex {origin_regex!r} is not a regular expression: {error}"
            ) from None
    policy = Middleware(
        CORSMiddleware,
        allow_origins=allowed,
        allow_origin_regex=origin_regex or None,
        allow_methods=["*"],
        allow_headers=["*"],
        allow_credentials=True,
    )
    # Gradio adds its CustomCORSMiddleware; any CORS middleware found is replaced by this one.
    kept = [m for m in app.user_middleware if not getattr(m.cls, "__name__", "").endswith("CORSMiddleware")]
    app.user_middleware = [policy, *kept]
    if app.middleware_stack is not None:  # already serving (Gradio's launch): rebuild the stack in place
        app.middleware_stack = app.build_middleware_stack()


def create_app(
    runtime: Runtime, auth: list[tuple[str, str]] | None = None, limiter: LoginLimiter | None = None
) -> FastAPI:
    """A FastAPI app serving only the API (what ``--nowebui`` runs, and what tests drive)."""
    app = FastAPI(title=TITLE)
    attach(app, runtime, auth, limiter)
    return app


def serve_api_only(
    runtime: Runtime, args: argparse.Namespace, auth: list[tuple[str, str]] | None = None
) -> None:
    """Serve the API alone until stopped (``--nowebui``)."""
    import uvicorn

    app = create_app(runtime, auth)
    restrict_cross_origin(app, args.cors_allow_origins, args.cors_allow_origins_regex)
    # A1111 tells extensions about the API-only app too (with no Gradio Blocks), so they can add routes.
    runtime.extensions.call("app_started", None, app)
    heap.settle()  # what start-up built lives as long as the process: out of later collections
    print(f"API listening on http://{args.server_name}:{args.port}/sdapi/v1 (docs at /docs)", flush=True)
    uvicorn.run(app, host=args.server_name, port=args.port, log_level="warning")
