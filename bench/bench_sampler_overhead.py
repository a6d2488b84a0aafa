"""Per-step overhead of the sampler loop against calling the UNet directly the same number of times.

    .venv/bin/python bench/bench_sampler_overhead.py              # tiny model, 64 px, 20 steps
    .venv/bin/python bench/bench_sampler_overhead.py --sd15 --size 256 --steps 4

The loop run is ``modules.processing.sampling_pass.run_pass`` (schedules, CFG denoiser, padding, sampler,
progress callback); the baseline is a bare ``unet(x, t, cond)`` with the same batch (2 = cond + uncond).
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch

from modules.models.bundle import Arch, ModelBundle, scaled_linear_alphas_cumprod
from modules.models.tiny import build_tiny_bundle
from modules.options import Options
from modules.processing import sampling_pass
from modules.progress import Progress
from modules.sampling.denoiser import ComposableConditioning, ScheduledConditioning
from modules.sampling.registry import default_registry


def sd15_bundle() -> ModelBundle:
    from diffusers import UNet2DConditionModel

    from modules.models.detect import load_skeleton

    unet = UNet2DConditionModel(**load_skeleton("sd1", "unet")).eval().requires_grad_(False)
    tiny = build_tiny_bundle()
    return ModelBundle(
        unet=unet,
        vae=tiny.vae,
        text_encoders=[],
        tokenizers=[],
        arch=Arch.SD1,
        prediction_type="epsilon",
        alphas_cumprod=scaled_linear_alphas_cumprod(),
        name="sd15-random",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sd15", action="store_true", help="an SD1.5-shaped random-weight UNet (860 M params)"
    )
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sampler", default="Euler")
    args = parser.parse_args()
    torch.set_num_threads(2)
    bundle = sd15_bundle() if args.sd15 else build_tiny_bundle()
    dim = bundle.unet.config.cross_attention_dim
    cond = SimpleNamespace(tokens=torch.randn(1, 77, dim), pooled=None)
    neg = SimpleNamespace(tokens=torch.randn(1, 77, dim), pooled=None)
    runtime = SimpleNamespace(progress=Progress(), sampling_registry=default_registry(), denoiser_hooks=None)
    settings = Options(None).snapshot()
    job = SimpleNamespace(
        subseed_strength=0.0,
        seed_resize_from_h=0,
        seed_resize_from_w=0,
        eta=None,
        s_churn=None,
        s_tmin=None,
        s_tmax=None,
        s_noise=None,
        cfg_scale=7.0,
    )
    plan = SimpleNamespace(bundle=bundle, job=job, settings=settings, extra={})
    sampling = sampling_pass.plan_pass(
        runtime, bundle, job, settings, steps=args.steps, sampler_name=args.sampler, scheduler="Automatic"
    )
    latent = args.size // 8
    batch = sampling_pass.BatchInput(
        conds=[ComposableConditioning(((ScheduledConditioning(((args.steps, cond),)), 1.0),))],
        unconds=[ScheduledConditioning(((args.steps, neg),))],
        shape=(4, latent, latent),
        seeds=[1],
        subseeds=[1],
    )
    with torch.inference_mode():
        sampling_pass.run_pass(runtime, plan, sampling, batch)  # warm-up
        start = time.perf_counter()
        sampling_pass.run_pass(runtime, plan, sampling, batch)
        loop = time.perf_counter() - start
        x = torch.randn(2, 4, latent, latent)
        c = torch.cat([cond.tokens, neg.tokens])
        t = torch.tensor([500.0, 500.0])
        start = time.perf_counter()
        for _ in range(args.steps):
            bundle.unet(x, t, encoder_hidden_states=c)
        direct = time.perf_counter() - start
    per_step = (loop - direct) / args.steps
    print(f"model={bundle.name} size={args.size}px steps={args.steps} sampler={args.sampler}")
    print(
        f"loop {loop:.3f} s, direct UNet {direct:.3f} s, ratio {loop / direct:.3f}, "
        f"overhead {per_step * 1000:.2f} ms/step"
    )


if __name__ == "__main__":
    main()
