"""Measure the bundled interrogator on pictures the demo model generates, through the app's own code.

    python -m scripts.demo.evaluate_clip [--count 60] [--clip FOLDER] [--pictures FOLDER] [--verbose]

Each picture is made by the app's Runtime from the bundled checkpoint (a caption over all colours, shapes
and backgrounds, the diffusion model's held-out pairs included) and interrogated by the app's Interrogator
("fast" mode, the bundled CLIP unless --clip names another folder). The colour, shape and background in
the interrogator's text are compared with what modules/demo_data.py's ``judge`` reads from the same
picture by pixel statistics (the reference: it is not the interrogator's training data), and with the
prompt asked (which the demo model does not always draw). The numbers in docs/INTERROGATE.md come from
this script.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from modules import cmd_args, demo_data  # noqa: E402
from modules.runtime import Runtime  # noqa: E402
from scripts.demo import evaluate as demo_evaluate  # noqa: E402
from scripts.train_demo_clip import read_background, read_shape  # noqa: E402

FIELDS = ("colour", "shape", "background")


def evaluation_scenes(count: int, seed: int = 0) -> list[demo_data.Scene]:
    """``count`` captions cycling through every colour+shape pair, each on another colour's background."""
    rng = np.random.default_rng(seed)
    pairs = [(c, s) for c in demo_data.COLOURS for s in demo_data.SHAPES]
    order = [pairs[i] for i in rng.permutation(len(pairs))]
    scenes = []
    for index in range(count):
        colour, shape = order[index % len(order)]
        backgrounds = [c for c in demo_data.COLOURS if c != colour]
        scenes.append(
            demo_data.Scene(
                colour=colour,
                shape=shape,
                background=backgrounds[(index * 5 + index // len(order)) % len(backgrounds)],
                position=list(demo_data.POSITIONS)[rng.integers(len(demo_data.POSITIONS))],
                size=list(demo_data.SIZES)[rng.integers(len(demo_data.SIZES))],
            )
        )
    return scenes


def read_text(text: str) -> tuple[str, str, str]:
    """(colour, shape, background) named by an interrogation such as "a red circle, on a blue background"."""
    shape = read_shape(text) or ("none", "none")
    return (*shape, read_background(text) or "none")


@dataclass(frozen=True)
class Outcome:
    scene: demo_data.Scene  # the prompt asked
    judged: tuple[str, str, str]  # what the pixel judge reads in the picture
    read: tuple[str, str, str]  # what the interrogator says
    text: str


def generate(runtime: Runtime, scene: demo_data.Scene, seed: int, cfg: float, steps: int) -> Image.Image:
    return Image.fromarray(demo_evaluate.generate(runtime, scene.caption(), seed, cfg, steps))


def pictures(
    runtime: Runtime,
    scenes: list[demo_data.Scene],
    cfg: float = 5.0,
    steps: int = 20,
    first_seed: int = 0,
    folder: Path | None = None,
) -> list[Image.Image]:
    """The demo model's picture of each scene (seed ``first_seed`` + index); with ``folder``, pictures
    already saved there are reused, so several interrogators are measured on one generation run."""
    made = []
    for seed, scene in enumerate(scenes, start=first_seed):
        path = folder / f"{seed}-{scene.caption()}-cfg{cfg:g}-{steps}.png" if folder is not None else None
        if path is not None and path.is_file():
            made.append(Image.open(path).convert("RGB"))
            continue
        picture = generate(runtime, scene, seed, cfg, steps)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            picture.save(path)
        made.append(picture)
    return made


def evaluate(runtime: Runtime, scenes: list[demo_data.Scene], made: list[Image.Image]) -> list[Outcome]:
    """Each picture judged by pixel statistics and interrogated by the app."""
    outcomes = []
    for scene, picture in zip(scenes, made, strict=True):
        verdict = demo_data.judge(picture)
        text = runtime.interrogate(picture, "fast")
        judged = (verdict.colour, verdict.shape, verdict.background)
        outcomes.append(Outcome(scene, judged, read_text(text), text))
    return outcomes


def agreement(outcomes: list[Outcome], reference: str) -> dict[str, float]:
    """Share of pictures whose interrogation matches ``reference`` ("judge" or "prompt") per field, and
    in all three at once."""
    hits = dict.fromkeys((*FIELDS, "all"), 0)
    for outcome in outcomes:
        scene = outcome.scene
        truth = outcome.judged if reference == "judge" else (scene.colour, scene.shape, scene.background)
        same = [a == b for a, b in zip(outcome.read, truth, strict=True)]
        for name, hit in zip(FIELDS, same, strict=True):
            hits[name] += hit
        hits["all"] += all(same)
    return {name: count / len(outcomes) for name, count in hits.items()}


def demo_runtime(data_dir: Path, clip: Path | None) -> Runtime:
    """The app's runtime on an empty data dir: the bundled checkpoint and (unless ``clip``) the bundled CLIP."""
    runtime = Runtime(cmd_args.parse(["--data-dir", str(data_dir), "--device", "cpu"]))
    if clip is not None:
        runtime.options.set("interrogate_clip_model", str(clip.resolve()))
    runtime.options.set("interrogate_keep_models_in_memory", True)  # one load for the whole run
    return runtime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--clip", type=Path, help="a CLIP folder to measure instead of the bundled one")
    parser.add_argument("--scene-seed", type=int, default=0, help="draws the captions' backgrounds etc.")
    parser.add_argument("--first-seed", type=int, default=0, help="the first picture's seed")
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--pictures", type=Path, help="keep (and reuse) the generated pictures here")
    parser.add_argument("--verbose", action="store_true", help="print every picture's outcome")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        runtime = demo_runtime(Path(tmp), args.clip)
        scenes = evaluation_scenes(args.count, args.scene_seed)
        made = pictures(runtime, scenes, args.cfg, args.steps, args.first_seed, args.pictures)
        outcomes = evaluate(runtime, scenes, made)
    for outcome in outcomes:
        if args.verbose or outcome.read != outcome.judged:
            print(f"{outcome.scene.caption()!r}: judge {outcome.judged}, interrogator {outcome.text!r}")
    judge_vs_prompt = sum(o.judged == (o.scene.colour, o.scene.shape, o.scene.background) for o in outcomes)
    print(f"{len(outcomes)} pictures, CFG {args.cfg}, {args.steps} steps, DPM++ 2M")
    print(f"interrogator vs judge: {agreement(outcomes, 'judge')}")
    print(f"interrogator vs prompt: {agreement(outcomes, 'prompt')}")
    print(f"judge vs prompt (all three): {judge_vs_prompt / len(outcomes)}")


if __name__ == "__main__":
    main()
