"""Command-line flags, in the spelling users of other Stable Diffusion web UIs already type."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modules import paths


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="webui.py", description="Stable Diffusion web UI")
    net = p.add_argument_group("server")
    net.add_argument("--listen", action="store_true", help="listen on 0.0.0.0 so other machines can connect")
    net.add_argument("--server-name", default=None, help="host name or address to listen on")
    net.add_argument("--port", type=int, default=None, help="port (default 7860, or 7861 with --nowebui)")
    net.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    net.add_argument("--api", action="store_true", help="serve the /sdapi/v1 HTTP API beside the UI")
    net.add_argument("--nowebui", action="store_true", help="serve only the API, no UI")
    net.add_argument("--api-auth", default=None, help="user:pass[,user2:pass2] required by every API route")
    net.add_argument("--gradio-auth", default=None, help="user:pass[,user2:pass2] required by the UI")
    net.add_argument(
        "--cors-allow-origins",
        default=None,
        help="origins (comma-separated) whose pages may call the server; none by default",
    )
    net.add_argument(
        "--cors-allow-origins-regex",
        default=None,
        help="a regular expression an origin must match in full to call the server; none by default",
    )
    net.add_argument(
        "--allow-network",
        action="store_true",
        help="permit outside network connections (the app runs offline by default)",
    )
    net.add_argument(
        "--enable-insecure-extension-access",
        action="store_true",
        help="allow installing/toggling extensions even when listening beyond localhost",
    )
    folders = p.add_argument_group("folders")
    folders.add_argument(
        "--data-dir",
        type=Path,
        default=paths.ROOT,
        help="where settings, models and outputs live (default: the project folder)",
    )
    folders.add_argument("--ckpt-dir", type=Path, default=None, help="checkpoints folder")
    folders.add_argument("--ckpt", type=Path, default=None, help="checkpoint to load at start")
    folders.add_argument(
        "--no-bundled-models",
        action="store_true",
        help="do not list the demo model that ships with the project (assets/models)",
    )
    folders.add_argument("--vae-dir", type=Path, default=None, help="VAE folder")
    folders.add_argument("--lora-dir", type=Path, default=None, help="LoRA folder")
    folders.add_argument(
        "--embeddings-dir", type=Path, default=None, help="textual inversion embeddings folder"
    )
    compute = p.add_argument_group("compute")
    compute.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    compute.add_argument(
        "--precision",
        choices=["auto", "fp32", "fp16", "bf16"],
        default="auto",
        help="weights dtype (auto: fp16 on cuda/mps, fp32 on cpu)",
    )
    compute.add_argument(
        "--no-half", action="store_true", help="run every network in float32 (as --precision fp32)"
    )
    compute.add_argument("--no-half-vae", action="store_true", help="run the VAE in float32")
    compute.add_argument(
        "--upcast-sampling",
        action="store_true",
        help="keep the UNet's weights in half precision but compute in float32 (no effect with --no-half)",
    )
    compute.add_argument(
        "--xformers",
        action="store_true",
        help="use xformers' attention (if installed) instead of PyTorch's SDPA",
    )
    compute.add_argument("--medvram", action="store_true", help="keep only the running model part on the GPU")
    compute.add_argument(
        "--lowvram", action="store_true", help="move every submodule to the GPU only while used"
    )
    scale = p.add_argument_group("scaling out")
    scale.add_argument(
        "--workers",
        choices=["local", "ray"],
        default="local",
        help="where generations run: in this process, or on Ray worker processes (docs/SCALING.md)",
    )
    scale.add_argument(
        "--ray-address", default=None, help="a Ray cluster to join (default: start a local Ray instance)"
    )
    scale.add_argument(
        "--ray-workers", type=int, default=None, help="worker processes (default: one per GPU, else 1)"
    )
    ext = p.add_argument_group("extensions")
    ext.add_argument("--disable-all-extensions", action="store_true", help="load no extension at all")
    ext.add_argument("--disable-extra-extensions", action="store_true", help="load only built-in extensions")
    return p


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    return finish(build_parser().parse_args(argv), argv)


def finish(args: argparse.Namespace, argv: list[str] | None = None) -> argparse.Namespace:
    """Defaults that depend on other flags; ``argv`` is kept (workers are started with it)."""
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.port is None:
        args.port = 7861 if args.nowebui else 7860
    if args.server_name is None:
        args.server_name = "0.0.0.0" if args.listen else "127.0.0.1"
    return args
