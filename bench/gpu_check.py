"""The GPU check: device tests, speed and memory beside diffusers, and A1111 reproduction on CUDA.

On a CUDA machine (about 10 minutes on one H100):
    .venv/bin/python bench/gpu_check.py [--out DIR] [--checkpoint sd15.safetensors]
Here, on the CPU, to check that the script itself runs (tiny model, 64 px, 3 steps):
    .venv/bin/python bench/gpu_check.py --cpu-smoke

What it does, in order, printing one JSON line per result (and writing them to DIR/gpu_check.jsonl):
1. the suite's device tests (pytest), then CUDA-only checks: the "GPU" noise source draws with torch's
   CUDA generator, the Brownian tree equals k-diffusion's on CUDA, host reads inside the loop, and the
   model-table sigmas computed on the host against A1111's (computed on the model's device);
2. an SD1.5-shaped random-weight model (scripts/make_sd15_sized_checkpoint.py) at 512x512, 20 steps,
   Euler, CFG 7, batch 1 and 4, fp16: it/s and peak VRAM for this project and for diffusers'
   StableDiffusionPipeline on the same weights (same modules), interleaved, after a warm-up each;
   the same for --medvram and --lowvram (their cost);
3. an A1111 parameters text without an "RNG" key (so: GPU noise) run through this project, against a
   reference loop built from k-diffusion's Euler a and CompVisDenoiser with A1111's noise rules
   (torch.randn on a CUDA generator per image seed): max latent difference and max pixel difference.
Speeds are only comparable within one run on one card.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "sampling"))

DEVICE_TESTS = [
    "tests/sampling/test_sampling_devices.py",
    "tests/models/test_models_placement.py",
    "tests/test_devices.py",
]
A1111_TEXT = (
    "a red circle on a blue square\nNegative prompt: blurry\n"
    "Steps: {steps}, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1234, "
    "Size: {size}x{size}, Version: v1.10.1"
)


class Report:
    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.file = (out / "gpu_check.jsonl").open("w")

    def __call__(self, **record: Any) -> None:
        line = json.dumps(record, default=str)
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None


# --- models ---------------------------------------------------------------------------------------------


def load_bundle(args: argparse.Namespace, device: torch.device, dtype: torch.dtype, offload: str = "none"):
    from modules.models.bundle import Arch
    from modules.models.loader import load_checkpoint
    from modules.models.manager import place
    from modules.models.tiny import build_tiny

    if args.cpu_smoke:
        bundle = build_tiny(Arch.SD1, 3)
        for module in (bundle.unet, bundle.vae, *bundle.text_encoders):
            module.to(dtype)
        bundle.dtype = dtype
    else:
        bundle = load_checkpoint(args.checkpoint, device="cpu", dtype=dtype)
    place(bundle, device, offload)
    return bundle


def make_runtime(tmp: Path, bundle: Any, device: torch.device):
    from modules import cmd_args
    from modules.runtime import Runtime

    runtime = Runtime(cmd_args.parse(["--data-dir", str(tmp), "--device", "cpu"]))
    runtime.device = device
    runtime.model_loader = lambda: bundle
    return runtime


def our_job(size: int, steps: int, batch: int, **kw: Any):
    from modules.processing.job import GenerationJob

    fields = dict(
        prompt="a red circle on a blue square",
        negative_prompt="blurry",
        steps=steps,
        width=size,
        height=size,
        seed=1234,
        batch_size=batch,
        cfg_scale=7,
        sampler_name="Euler",
        do_not_save_samples=True,
        do_not_save_grid=True,
    )
    return GenerationJob(**{**fields, **kw})


# --- speed -----------------------------------------------------------------------------------------------


def ours_its(runtime: Any, size: int, steps: int, batch: int, device: torch.device) -> float:
    """Steps per second of the sampling loop (first step excluded), from the progress callback."""
    from modules.progress import Progress

    stamps: list[float] = []
    original = Progress.set_step

    # each job reports to a Progress of its own task, so the class is where every call passes
    def set_step(self: Progress, step: int, total: int) -> None:
        sync(device)
        stamps.append(time.perf_counter())
        original(self, step, total)

    Progress.set_step = set_step  # type: ignore[method-assign]
    try:
        runtime.txt2img(our_job(size, steps, batch))
    finally:
        Progress.set_step = original  # type: ignore[method-assign]
    # stamps: step 0 (before the loop), then after each step
    return (len(stamps) - 2) / (stamps[-1] - stamps[1])


def diffusers_pipeline(bundle: Any):
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    from modules import paths

    scheduler = EulerDiscreteScheduler.from_pretrained(paths.CONFIGS / "sd1" / "scheduler")
    return StableDiffusionPipeline(
        vae=bundle.vae,
        text_encoder=bundle.text_encoders[0],
        tokenizer=bundle.tokenizers[0],
        unet=bundle.unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def diffusers_its(pipe: Any, size: int, steps: int, batch: int, device: torch.device) -> float:
    stamps: list[float] = []

    def on_step_end(_pipe: Any, _i: int, _t: Any, kwargs: dict) -> dict:
        sync(device)
        stamps.append(time.perf_counter())
        return kwargs

    generator = [torch.Generator(device).manual_seed(1234 + i) for i in range(batch)]
    pipe(
        "a red circle on a blue square",
        negative_prompt="blurry",
        height=size,
        width=size,
        num_inference_steps=steps,
        guidance_scale=7,
        num_images_per_prompt=batch,
        generator=generator,
        callback_on_step_end=on_step_end,
    )
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def speed(
    args: argparse.Namespace, report: Report, tmp: Path, device: torch.device, dtype: torch.dtype
) -> None:
    size, steps = args.size, args.steps
    bundle = load_bundle(args, device, dtype)
    runtime = make_runtime(tmp, bundle, device)
    pipe = diffusers_pipeline(bundle)
    ours_its(runtime, size, 2, 1, device)  # warm-up (kernels, allocator)
    diffusers_its(pipe, size, 2, 1, device)
    for batch in args.batches:
        for name, run in (("ours", ours_its), ("diffusers", diffusers_its)):
            peak_reset(device)
            its = run(runtime if name == "ours" else pipe, size, steps, batch, device)
            report(
                check="speed",
                impl=name,
                size=size,
                steps=steps,
                batch=batch,
                dtype=str(dtype),
                it_per_s=round(its, 3),
                peak_vram_mib=peak_mib(device),
            )
    del runtime, pipe, bundle
    for mode in ("medvram", "lowvram"):
        bundle = load_bundle(args, device, dtype, offload=mode)
        runtime = make_runtime(tmp, bundle, device)
        peak_reset(device)
        its = ours_its(runtime, size, steps, 1, device)
        report(
            check="speed",
            impl=f"ours --{mode}",
            size=size,
            steps=steps,
            batch=1,
            dtype=str(dtype),
            it_per_s=round(its, 3),
            peak_vram_mib=peak_mib(device),
            unit_moves=bundle.offload.moves,
        )
        del runtime, bundle


# --- A1111 reproduction ---------------------------------------------------------------------------------


def a1111_reference(bundle: Any, prompt: str, negative: str, seed: int, size: int, steps: int, cfg: float):
    """Euler a as A1111 1.10 runs it: k-diffusion's sampler and CompVisDenoiser, uniform sigmas from the
    model's own table on its device, GPU noise from one CUDA generator per image seed."""
    from kdiffusion_oracle import _load

    from modules.sampling.denoiser import unet_autocast

    kd = _load()
    device, dtype = bundle.device, bundle.dtype

    class LatentDiffusion:
        alphas_cumprod = bundle.alphas_cumprod.to(device, torch.float32)

        def apply_model(self, x, t, cond):
            # A1111 casts the latent and the fractional timestep to the UNet's dtype, under autocast.
            with unet_autocast(device, dtype):
                return bundle.unet(x.to(dtype), t.to(dtype), encoder_hidden_states=cond).sample.float()

    denoiser = kd.external.CompVisDenoiser(LatentDiffusion())
    tokenizer, encoder = bundle.tokenizers[0], bundle.text_encoders[0]
    ids = tokenizer([prompt, negative], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        cond, uncond = encoder(ids.to(device)).last_hidden_state.chunk(2)
    sigmas = denoiser.get_sigmas(steps).cpu().to(device)
    generator = torch.Generator(device).manual_seed(seed)
    shape = (4, size // 8, size // 8)
    x = torch.randn(shape, generator=generator, device=device)[None] * sigmas[0]

    def model(x, sigma):
        out = denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), cond=torch.cat([cond, uncond]))
        c, u = out.chunk(2)
        return u + (c - u) * cfg

    noise = lambda s, sn: torch.randn(shape, generator=generator, device=device)[None]  # noqa: E731
    with torch.no_grad():
        latents = kd.sampling.sample_euler_ancestral(model, x, sigmas, noise_sampler=noise, disable=True)
        pixels = bundle.vae.decode((latents / bundle.vae_scaling_factor).to(bundle.vae.dtype)).sample
    return latents, pixels, sigmas


