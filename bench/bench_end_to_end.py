"""End-to-end txt2img against the bare model calls, against diffusers' pipeline, and a scheduled prompt.

    .venv/bin/python scripts/make_sd15_sized_checkpoint.py /tmp/perf-bench/sd15-random.safetensors
    nice .venv/bin/python bench/bench_end_to_end.py /tmp/perf-bench/sd15-random.safetensors \\
        --items denormal,e2e,diffusers --size 256 --steps 20 --reps 5
    nice .venv/bin/python bench/bench_end_to_end.py /tmp/perf-bench/sd15-random.safetensors --items scheduled

The checkpoint is loaded by the app itself (``Runtime`` with the built-in extensions, as webui.py starts
it). Each repetition runs every arm the chosen items need once, in an order rotated per repetition, and
every figure is a ratio within one repetition (median and range over the repetitions): the machines are
shared and their absolute speed drifts. The arms:

- ``ours``: ``Runtime.txt2img`` of a plain prompt (queue, conditioning, sampler loop, VAE decode,
  parameters text and saving the PNG), Euler, "Automatic" schedule, CFG 7, one image;
- ``bare``: the same model calls made directly: one text-encoder call per text (prompt, negative), the
  UNet ``steps`` times at batch 2 (cond + uncond), one VAE decode; tokenizing is done beforehand;
- ``diffusers``: ``StableDiffusionPipeline`` built from the very modules the app loaded (same weights),
  ``EulerDiscreteScheduler`` given our pass's sigmas, same steps, CFG, size, seed, one image;
- ``scheduled``: ``Runtime.txt2img`` of a prompt with several [a:b:N] edits and [a|b] alternations, AND
  with three parts and a scheduled negative prompt.

Model calls are counted by wrapping the UNet's ``forward`` and the text encoder's embedding layer's
``forward`` (the app runs the encoder's layers itself for CLIP skip, so its ``forward`` is not called).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modules import offline  # noqa: E402

offline.enable()

import torch  # noqa: E402

PLAIN = "a photo of a cat sitting on a red sofa, highly detailed, soft light"
PLAIN_NEGATIVE = "blurry, lowres"
SCHEDULED = (
    "a [cat:dog:5] sitting on a [red|blue] sofa on a [sunny:rainy:0.5] day"
    " AND a [small:large:8] house in the [forest|desert] :0.8"
    " AND [oil painting:photograph:12] of [a garden|an orchard], [(detailed:1.2)::15] :0.6"
)
SCHEDULED_NEGATIVE = "blurry, [lowres:jpeg artifacts:10], [watermark|text]"
CFG = 7.0
SEED = 1
ITEMS = ("denormal", "e2e", "diffusers", "scheduled")


class Counter:
    """Calls of a module's ``forward`` and the batch sizes they saw."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def reset(self) -> None:
        self.batches = []

    @property
    def calls(self) -> int:
        return len(self.batches)


@contextmanager
def counting(module: torch.nn.Module, counter: Counter) -> Iterator[None]:
    original = module.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        first = args[0] if args else next(iter(kwargs.values()))
        counter.batches.append(int(first.shape[0]))
        return original(*args, **kwargs)

    module.forward = forward
    try:
        yield
    finally:
        del module.forward  # the class's forward again


def make_runtime(checkpoint: Path, data_dir: Path) -> Any:
    """The app's runtime as webui.py builds it (built-in extensions loaded), with only this checkpoint."""
    from modules.extensions import startup
    from modules.runtime import Runtime

    ckpt_dir = data_dir / "ckpt"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    link = ckpt_dir / checkpoint.name
    if not link.exists():
        link.symlink_to(checkpoint.resolve())
    argv = ["--data-dir", str(data_dir), "--ckpt-dir", str(ckpt_dir), "--device", "cpu"]
    args, extensions, _ = startup.prepare([*argv, "--no-bundled-models", "--disable-extra-extensions"])
    runtime = Runtime(args, extensions)
    # Every repetition is a job from cold, as the other arms' are: the text cache kept across jobs would
    # spare ours its two text-encoder calls from the second repetition on (0.4% of an image here).
    runtime.text_cache = None
    return runtime


