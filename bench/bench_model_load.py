"""Peak memory and time of load_checkpoint on a (random-weight) SD 1.5-sized checkpoint.

    .venv/bin/python scripts/make_sd15_sized_checkpoint.py /tmp/sd15.safetensors
    .venv/bin/python bench/bench_model_load.py /tmp/sd15.safetensors [--dtype fp32|fp16]

Each measurement runs in a fresh process, so peak RSS (ru_maxrss) belongs to that load alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(2)
from modules.models.loader import load_checkpoint
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
bundle = load_checkpoint({path!r}, dtype=getattr(torch, {dtype!r}))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
modules = [bundle.unet, bundle.vae, *bundle.text_encoders]
weights = sum(p.numel() * p.element_size() for m in modules for p in m.parameters())
print(json.dumps({{"seconds": seconds, "peak_rss_mib": peak / 1024, "rss_before_mib": baseline / 1024,
                  "weights_mib": weights / 2**20, "arch": str(bundle.arch)}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    args = parser.parse_args()
    code = CHILD.format(root=str(ROOT), path=str(args.checkpoint), dtype=args.dtype)
    result = json.loads(
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    )
    size = args.checkpoint.stat().st_size / 2**20
    growth = result["peak_rss_mib"] - result["rss_before_mib"]
    print(f"file {size:.0f} MiB -> {result['arch']} weights {result['weights_mib']:.0f} MiB ({args.dtype})")
    print(
        f"load {result['seconds']:.1f} s; peak RSS {result['peak_rss_mib']:.0f} MiB "
        f"(imports {result['rss_before_mib']:.0f} MiB + {growth:.0f} MiB while loading, "
        f"{growth / result['weights_mib']:.2f}x the weights)"
    )


if __name__ == "__main__":
    main()