def reproduction(args: argparse.Namespace, report: Report, tmp: Path, device: torch.device, dtype) -> None:
    from modules.infotext import infotext_to_settings, parse_infotext
    from modules.processing import vae as vae_module
    from modules.processing.job import JOB_FIELDS, GenerationJob
    from modules.sampling.sigmas import uniform

    size, steps = args.size, args.steps
    bundle = load_bundle(args, device, dtype)
    runtime = make_runtime(tmp, bundle, device)
    text = A1111_TEXT.format(steps=steps, size=size)
    settings = infotext_to_settings(parse_infotext(text), runtime.options.definitions)
    fields = {k: v for k, v in settings.items() if k in JOB_FIELDS}
    job = GenerationJob(**{**fields, "do_not_save_samples": True, "do_not_save_grid": True})
    captured: list[torch.Tensor] = []
    decode = vae_module.decode

    def capture(bundle_: Any, latents: torch.Tensor, *a: Any, **k: Any):
        captured.append(latents)
        return decode(bundle_, latents, *a, **k)

    vae_module.decode = capture
    try:
        ours = runtime.txt2img(job)
    finally:
        vae_module.decode = decode
    ref_latents, ref_pixels, ref_sigmas = a1111_reference(
        bundle, job.prompt, job.negative_prompt, 1234, size, steps, 7.0
    )
    from modules.processing.sampling_pass import model_schedule

    our_sigmas = uniform(steps, 0, 0, model_schedule(bundle))
    ref_image = vae_module.tensor_to_images(ref_pixels)[0]
    import numpy as np

    pixel_diff = int(np.abs(np.asarray(ours.samples[0], np.int16) - np.asarray(ref_image, np.int16)).max())
    latent_diff = float((captured[0].float() - ref_latents.float()).abs().max())
    report(
        check="a1111_reproduction",
        infotext_rng="none (GPU)",
        settings_from_text=settings.get("override_settings"),
        max_latent_diff=latent_diff,
        max_pixel_diff=pixel_diff,
        reproduces=pixel_diff == 0,
        sigma_max_diff_host_vs_device=float((our_sigmas.to(device) - ref_sigmas).abs().max()),
    )