def job(prompt: str, negative: str, size: int, steps: int) -> Any:
    from modules.processing.job import GenerationJob

    return GenerationJob(
        prompt=prompt,
        negative_prompt=negative,
        width=size,
        height=size,
        steps=steps,
        cfg_scale=CFG,
        sampler_name="Euler",
        scheduler="Automatic",
        seed=SEED,
    )


def our_sigmas(runtime: Any, bundle: Any, size: int, steps: int) -> torch.Tensor:
    from modules.processing import sampling_pass

    j = job(PLAIN, PLAIN_NEGATIVE, size, steps)
    plan = sampling_pass.plan_pass(
        runtime,
        bundle,
        j,
        runtime.options.snapshot(),
        steps=steps,
        sampler_name="Euler",
        scheduler="Automatic",
    )
    return plan.sigmas


def text_model(bundle: Any) -> Any:
    from modules.conditioning.text_model import inner_model

    return inner_model(bundle.text_encoders[0])


def arms(runtime: Any, bundle: Any, size: int, steps: int) -> dict[str, Callable[[], Any]]:
    unet, vae, encoder, tokenizer = bundle.unet, bundle.vae, bundle.text_encoders[0], bundle.tokenizers[0]
    latent = size // bundle.vae_scale_factor
    ids = [
        tokenizer(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        for text in (PLAIN, PLAIN_NEGATIVE)
    ]
    plain_job = job(PLAIN, PLAIN_NEGATIVE, size, steps)
    scheduled_job = job(SCHEDULED, SCHEDULED_NEGATIVE, size, steps)
    sigmas = our_sigmas(runtime, bundle, size, steps)

    def ours() -> Any:
        return runtime.txt2img(plain_job).images[0]

    def scheduled() -> Any:
        return runtime.txt2img(scheduled_job).images[0]

    def bare() -> None:
        with torch.inference_mode():
            cond, uncond = (encoder(i).last_hidden_state for i in ids)
            context = torch.cat([cond, uncond])
            x = torch.randn(2, bundle.latent_channels, latent, latent)
            t = torch.full((2,), 500.0)
            for _ in range(steps):
                unet(x, t, encoder_hidden_states=context)
            vae.decode(x[:1] / bundle.vae_scaling_factor)

    pipe = diffusers_pipeline(bundle)

    def diffusers() -> Any:
        return pipe(
            PLAIN,
            negative_prompt=PLAIN_NEGATIVE,
            height=size,
            width=size,
            sigmas=sigmas.tolist(),
            guidance_scale=CFG,
            num_images_per_prompt=1,
            generator=torch.Generator().manual_seed(SEED),
        ).images[0]

    return {"ours": ours, "bare": bare, "diffusers": diffusers, "scheduled": scheduled}


def diffusers_pipeline(bundle: Any) -> Any:
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    # SD 1.x's training schedule (modules.models.bundle.scaled_linear_alphas_cumprod), as diffusers spells it.
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,  # SD 1.x's value; unused with explicit sigmas, but diffusers warns without it
    )
    pipe = StableDiffusionPipeline(
        vae=bundle.vae,
        text_encoder=bundle.text_encoders[0],
        tokenizer=bundle.tokenizers[0],
        unet=bundle.unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def show(label: str, values: list[float]) -> None:
    s = summary(values)
    print(f"  {label}: median {s['median']:.3f}, range {s['min']:.3f}-{s['max']:.3f} ({s['n']} reps)")


def interleaved(
    funcs: dict[str, Callable[[], Any]], reps: int, bundle: Any | None = None
) -> tuple[list[dict[str, float]], dict[str, dict[str, Any]], dict[str, Any]]:
    """Seconds of each function per repetition, the order rotated each repetition; with ``bundle``, the
    model calls each function made (checked equal in every repetition) and its last result."""
    names = list(funcs)
    rounds: list[dict[str, float]] = []
    counted: dict[str, dict[str, Any]] = {}
    outputs: dict[str, Any] = {}
    for rep in range(reps):
        shift = rep % len(names)
        order = names[shift:] + names[:shift]
        seconds = {}
        for name in order:
            unet_count, text_count = Counter(), Counter()
            with ExitStack() as stack:
                if bundle is not None:
                    stack.enter_context(counting(bundle.unet, unet_count))
                    stack.enter_context(counting(text_model(bundle).embeddings, text_count))
                start = time.perf_counter()
                outputs[name] = funcs[name]()
                seconds[name] = time.perf_counter() - start
            calls = {
                "unet_calls": unet_count.calls,
                "unet_batches": sorted(set(unet_count.batches)),
                "text_encoder_calls": text_count.calls,
            }
            if counted.setdefault(name, calls) != calls:
                raise RuntimeError(f"{name} made other model calls in repetition {rep + 1}: {calls}")
        rounds.append(seconds)
        print(f"  rep {rep + 1}/{reps} done ({', '.join(order)})", flush=True)
    return rounds, counted, outputs


def ratios(rounds: list[dict[str, float]], top: str, bottom: str) -> list[float]:
    return [r[top] / r[bottom] for r in rounds]


def subnormal_share(unet: Any, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> float:
    """Share of the subnormal float32 values among all outputs of the UNet's convolutions and linears."""
    tiny = torch.finfo(torch.float32).tiny
    totals = [0, 0]

    def hook(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
        totals[0] += int(((output != 0) & (output.abs() < tiny)).sum())
        totals[1] += output.numel()

    handles = [
        m.register_forward_hook(hook)
        for m in unet.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    try:
        with torch.inference_mode():
            unet(x, t, encoder_hidden_states=context)
    finally:
        for handle in handles:
            handle.remove()
    return totals[0] / totals[1]


def denormal_check(bundle: Any, size: int, reps: int) -> dict[str, Any]:
    """UNet call time with denormals flushed over without (batch 2), and how many subnormals there are."""
    latent = size // bundle.vae_scale_factor
    x = torch.randn(2, bundle.latent_channels, latent, latent, generator=torch.Generator().manual_seed(0))
    t = torch.full((2,), 500.0)
    context = torch.randn(
        2, 77, bundle.unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1)
    )

    def call(flush: bool) -> Callable[[], None]:
        def run() -> None:
            torch.set_flush_denormal(flush)
            with torch.inference_mode():
                bundle.unet(x, t, encoder_hidden_states=context)

        return run

    share = subnormal_share(bundle.unet, x, t, context)
    try:
        rounds, _, _ = interleaved({"flush": call(True), "keep": call(False)}, reps)
    finally:
        torch.set_flush_denormal(False)
    return {"subnormal_share": share, "flush_over_keep": ratios(rounds, "flush", "keep")}


def unet_batch_ratio(bundle: Any, size: int, reps: int, big: int) -> list[float]:
    """UNet call at batch ``big`` over batch 2: what a prompt with more AND parts costs by physics."""
    latent = size // bundle.vae_scale_factor
    dim = bundle.unet.config.cross_attention_dim

    def call(batch: int) -> Callable[[], None]:
        x = torch.randn(batch, bundle.latent_channels, latent, latent)
        t, context = torch.full((batch,), 500.0), torch.randn(batch, 77, dim)

        def run() -> None:
            with torch.inference_mode():
                bundle.unet(x, t, encoder_hidden_states=context)

        return run

    rounds, _, _ = interleaved({"big": call(big), "two": call(2)}, reps)
    return ratios(rounds, "big", "two")


def distinct_texts(prompt: str, negative: str, steps: int) -> int:
    """Texts a prompt and its negative need encoded: every scheduled text of every AND part, once."""
    from modules import prompting

    texts = set()
    for part in prompting.split_and(prompt):
        texts |= {("+", text) for _, text in prompting.prompt_schedule(part.text, steps)}
    texts |= {("-", text) for _, text in prompting.prompt_schedule(negative, steps)}
    return len(texts)


def max_pixel_difference(a: Any, b: Any) -> int:
    import numpy as np

    return int(np.abs(np.asarray(a.convert("RGB"), int) - np.asarray(b.convert("RGB"), int)).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="e.g. from scripts/make_sd15_sized_checkpoint.py")
    parser.add_argument("--items", default="denormal,e2e,diffusers", help=f"comma-separated of {ITEMS}")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--reps", type=int, default=5, help="interleaved repetitions (at least 5 for a figure)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="the app's data dir (default: a temp dir)"
    )
    args = parser.parse_args()
    items = [i for i in args.items.split(",") if i]
    unknown = set(items) - set(ITEMS)
    if unknown:
        parser.error(f"unknown items {sorted(unknown)}; choose from {ITEMS}")
    torch.set_num_threads(2)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    runtime = make_runtime(args.checkpoint, data_dir)
    bundle = runtime.model()
    print(
        f"model {bundle.name} ({bundle.arch}, {str(bundle.dtype).removeprefix('torch.')}), {args.size} px, "
        f"{args.steps} steps, Euler, CFG {CFG}, {args.reps} reps, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; data dir {data_dir}",
        flush=True,
    )
    results: dict[str, Any] = {
        "size": args.size,
        "steps": args.steps,
        "reps": args.reps,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }

    if "denormal" in items:
        print("denormal check (UNet call, batch 2):", flush=True)
        check = denormal_check(bundle, args.size, args.reps)
        results["denormal"] = check
        print(f"  subnormal share of conv/linear outputs: {check['subnormal_share']:.2e}")
        show("flushed / not flushed", check["flush_over_keep"])

    every = arms(runtime, bundle, args.size, args.steps)
    wanted = {"e2e": ["ours", "bare"], "diffusers": ["ours", "diffusers"], "scheduled": ["scheduled", "ours"]}
    names = list(dict.fromkeys(n for item in items if item in wanted for n in wanted[item]))
    if not names:
        return _write(args.json, results)
    chosen = {n: every[n] for n in names}

    # Warm-up: one run of each arm at two steps, so first-call costs stay out of the figures.
    warm = arms(runtime, bundle, args.size, 2)
    for name in names:
        warm[name]()
    print(f"interleaved repetitions of {names}:", flush=True)
    rounds, counted, outputs = interleaved(chosen, args.reps, bundle)
    results["counts"] = counted
    print("model calls per image (the same in every repetition):")
    for name, c in counted.items():
        print(
            f"  {name}: UNet {c['unet_calls']} calls at batch {c['unet_batches']}, "
            f"text encoder {c['text_encoder_calls']} calls"
        )
    if "e2e" in items:
        results["ours_over_bare"] = ratios(rounds, "ours", "bare")
        show("Runtime.txt2img / bare calls", results["ours_over_bare"])
    if "diffusers" in items:
        results["ours_over_diffusers"] = ratios(rounds, "ours", "diffusers")
        show("Runtime.txt2img / diffusers", results["ours_over_diffusers"])
        results["max_pixel_difference_vs_diffusers"] = max_pixel_difference(
            every["ours"](), every["diffusers"]()
        )
        print(
            f"  largest pixel difference, ours vs diffusers: {results['max_pixel_difference_vs_diffusers']}"
        )
    if "scheduled" in items:
        results["scheduled_over_plain"] = ratios(rounds, "scheduled", "ours")
        results["distinct_texts"] = {
            "scheduled": distinct_texts(SCHEDULED, SCHEDULED_NEGATIVE, args.steps),
            "plain": distinct_texts(PLAIN, PLAIN_NEGATIVE, args.steps),
        }
        show("scheduled / plain prompt", results["scheduled_over_plain"])
        print(f"  distinct texts: {results['distinct_texts']}")
        big = max(counted["scheduled"]["unet_batches"])
        results["unet_batch_ratio"] = {
            "batch": big,
            "over_batch_2": unet_batch_ratio(bundle, args.size, args.reps, big),
        }
        show(f"bare UNet call batch {big} / batch 2", results["unet_batch_ratio"]["over_batch_2"])
    _write(args.json, results)


def _write(path: Path | None, results: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
