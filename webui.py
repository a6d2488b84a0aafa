"""Entry point: parse flags, go offline, build the runtime, the UI and the API, and serve them."""

from __future__ import annotations

import sys

from modules import cmd_args, offline


def parse_auth(text: str | None) -> list[tuple[str, str]] | None:
    """ "user:pass,user2:pass2" -> [(user, pass), ...]."""
    if not text:
        return None
    pairs = []
    for item in text.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user:
            raise SystemExit(f"auth entry {item!r} is not user:password")
        pairs.append((user, password))
    return pairs


def main(argv: list[str] | None = None) -> None:
    early, _ = cmd_args.build_parser().parse_known_args(argv)
    # Before any hub library is imported: they read their offline switches at import time.
    offline.enable(block_network=not (early.allow_network or early.share))

    from modules.extensions import startup
    from modules.runtime import Runtime
    from modules.ui import app

    args, extensions, extension_list = startup.prepare(argv)
    runtime = Runtime(args, extensions)
    extensions.call("ui_settings", runtime.options)
    print(f"Loading model on {runtime.device} ({str(runtime.dtype).removeprefix('torch.')})...", flush=True)
    runtime.model()
    if args.nowebui:
        from modules.api.server import serve_api_only

        serve_api_only(runtime, args, parse_auth(args.api_auth))
        return
    demo = app.build(runtime)
    demo.queue(default_concurrency_limit=1)
    server_app, _, _ = demo.launch(
        server_name=args.server_name,
        server_port=args.port,
        share=args.share,
        auth=parse_auth(args.gradio_auth),
        theme=app.theme(runtime.options.get("ui_theme")),
        css=app.css(extension_list),
        head=app.head_html(runtime.options.get("ui_theme"), extension_list),
        inbrowser=False,
        ssr_mode=False,
        quiet=False,
        prevent_thread_lock=True,  # returns the running app, so the API can be attached to it
    )
    if args.api:
        from modules.api.server import attach

        attach(server_app, runtime, parse_auth(args.api_auth))
    # After the API is attached, as in A1111: extensions may add routes to the running FastAPI app.
    extensions.call("app_started", demo, server_app)
    demo.block_thread()


if __name__ == "__main__":
    main(sys.argv[1:])