# --- CUDA-only device checks -----------------------------------------------------------------------------


def device_checks(report: Report, device: torch.device, smoke: bool) -> None:
    from device_checks import HostTransfers

    from modules.sampling.brownian import BrownianNoiseSampler
    from modules.sampling.rng import ImageRNG

    shape = (4, 64, 64)
    ours = ImageRNG(shape, [1234, 1235], source="gpu", device=device).first()
    torch_draws = torch.stack(
        [
            torch.randn(shape, generator=torch.Generator(device).manual_seed(s), device=device)
            for s in (1234, 1235)
        ]
    )
    report(check="gpu_rng_on_device", device=str(ours.device), equal=bool(torch.equal(ours, torch_draws)))
    from kdiffusion_oracle import _load

    kd = _load()
    x = torch.zeros(2, *shape, device=device)
    lo, hi = torch.tensor(0.03, device=device), torch.tensor(14.6, device=device)
    a = BrownianNoiseSampler(x, lo, hi, seeds=[1, 2])(hi, torch.tensor(7.0, device=device))
    b = kd.sampling.BrownianTreeNoiseSampler(x, lo, hi, seed=[1, 2])(hi, torch.tensor(7.0, device=device))
    report(check="brownian_on_device", device=str(a.device), equal=bool(torch.equal(a, b)))
    # Host reads inside a tiny generation's loop: scalar reads are the samplers' branches on sigmas.
    from modules.models.bundle import Arch
    from modules.models.manager import place
    from modules.models.tiny import build_tiny

    tiny = build_tiny(Arch.SD1, 3)
    place(tiny, device)
    from modules.processing import sampling_pass

    run_sampler = sampling_pass.run_sampler
    counter = HostTransfers()

    def counted(*args: Any, **kwargs: Any) -> torch.Tensor:
        with counter:  # the sampling loop only: setup before it and the decoded images after it are free
            return run_sampler(*args, **kwargs)

    sampling_pass.run_sampler = counted
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runtime = make_runtime(Path(tmp), tiny, device)
            for sampler in ("Euler a", "DPM++ 2M", "DPM++ 2M SDE"):
                counter.reads.clear()
                previews_off = {"live_previews_enable": False}
                runtime.txt2img(our_job(64, 10, 2, sampler_name=sampler, override_settings=previews_off))
                tensors = [r for r in counter.reads if "of ()" not in r and "of (1,)" not in r]
                report(
                    check="host_reads",
                    sampler=sampler,
                    steps=10,
                    scalar_reads=len(counter.reads) - len(tensors),
                    tensor_reads=tensors,
                )
    finally:
        sampling_pass.run_sampler = run_sampler


