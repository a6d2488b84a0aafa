"""Cold start: seconds from launching webui.py to the page answering, and to the first image.

    nice .venv/bin/python bench/bench_startup.py [--reps 5] [--roots /path/to/checkout ...]

Each run starts ``webui.py --api`` in a fresh data folder with the bundled model, polls ``/`` until it
answers 200 (``--webui-args`` adds arguments, e.g. ``--ckpt`` with a big checkpoint), then posts one txt2img (the README's prompt, 64 px, 20 steps) and waits for the image. With
several ``--roots`` (checkouts of two revisions, say), their runs are interleaved and each root's times
are also given as ratios to the first root's within a repetition (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_queue_load import free_port, launch, wait_until_answered  # noqa: E402

PAYLOAD = {"prompt": "a large red circle on a blue background", "width": 64, "height": 64, "steps": 20,
           "cfg_scale": 4, "seed": 1, "sampler_name": "Euler a"}  # fmt: skip


def one_start(root: Path, extra: list[str]) -> dict[str, float]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        start = time.perf_counter()
        process = launch(root, Path(data_dir), port, *extra)
        try:
            wait_until_answered(f"http://127.0.0.1:{port}/", process, timeout=600, poll=0.05)
            page = time.perf_counter() - start
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/sdapi/v1/txt2img",
                data=json.dumps(PAYLOAD).encode(),
                headers={"Content-Type": "application/json"},
            )
            while True:  # the API is attached a moment after the page first answers
                try:
                    with urllib.request.urlopen(request, timeout=600) as response:
                        assert json.load(response)["images"]
                    break
                except urllib.error.HTTPError as error:
                    if error.code != 404 or time.perf_counter() - start > 600:
                        raise
                    time.sleep(0.05)
            image = time.perf_counter() - start
        finally:
            process.terminate()
            process.wait(30)
    return {"page": page, "first_image": image}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--roots", type=Path, nargs="+", default=[ROOT])
    parser.add_argument("--webui-args", default="", help="more arguments for webui.py, e.g. '--ckpt X'")
    args = parser.parse_args()
    extra = args.webui_args.split()
    runs: dict[Path, list[dict[str, float]]] = {root: [] for root in args.roots}
    for rep in range(args.reps):
        order = args.roots[rep % len(args.roots) :] + args.roots[: rep % len(args.roots)]
        for root in order:
            runs[root].append(one_start(root, extra))
        print(f"rep {rep + 1}/{args.reps}: " + "; ".join(
            f"{root}: page {runs[root][-1]['page']:.1f} s, first image {runs[root][-1]['first_image']:.1f} s"
            for root in args.roots), flush=True)  # fmt: skip
    first = args.roots[0]
    for root in args.roots:
        for key in ("page", "first_image"):
            values = [r[key] for r in runs[root]]
            line = f"{root} {key}: median {statistics.median(values):.2f} s, range {min(values):.2f}-{max(values):.2f}"
            if root != first:
                ratio = [r[key] / f[key] for r, f in zip(runs[root], runs[first], strict=True)]
                line += f"; over {first.name}: median {statistics.median(ratio):.3f} ({min(ratio):.3f}-{max(ratio):.3f})"
            print(line)


if __name__ == "__main__":
    main()
