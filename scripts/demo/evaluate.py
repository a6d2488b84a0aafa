"""Measure how well the demo checkpoint follows prompts, through the app's own generation pipeline.

    python -m scripts.demo.evaluate [--checkpoint PATH] [--count 20] [--steps 20]

Prints held-out colour / shape / background accuracy at several CFG scales, and the colour statistics
that the prompt-syntax features (emphasis, prompt editing, alternation), the TI embedding and the LoRA
move. The numbers in docs/DEMO_MODEL.md come from this script.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from modules import cmd_args, demo_data  # noqa: E402
from modules.models.bundle import ModelBundle  # noqa: E402
from modules.models.loader import load_checkpoint  # noqa: E402
from modules.processing.job import GenerationJob  # noqa: E402
from modules.runtime import Runtime  # noqa: E402
from scripts.demo import networks  # noqa: E402

CHECKPOINT = Path(__file__).resolve().parents[2] / "assets" / "models" / "demo-shapes-sd1.safetensors"
LORA = CHECKPOINT.parents[1] / "lora" / "demo-pastel.safetensors"


def demo_runtime(loader: Callable[[], ModelBundle], data_dir: Path, *extra: str) -> Runtime:
    """A runtime in a scratch data dir whose model is the given bundle."""
    runtime = Runtime(cmd_args.parse(["--data-dir", str(data_dir), "--device", "cpu", *extra]))
    runtime.model_loader = loader
    return runtime


def held_out_scenes(count: int, seed: int = 0) -> list[demo_data.Scene]:
    rng = np.random.default_rng(seed)
    return [demo_data.random_scene(rng, held_out=True) for _ in range(count)]


def generate(
    runtime: Runtime, prompt: str, seed: int, cfg: float = 5.0, steps: int = 20, **fields
) -> np.ndarray:
    job = GenerationJob(
        prompt=prompt,
        width=64,
        height=64,
        steps=steps,
        cfg_scale=cfg,
        sampler_name="DPM++ 2M",
        seed=seed,
        do_not_save_samples=True,
        do_not_save_grid=True,
        **fields,
    )
    return np.asarray(runtime.txt2img(job).images[0].convert("RGB"))


def accuracy(
    runtime: Runtime, scenes: list[demo_data.Scene], cfg: float, steps: int = 20
) -> dict[str, float]:
    hits = {"colour": 0, "shape": 0, "background": 0, "all": 0}
    for seed, scene in enumerate(scenes):
        verdict = demo_data.judge(generate(runtime, scene.caption(), seed, cfg, steps))
        hits["colour"] += verdict.colour == scene.colour
        hits["shape"] += verdict.shape == scene.shape
        hits["background"] += verdict.background == scene.background
        hits["all"] += verdict.matches(scene)
    return {k: v / len(scenes) for k, v in hits.items()}


def mean_foreground(runtime: Runtime, prompt: str, seeds: range, steps: int = 20) -> np.ndarray:
    """Mean RGB of the judged shape pixels over a few seeds."""
    return np.mean(
        [demo_data.judge(generate(runtime, prompt, s, steps=steps)).fg_mean for s in seeds], axis=0
    )


# Colours the demoteal embedding is compared with.
TARGETS = {"teal": demo_data.TEAL, "green": demo_data.COLOURS["green"], "blue": demo_data.COLOURS["blue"]}


def syntax_effects(runtime: Runtime, seeds: range, steps: int) -> None:
    """Mean shape colour for emphasis, prompt editing and alternation, against the plain colours."""
    base = "a {} square on a white background"
    for word in [
        "red",
        "blue",
        "(red:1.5)",
        "(red:1.2)",
        "(red:0.8)",
        "(red:0.5)",
        "[red:blue:0.5]",
        "[red|blue]",
        "demoteal",
        "green",
    ]:
        rgb = mean_foreground(runtime, base.format(word), seeds, steps).round(1)
        print(f"{base.format(word)!r}: mean shape RGB {rgb}", flush=True)
        if word == "demoteal":
            far = {name: round(float(np.linalg.norm(rgb - np.asarray(c))), 1) for name, c in TARGETS.items()}
            print(f"  distance to {far}", flush=True)


def lora_effect(path: Path, lora: Path, seeds: range, steps: int, data_dir: Path) -> None:
    """Mean image brightness and shape colour without and with the pastel LoRA merged at 1.0."""
    bundle = load_checkpoint(path)
    runtime = demo_runtime(lambda: bundle, data_dir)
    prompt = "a red square on a blue background"
    for label, multiplier in (("without LoRA", 0.0), ("with LoRA", 1.0)):
        networks.merge_kohya_lora(bundle.unet, bundle.text_encoders[0], load_file(str(lora)), multiplier)
        pictures = [generate(runtime, prompt, s, steps=steps) for s in seeds]
        shape = np.mean([demo_data.judge(p).fg_mean for p in pictures], axis=0)
        brightness = np.mean([p.mean() for p in pictures])
        print(f"{label}: brightness {brightness:.1f}, shape RGB {shape.round(1)}", flush=True)


def img2img_layout(runtime: Runtime, steps: int, matching: bool) -> None:
    """How often img2img at strength 0.3 keeps a rendered input's colours, shape and position, with the
    input's own caption as the prompt or with a contradicting one."""
    rng = np.random.default_rng(5)
    kept = 0
    for seed in range(10):
        scene = demo_data.random_scene(rng)
        job = GenerationJob(
            prompt=scene.caption() if matching else "a green circle on a yellow background, bottom right",
            width=64,
            height=64,
            steps=steps,
            cfg_scale=5.0,
            seed=seed,
            denoising_strength=0.3,
            init_images=[demo_data.render_image(scene)],
            do_not_save_samples=True,
            do_not_save_grid=True,
        )
        verdict = demo_data.judge(np.asarray(runtime.img2img(job).images[0].convert("RGB")))
        kept += verdict.matches(scene) and verdict.position == scene.position
    label = "its own caption" if matching else "a contradicting prompt"
    print(f"img2img 0.3 with {label} kept the layout in {kept}/10", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfgs", default="1,3,5,7")
    parser.add_argument("--lora", type=Path, default=LORA)
    parser.add_argument(
        "--embeddings-dir", type=Path, help="folder holding demoteal (default: the bundled one)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle = load_checkpoint(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--embeddings-dir", str(args.embeddings_dir)] if args.embeddings_dir else []
        runtime = demo_runtime(lambda: bundle, Path(tmp), *extra)
        scenes = held_out_scenes(args.count)
        for cfg in [float(c) for c in args.cfgs.split(",")]:
            print(f"CFG {cfg}: held-out accuracy {accuracy(runtime, scenes, cfg, args.steps)}", flush=True)
        syntax_effects(runtime, range(6), args.steps)
        img2img_layout(runtime, args.steps, matching=True)
        img2img_layout(runtime, args.steps, matching=False)
        lora_effect(args.checkpoint, args.lora, range(6), args.steps, Path(tmp))


if __name__ == "__main__":
    main()