def pytest_device_tests(report: Report) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *DEVICE_TESTS, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"CI": "true", **__import__("os").environ},
    )
    report(check="device_tests", returncode=result.returncode, tail=result.stdout.strip().splitlines()[-1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny model on the CPU: checks the script runs"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "gpu_check")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: a random SD1.5-shaped one")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the pytest device tests")
    args = parser.parse_args()
    report = Report(args.out)
    if args.cpu_smoke:
        device, dtype = torch.device("cpu"), torch.float32
        args.size, args.steps, args.batches = 64, 3, [1, 2]
        torch.set_num_threads(2)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run with --cpu-smoke to check the script on the CPU")
        device, dtype = torch.device("cuda"), torch.float16
        args.size, args.steps, args.batches = 512, 20, [1, 4]
        report(
            check="device",
            name=torch.cuda.get_device_name(),
            torch=torch.__version__,
            bf16=torch.cuda.is_bf16_supported(),
        )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not args.cpu_smoke and args.checkpoint is None:
            args.checkpoint = tmp / "sd15-random.safetensors"
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "scripts" / "make_sd15_sized_checkpoint.py"),
                    str(args.checkpoint),
                    "--dtype",
                    "fp16",
                ],
                check=True,
            )
        if not args.skip_tests and not args.cpu_smoke:
            pytest_device_tests(report)
        if device.type == "cuda" or args.cpu_smoke:
            device_checks(report, device, args.cpu_smoke)
        reproduction(args, report, tmp, device, dtype)
        speed(args, report, tmp, device, dtype)


if __name__ == "__main__":
    main()
