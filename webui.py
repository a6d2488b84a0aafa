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
    args = cmd_args.parse(argv)
    # Before any hub library is imported: they read their offline switches at import time.
    offline.enable(block_network=not (args.allow_network or args.share))

    from modules.runtime import Runtime
    from modules.ui import app

    runtime = Runtime(args)
    print(f"Loading model on {runtime.device} ({str(runtime.dtype).removeprefix('torch.')})...", flush=True)
    runtime.model()
    demo = app.build(runtime)
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=args.server_name,
        server_port=args.port,
        share=args.share,
        auth=parse_auth(args.gradio_auth),
        theme=app.theme(runtime.options.get("ui_theme")),
        css=app.css(),
        head=app.head_html(),
        inbrowser=False,
        ssr_mode=False,
        quiet=False,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
