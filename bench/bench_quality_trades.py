"""What the speed options that change images cost on the bundled model: token merging and bf16.

    nice .venv/bin/python bench/bench_quality_trades.py [--count 40] [--ratios 0.3,0.5,0.7]

Generates held-out captions (the demo model's evaluation set, 64 px, DPM++ 2M, CFG 5, 20 steps) plainly
(float32, no merging), at each "Token merging ratio", and with the weights in bfloat16 (``--precision
bf16``), judges every picture with the pixel judge (colour, shape, background), and prints each arm's
accuracy and its mean and largest pixel difference from the plain picture of the same seed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modules import demo_data  # noqa: E402
from modules.models.loader import load_checkpoint  # noqa: E402
from scripts.demo.evaluate import CHECKPOINT, demo_runtime, generate, held_out_scenes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--ratios", default="0.3,0.5,0.7")
    args = parser.parse_args()
    fp32, bf16 = load_checkpoint(CHECKPOINT), load_checkpoint(CHECKPOINT, dtype=torch.bfloat16)
    runtimes = {
        "fp32": demo_runtime(lambda: fp32, Path(tempfile.mkdtemp())),
        "bf16": demo_runtime(lambda: bf16, Path(tempfile.mkdtemp()), "--precision", "bf16"),
    }
    arms = {"plain": ("fp32", 0.0)}
    arms |= {f"token merging {r}": ("fp32", float(r)) for r in args.ratios.split(",")}
    arms["bf16 weights"] = ("bf16", 0.0)
    scenes = held_out_scenes(args.count)
    pictures = {
        arm: [
            generate(runtimes[rt], scene.caption(), seed, override_settings={"token_merging_ratio": ratio})
            for seed, scene in enumerate(scenes)
        ]
        for arm, (rt, ratio) in arms.items()
    }
    print(f"{args.count} held-out captions, 64 px (8x8 latents: 64 tokens at the full resolution)")
    for arm, images in pictures.items():
        right = sum(demo_data.judge(p).matches(s) for p, s in zip(images, scenes, strict=True))
        change = [
            np.abs(p.astype(int) - q.astype(int)) for p, q in zip(images, pictures["plain"], strict=True)
        ]
        print(
            f"{arm}: all right {right}/{len(scenes)}; pixel change from plain: mean "
            f"{np.mean([c.mean() for c in change]):.2f} levels, largest {max(int(c.max()) for c in change)}"
        )


if __name__ == "__main__":
    main()
