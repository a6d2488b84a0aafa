"""One UNet call (batch 2, as CFG makes it) in the ways the CPU could run it, against the default path.

    .venv/bin/python scripts/make_sd15_sized_checkpoint.py /tmp/perf-bench/sd15-random.safetensors
    nice .venv/bin/python bench/bench_unet_variants.py /tmp/perf-bench/sd15-random.safetensors \\
        --size 256 --reps 5 [--variants tome,channels_last,bf16,compile]

Variants, each timed against ``fp32`` (the default: float32 weights, contiguous tensors, PyTorch's SDPA)
in interleaved repetitions, with the largest difference of its output from the default's:

- ``tome``: token merging at ratio 0.5 (``modules.models.tome``, as the "Token merging ratio" setting);
- ``channels_last``: the UNet's weights and its input in the channels-last memory format;
- ``bf16``: CPU autocast to bfloat16 (weights stay float32) - pays only on CPUs with bf16 instructions;
- ``bf16_weights``: the weights themselves in bfloat16 (what ``--precision bf16`` loads);
- ``compile``: ``torch.compile`` of the UNet (inductor); its compile time is reported apart;
- ``compile_frozen``: the same with inductor's ``freezing`` (weights folded in as constants and prepacked
  for oneDNN, which is what CPU inference is advised to use); run it without ``compile`` beside it, the
  setting is process-wide.

Figures are ratios of seconds within one repetition (median and range), since the machines are shared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

VARIANTS = ("tome", "channels_last", "bf16", "bf16_weights", "compile", "compile_frozen")


def call(unet: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return unet(x, t, encoder_hidden_states=context).sample.float()


def variant(
    name: str, unet: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor
) -> tuple[Callable[[], torch.Tensor], float]:
    """The variant's call, and the seconds spent preparing it (compiling, for ``compile``)."""
    if name == "fp32":
        return lambda: call(unet, x, t, context), 0.0
    if name == "tome":
        from modules.models.tome import token_merging

        def merged() -> torch.Tensor:
            with token_merging(unet, 0.5):
                return call(unet, x, t, context)

        return merged, 0.0
    if name == "channels_last":
        import copy

        converted = copy.deepcopy(unet).to(memory_format=torch.channels_last)
        x_last = x.contiguous(memory_format=torch.channels_last)
        return lambda: call(converted, x_last, t, context), 0.0
    if name == "bf16":

        def autocast() -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return call(unet, x, t, context)

        return autocast, 0.0
    if name == "bf16_weights":
        import copy

        half = copy.deepcopy(unet).to(torch.bfloat16)
        x16, context16 = x.to(torch.bfloat16), context.to(torch.bfloat16)
        return lambda: call(half, x16, t, context16), 0.0
    if name == "compile":
        compiled = torch.compile(unet)
        start = time.perf_counter()
        call(compiled, x, t, context)  # the first call compiles
        return lambda: call(compiled, x, t, context), time.perf_counter() - start
    if name == "compile_frozen":
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        compiled = torch.compile(unet)
        start = time.perf_counter()
        call(compiled, x, t, context)
        return lambda: call(compiled, x, t, context), time.perf_counter() - start
    raise SystemExit(f"unknown variant {name!r}; choose from {VARIANTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()

    from modules.models.loader import load_checkpoint

    unet = load_checkpoint(args.checkpoint, dtype=torch.float32).unet.eval()
    latent = args.size // 8
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, unet.config.in_channels, latent, latent, generator=gen)
    t = torch.full((2,), 500.0)
    context = torch.randn(2, 77, unet.config.cross_attention_dim, generator=gen)
    reference = call(unet, x, t, context)

    names = ["fp32", *[n for n in args.variants.split(",") if n]]
    funcs, prepare = {}, {}
    for name in names:
        funcs[name], prepare[name] = variant(name, unet, x, t, context)
    differences = {name: float((funcs[name]() - reference).abs().max()) for name in names}
    print(f"UNet call, batch 2, {args.size} px, {torch.get_num_threads()} threads, {args.reps} reps")
    rounds: list[dict[str, float]] = []
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        seconds = {}
        for name in order:
            start = time.perf_counter()
            funcs[name]()
            seconds[name] = time.perf_counter() - start
        rounds.append(seconds)
        print(
            f"  rep {rep + 1}/{args.reps}: " + ", ".join(f"{n} {seconds[n]:.2f} s" for n in names), flush=True
        )
    scale = float(reference.abs().max())
    for name in names[1:]:
        values = [r[name] / r["fp32"] for r in rounds]
        extra = f", prepared in {prepare[name]:.0f} s" if prepare[name] else ""
        print(
            f"{name} / fp32: median {statistics.median(values):.3f}, range {min(values):.3f}-{max(values):.3f};"
            f" max |difference| {differences[name]:.2e} (output max {scale:.2f}){extra}"
        )
    print(f"fp32 call: median {statistics.median(r['fp32'] for r in rounds):.2f} s")


if __name__ == "__main__":
    main()
