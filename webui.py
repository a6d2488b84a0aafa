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


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def warn_if_exposed(args, auth: list[tuple[str, str]] | None) -> None:
    """A clear warning when other machines can reach a server that asks for no credentials."""
    exposed = args.share or (
        args.server_name not in LOOPBACK and not str(args.server_name).startswith("127.")
    )
    if exposed and auth is None:
        where = "a public share link" if args.share else f"{args.server_name}:{args.port}"
        print(
            f"WARNING: listening on {where} with no authentication: anyone who can reach it can generate "
            "images and read the outputs. Set --gradio-auth / --api-auth user:password (docs/SECURITY.md).",
            flush=True,
        )
    elif exposed and args.api and not args.nowebui and not args.api_auth:
        print(
            f"WARNING: the /sdapi/v1 API on {args.server_name}:{args.port} asks for no credentials (only the UI "
            "does): anyone who can reach it can generate images and change settings. Set --api-auth user:password.",
            flush=True,
        )


def load_model(runtime, args) -> None:  # noqa: ANN001
    """Start loading the model as the queue's first task. Called once the page answers: building the
    networks needs diffusers and transformers, whose imports would otherwise compete with the page's
    for the interpreter (the first job waits behind the load either way)."""
    if runtime.workers is not None:
        return  # the workers load their own models
    from modules import devices

    dtype = str(runtime.dtype).removeprefix("torch.")
    print(f"Loading model on {runtime.device} ({dtype})...", flush=True)
    hint = devices.precision_hint(args.precision, runtime.device, args.no_half)
    if hint:
        print(hint, flush=True)
    runtime.load_in_background()


def main(argv: list[str] | None = None) -> None:
    early, _ = cmd_args.build_parser().parse_known_args(argv)
    # Before any hub library is imported: they read their offline switches at import time.
    offline.enable(block_network=not (early.allow_network or early.share))

    from modules import heap
    from modules.extensions import startup
    from modules.runtime import Runtime
    from modules.ui import app

    args, extensions, extension_list = startup.prepare(argv)
    runtime = Runtime(args, extensions)
    extensions.call("ui_settings", runtime.options)
    if runtime.workers is None:
        runtime.ensure_a_checkpoint()  # before the UI lists the checkpoints
    else:  # the workers load their own models; this process only serves the UI and the API
        print(f"Generations run on {len(runtime.workers.actors())} Ray worker(s).", flush=True)
    if args.nowebui:
        from modules.api.server import serve_api_only

        load_model(runtime, args)
        warn_if_exposed(args, parse_auth(args.api_auth))
        serve_api_only(runtime, args, parse_auth(args.api_auth))
        return
    ui_auth = parse_auth(args.gradio_auth)
    if ui_auth is None and args.api and args.api_auth:
        # Gradio's own routes (its queue and programmatic API) can generate images too: without this the
        # API's credentials would guard only half of what the server offers.
        ui_auth = parse_auth(args.api_auth)
        print("The UI and Gradio's routes take the --api-auth credentials (no --gradio-auth given).")
    warn_if_exposed(args, ui_auth)
    from modules.api.server import restrict_cross_origin, ui_login

    demo = app.build(runtime)
    demo.queue(default_concurrency_limit=1)
    heap.settle()  # what start-up built lives as long as the process: out of later collections
    server_app, _, _ = demo.launch(
        server_name=args.server_name,
        server_port=args.port,
        share=args.share,
        auth=ui_login(ui_auth) if ui_auth else None,
        auth_message=app.login_message(),
        theme=app.theme(runtime.options.get("ui_theme")),
        css=app.css(extension_list),
        head=app.head_html(runtime.options.get("ui_theme"), extension_list),
        inbrowser=False,
        ssr_mode=False,
        quiet=False,
        prevent_thread_lock=True,  # returns the running app, so the API can be attached to it
    )
    restrict_cross_origin(server_app, args.cors_allow_origins, args.cors_allow_origins_regex)
    app.add_theme_redirect(server_app, runtime.options.get("ui_theme"))
    if args.api:
        from modules.api.server import attach

        attach(server_app, runtime, parse_auth(args.api_auth))
    # After the API is attached, as in A1111: extensions may add routes to the running FastAPI app.
    extensions.call("app_started", demo, server_app)
    load_model(runtime, args)
    demo.block_thread()


if __name__ == "__main__":
    main(sys.argv[1:])
