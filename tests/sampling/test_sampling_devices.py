"""A generation runs on the model's device from the first noise to the decoded pixels (meta stand-in).

The tiny model is put on the meta device in fp16: any tensor left on the host that meets a device
tensor, any copy back to the host and any network input of the wrong dtype fails here as it would on
CUDA. The sigmas are handed to the samplers as host scalars (``sampler_sigmas`` patched): CUDA accepts
0-dim host tensors in device ops, and meta has no values for the samplers' branches to read.
"""

from __future__ import annotations

import pytest
import torch
from device_checks import META, HostTransfers, check_inputs, meta_bundle
from PIL import Image

from modules import cmd_args
from modules.models.bundle import Arch
from modules.processing import sampling_pass
from modules.processing import vae as vae_module
from modules.processing.job import GenerationJob
from modules.runtime import Runtime
from modules.sampling.brownian import BrownianNoiseSampler
from modules.sampling.rng import ImageRNG, draw_device

# Brownian-tree samplers need a generator on the device (meta has none: tested below); DPM adaptive's
# step control reads its error estimate every step and DPM fast lays its time steps out on the latent's
# device, both as in k-diffusion/A1111, so their branches read device scalars.
SAMPLERS = [
    "Euler a",
    "Euler",
    "DPM++ 2M",
    "DPM++ 2S a",
    "Heun",
    "DPM2 a",
    "LMS",
    "Restart",
    "DDIM",
    "PLMS",
    "UniPC",
    "LCM",
]


@pytest.fixture
def meta_runtime(tmp_path, monkeypatch):
    runtime = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu"]))
    monkeypatch.setattr(sampling_pass, "sampler_sigmas", lambda sigmas, device: sigmas)
    decoded: list[torch.Tensor] = []

    def to_images(pixels: torch.Tensor) -> list[Image.Image]:
        decoded.append(pixels)  # the one host transfer of a generation, stubbed: meta has no pixels
        return [Image.new("RGB", (pixels.shape[3], pixels.shape[2]))] * pixels.shape[0]

    monkeypatch.setattr(vae_module, "tensor_to_images", to_images)
    runtime.decoded = decoded
    return runtime


def meta_job(**kw) -> GenerationJob:
    defaults = dict(
        prompt="a red circle AND a blue square",
        negative_prompt="blurry",
        steps=3,
        width=64,
        height=48,
        seed=1234,
        batch_size=2,
        do_not_save_samples=True,
        do_not_save_grid=True,
        override_settings={"randn_source": "CPU", "live_previews_enable": False},
    )
    return GenerationJob(**{**defaults, **kw})


def run_on_meta(runtime, bundle, job):
    runtime.model_loader = lambda: bundle
    transfers = HostTransfers()
    with check_inputs(bundle.unet, META, bundle.unet_compute_dtype) as unet_calls, transfers:
        result = runtime.txt2img(job)
    return result, unet_calls[0], transfers.reads


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_txt2img_stays_on_the_device_with_every_sampler(meta_runtime, sampler):
    bundle = meta_bundle()
    result, unet_calls, reads = run_on_meta(meta_runtime, bundle, meta_job(sampler_name=sampler))
    assert unet_calls >= 3 and reads == []
    (pixels,) = meta_runtime.decoded
    assert pixels.device == META and pixels.shape == (2, 3, 48, 64)
    assert len(result.samples) == 2


@pytest.mark.parametrize(
    "arch, channels", [(Arch.SDXL, 4), (Arch.SD1, 9), (Arch.SD2, 4)], ids=["sdxl", "sd1-inpaint", "sd2"]
)
def test_txt2img_stays_on_the_device_for_each_family(meta_runtime, arch, channels):
    bundle = meta_bundle(arch, channels)
    _, unet_calls, reads = run_on_meta(meta_runtime, bundle, meta_job(sampler_name="Euler a"))
    assert unet_calls == 3 and reads == []


def test_img2img_inpainting_stays_on_the_device(meta_runtime):
    bundle = meta_bundle(Arch.SD1, 9)
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (16, 16, 48, 40))
    job = meta_job(
        init_images=[image], mask=mask, denoising_strength=0.6, inpainting_fill=2, sampler_name="DPM++ 2M"
    )
    meta_runtime.model_loader = lambda: bundle
    transfers = HostTransfers()
    with check_inputs(bundle.unet, META, torch.float16) as unet_calls, transfers:
        meta_runtime.img2img(job)
    assert unet_calls[0] >= 1 and transfers.reads == []


def test_hires_fix_stays_on_the_device(meta_runtime):
    bundle = meta_bundle()
    job = meta_job(enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", hr_second_pass_steps=2)
    _, unet_calls, reads = run_on_meta(meta_runtime, bundle, job)
    assert unet_calls == 5 and reads == []


def test_the_gpu_source_draws_on_the_models_device():
    # The meta device has no generator: asking for one proves the draw would happen there.
    with pytest.raises(RuntimeError, match="META"):
        ImageRNG((4, 8, 8), [1], source="gpu", device=META)
    assert draw_device("gpu", torch.device("cuda")) == torch.device("cuda")
    assert draw_device("cpu", torch.device("cuda")) == torch.device("cpu")
    # A1111 compatibility: "GPU" on Apple's MPS draws on the CPU.
    assert draw_device("gpu", torch.device("mps")) == torch.device("cpu")


@pytest.mark.parametrize("source", ["cpu", "nv"])
def test_host_sources_are_moved_to_the_device(source):
    noise = ImageRNG((4, 8, 8), [1, 2], source=source, device=META).first()
    assert noise.device == META and noise.shape == (2, 4, 8, 8)


def test_gpu_source_on_the_cpu_is_torchs_generator_there():
    expected = torch.randn((4, 8, 8), generator=torch.Generator("cpu").manual_seed(5))
    assert torch.equal(ImageRNG((4, 8, 8), [5], source="gpu", device="cpu").first()[0], expected)


def test_the_brownian_tree_draws_on_the_latents_device():
    x = torch.zeros(2, 4, 8, 8, device=META)
    with pytest.raises(RuntimeError, match="META"):
        BrownianNoiseSampler(x, torch.tensor(0.03), torch.tensor(14.6), seeds=[1, 2])
    cpu = BrownianNoiseSampler(
        torch.zeros(2, 4, 8, 8, dtype=torch.float64), torch.tensor(0.03), torch.tensor(14.6), [1, 2]
    )
    w = cpu(torch.tensor(14.6), torch.tensor(7.0))
    assert w.dtype == torch.float64 and w.shape == (2, 4, 8, 8)
