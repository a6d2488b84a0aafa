"""Peak memory (RSS) of loading a checkpoint through the app and generating with it, against its size.

    .venv/bin/python scripts/make_sd15_sized_checkpoint.py /tmp/sd15-fp16.safetensors --dtype fp16
    .venv/bin/python bench/bench_memory.py /tmp/sd15-fp16.safetensors [--size 256] [--steps 4]

Runs in a fresh process: imports the app, loads the checkpoint as webui.py does (``Runtime``, CPU,
float32 weights), then makes one txt2img image. Prints the peak RSS after the imports, after loading and
after generating, each against the file's size and the loaded weights' size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
from modules.extensions import startup
from modules.processing.job import GenerationJob
from modules.runtime import Runtime
import torch
data = Path(tempfile.mkdtemp())
(data / "ckpt").mkdir()
(data / "ckpt" / Path({path!r}).name).symlink_to({path!r})
args, ext, _ = startup.prepare(["--data-dir", str(data), "--ckpt-dir", str(data / "ckpt"), "--device", "cpu",
                                "--no-bundled-models", "--disable-extra-extensions"])
runtime = Runtime(args, ext)
imports = peak()
bundle = runtime.model()
loaded = peak()
weights = sum(p.numel() * p.element_size() for m in (bundle.unet, bundle.vae, *bundle.text_encoders)
              for p in m.parameters()) / 2**20
runtime.txt2img(GenerationJob(prompt="a cat", width={size}, height={size}, steps={steps}, seed=1,
                              sampler_name="Euler", do_not_save_samples=True))
print(json.dumps({{"imports": imports, "loaded": loaded, "generated": peak(), "weights": weights}}))
runtime.queue.close()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    code = CHILD.format(root=str(ROOT), path=str(args.checkpoint.resolve()), size=args.size, steps=args.steps)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    size = args.checkpoint.stat().st_size / 2**20
    print(f"file {size:.0f} MiB, loaded weights {r['weights']:.0f} MiB (float32)")
    for label in ("imports", "loaded", "generated"):
        grown = r[label] - r["imports"]
        print(
            f"peak RSS {label}: {r[label]:.0f} MiB (+{grown:.0f} MiB over the imports: "
            f"{grown / size:.2f}x the file, {grown / r['weights']:.2f}x the weights)"
        )


if __name__ == "__main__":
    main()
