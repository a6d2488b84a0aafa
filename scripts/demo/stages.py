"""Training stages of the demo model: VAE, then UNet + text encoder, then a TI embedding and a LoRA.

Every stage is seeded and resumable: batches and noise come from a generator seeded by (seed, step), and
the stage's state (weights, optimiser, step) is saved to the work folder every ``save_every`` steps, so an
interrupted run continues where it stopped and a finished stage is skipped on the next run.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from modules import demo_data
from modules.models.bundle import scaled_linear_alphas_cumprod
from scripts.demo import networks

CAPTION_DROPOUT = 0.1  # empty prompts teach the unconditional prediction that CFG extrapolates from
TEAL_WORD = "demoteal"
# Share of training images whose shape / background colour word carries an emphasis weight, and the
# weights drawn (in steps of 0.1, as people type them).
EMPHASIS_SHARE = (0.3, 0.15)
EMPHASIS_WEIGHTS = tuple(round(0.4 + 0.1 * i, 1) for i in range(13) if i != 6)  # 0.4 .. 1.6, not 1.0
MIN_SNR_GAMMA = 5.0


@dataclass
class Dataset:
    """Pre-rendered training images (uint8 NHWC) and their scenes."""

    images: np.ndarray
    scenes: list[demo_data.Scene]

    @classmethod
    def render(
        cls,
        count: int,
        seed: int,
        colour: tuple[int, int, int] | None = None,
        emphasis: bool = True,
    ) -> Dataset:
        rng = np.random.default_rng(seed)
        scenes = [demo_data.random_scene(rng) for _ in range(count)]
        if emphasis:
            scenes = [with_emphasis(s, rng) for s in scenes]
        images = np.stack([demo_data.render(s, rng, colour) for s in scenes])
        return cls(images, scenes)

    def pixels(self, index: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], NCHW."""
        batch = torch.from_numpy(self.images[index.numpy()]).permute(0, 3, 1, 2).float()
        return batch / 127.5 - 1


def with_emphasis(scene: demo_data.Scene, rng: np.random.Generator) -> demo_data.Scene:
    """Now and then an emphasis weight on a colour word, drawn into the image as that colour's saturation."""
    draws = rng.random(4)
    weights = [
        EMPHASIS_WEIGHTS[int(pick * len(EMPHASIS_WEIGHTS))] if chance < share else 1.0
        for chance, pick, share in (
            (draws[0], draws[1], EMPHASIS_SHARE[0]),
            (draws[2], draws[3], EMPHASIS_SHARE[1]),
        )
    ]
    return dataclasses.replace(scene, colour_weight=weights[0], background_weight=weights[1])


def step_generator(seed: int, stage: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + stage * 100_003 + step)


def captions_for(
    scenes: list[demo_data.Scene], gen: torch.Generator, colour_word: str | None = None
) -> list[str]:
    """Training captions: size and position words dropped now and then, so short prompts work too."""
    draws = torch.rand(len(scenes), 3, generator=gen)
    captions = []
    for scene, (drop, size, position) in zip(scenes, draws.tolist(), strict=True):
        if colour_word:
            scene = dataclasses.replace(scene, colour=colour_word)
        caption = scene.caption(with_size=size < 0.5, with_position=position < 0.7)
        captions.append("" if drop < CAPTION_DROPOUT else caption)
    return captions


class Checkpointer:
    """Saves and restores one stage's state dict in the work folder."""

    def __init__(self, work_dir: Path, stage: str) -> None:
        self.partial = work_dir / f"{stage}.partial.pt"
        self.done = work_dir / f"{stage}.pt"

    def finished(self) -> dict | None:
        return torch.load(self.done, weights_only=False) if self.done.exists() else None

    def resume(self) -> dict | None:
        return torch.load(self.partial, weights_only=False) if self.partial.exists() else None

    def save(self, state: dict, final: bool = False) -> None:
        target = self.done if final else self.partial
        torch.save(state, target.with_suffix(".tmp"))
        target.with_suffix(".tmp").replace(target)
        if final and self.partial.exists():
            self.partial.unlink()


def progress(stage: str, step: int, total: int, loss: float, started: float) -> None:
    elapsed = time.time() - started
    print(f"[{stage}] step {step}/{total} loss {loss:.5f} elapsed {elapsed / 60:.1f} min", flush=True)


# --- VAE --------------------------------------------------------------------------------------------------


def train_vae(
    data_source: Callable[[], Dataset],
    work_dir: Path,
    steps: int,
    seed: int,
    batch: int = 32,
    kl_weight: float = 1e-6,
    lr: float = 3e-3,
    save_every: int = 200,
) -> torch.nn.Module:
    """MSE reconstruction plus a small KL term; returns the VAE with a unit-std latent scaling factor.

    It trains on random 32x32 crops (on the 8-pixel latent grid): the networks are convolutional, and a
    quarter of the pixels makes each step four times cheaper for the same edges and colours.
    """
    ckpt = Checkpointer(work_dir, "vae")
    vae = networks.build_vae(seed)
    with torch.no_grad():
        # Start with a near-deterministic posterior (std ~0.05): at the default std of 1 the decoder sees
        # mostly noise and learns only blurred averages (measured: wrong colours after 800 steps).
        vae.quant_conv.bias[vae.config.latent_channels :] = -6.0
    if (done := ckpt.finished()) is not None:
        vae.load_state_dict(done["model"])
        vae.register_to_config(scaling_factor=done["scaling_factor"])
        return vae.eval()
    data = data_source()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    start = load_partial(ckpt, vae, opt)
    started = time.time()
    vae.train()
    for step in range(start, steps):
        gen = step_generator(seed, 1, step)
        x = data.pixels(torch.randint(len(data.images), (batch,), generator=gen))
        top, left = (8 * torch.randint(0, 5, (2,), generator=gen)).tolist()
        x = x[:, :, top : top + 32, left : left + 32]
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen)
        loss = torch.nn.functional.mse_loss(vae.decode(z).sample, x) + kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        set_lr(opt, lr * cosine(step, steps))
        if (step + 1) % 50 == 0:
            progress("vae", step + 1, steps, loss.item(), started)
        if (step + 1) % save_every == 0:
            ckpt.save({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step + 1})
    vae.eval()
    scaling = latent_scaling(vae, data)
    vae.register_to_config(scaling_factor=scaling)
    ckpt.save({"model": vae.state_dict(), "scaling_factor": scaling}, final=True)
    print(f"[vae] scaling factor {scaling:.5f}", flush=True)
    return vae


def train_decoder(
    vae: torch.nn.Module,
    data_source: Callable[[], Dataset],
    work_dir: Path,
    steps: int,
    seed: int,
    batch: int = 16,
    lr: float = 2e-3,
    save_every: int = 200,
) -> torch.nn.Module:
    """More decoder training on whole images with the encoder frozen, so the latent space stays fixed.

    The diffusion stage depends only on the encoder's latents, so this stage and that one are independent
    (they can even run at the same time in two processes) and the decoder gets sharper edges and colours.
    """
    ckpt = Checkpointer(work_dir, "decoder")
    if (done := ckpt.finished()) is not None:
        vae.load_state_dict(done["model"])
        return vae.eval()
    data = data_source()
    trained = [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]
    opt = torch.optim.AdamW(trained, lr=lr, weight_decay=0.0)
    start = load_partial(ckpt, vae, opt)
    started = time.time()
    vae.decoder.train()
    for step in range(start, steps):
        gen = step_generator(seed, 5, step)
        x = data.pixels(torch.randint(len(data.images), (batch,), generator=gen))
        with torch.no_grad():
            posterior = vae.encode(x).latent_dist
            z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen)
        loss = torch.nn.functional.mse_loss(vae.decode(z).sample, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        set_lr(opt, lr * cosine(step, steps))
        if (step + 1) % 50 == 0:
            progress("decoder", step + 1, steps, loss.item(), started)
        if (step + 1) % save_every == 0:
            ckpt.save({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step + 1})
    ckpt.save({"model": vae.state_dict()}, final=True)
    return vae.eval()


def cosine(step: int, total: int, floor: float = 0.1) -> float:
    return float(floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * min(step / max(total, 1), 1.0))))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def load_partial(
    ckpt: Checkpointer, model: torch.nn.Module, opt: torch.optim.Optimizer, ema: torch.nn.Module | None = None
) -> int:
    state = ckpt.resume()
    if state is None:
        return 0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    print(f"resuming {ckpt.partial.name} at step {state['step']}", flush=True)
    return int(state["step"])


@torch.no_grad()
def latent_scaling(vae: torch.nn.Module, data: Dataset, count: int = 512) -> float:
    """1 / std of the latents, so the diffusion model sees unit-variance inputs (SD1 uses 0.18215)."""
    x = data.pixels(torch.arange(min(count, len(data.images))))
    return float(1.0 / vae.encode(x).latent_dist.mean.std())


@torch.no_grad()
def encode_dataset(
    vae: torch.nn.Module, data: Dataset, batch: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and stds of every image (latents are sampled from them per step, unscaled)."""
    means, stds = [], []
    for start in range(0, len(data.images), batch):
        posterior = vae.encode(
            data.pixels(torch.arange(start, min(start + batch, len(data.images))))
        ).latent_dist
        means.append(posterior.mean)
        stds.append(posterior.std)
    return torch.cat(means), torch.cat(stds)


# --- diffusion --------------------------------------------------------------------------------------------


class DiffusionBatches:
    """Noised latents, targets and token ids for one step, all drawn from the step's generator."""

    def __init__(self, data: Dataset, latents: tuple[torch.Tensor, torch.Tensor], scaling: float) -> None:
        self.data = data
        self.means, self.stds = latents
        self.scaling = scaling
        self.tokenizer = networks.CaptionTokenizer()
        self.alphas = scaled_linear_alphas_cumprod().float()

    def draw(
        self, gen: torch.Generator, batch: int, colour_word: str | None = None
    ) -> tuple[torch.Tensor, ...]:
        index = torch.randint(len(self.means), (batch,), generator=gen)
        x0 = (
            self.means[index] + self.stds[index] * torch.randn(self.means[index].shape, generator=gen)
        ) * self.scaling
        t = torch.randint(0, len(self.alphas), (batch,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = self.alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        captions = captions_for([self.data.scenes[i] for i in index.tolist()], gen, colour_word)
        return xt, t, noise, *self.tokenizer.batch(captions)

    def loss(self, prediction: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Epsilon MSE with Min-SNR-5 weights (Hang et al. 2023): the nearly clean steps, which only polish
        edges, weigh less, so training time goes to the noisy steps that decide colour, shape and place."""
        snr = self.alphas[t] / (1 - self.alphas[t])
        per_sample = (prediction - noise).pow(2).mean(dim=(1, 2, 3))
        return (per_sample * snr.clamp(max=MIN_SNR_GAMMA) / snr).mean()


def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters(), strict=True):
            e.lerp_(p, 1 - decay)


class UNetAndText(torch.nn.Module):
    """Both trained networks as one module, so one optimiser, EMA and state dict cover them."""

    def __init__(self, unet: torch.nn.Module, text: torch.nn.Module) -> None:
        super().__init__()
        self.unet, self.text = unet, text

    def forward(
        self,
        xt: torch.Tensor,
        t: torch.Tensor,
        ids: torch.Tensor,
        weights: torch.Tensor,
    ) -> torch.Tensor:
        cond = networks.emphasise(networks.encode_text(self.text, ids), weights)
        return self.unet(xt, t, encoder_hidden_states=cond).sample


def train_diffusion(
    batch_source: Callable[[], DiffusionBatches], work_dir: Path, steps: int, seed: int, lr: float = 2e-3
) -> UNetAndText:
    """Epsilon prediction on the SD noise schedule, one warm-up + cosine cycle; returns the EMA weights."""
    ckpt = Checkpointer(work_dir, "diffusion")
    model = UNetAndText(*networks.build_unet_and_text(seed))
    if (done := ckpt.finished()) is not None:
        model.load_state_dict(done["ema"])
        return model.eval()
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(networks.trainable(model), lr=lr, weight_decay=0.0)
    start = load_partial(ckpt, model, opt, ema)
    if start < steps:
        fit(model, ema, opt, batch_source(), ckpt, range(start, steps), seed, lr)
    ckpt.save({"ema": ema.state_dict()}, final=True)
    return ema.eval()


def fit(
    model: UNetAndText,
    ema: UNetAndText,
    opt: torch.optim.Optimizer,
    batches: DiffusionBatches,
    ckpt: Checkpointer,
    steps: range,
    seed: int,
    lr: float,
    batch: int = 32,
    save_every: int = 200,
) -> None:
    started = time.time()
    model.train()
    for step in steps:
        xt, t, noise, ids, weights = batches.draw(step_generator(seed, 2, step), batch)
        set_lr(opt, lr * min(1.0, (step + 1) / 100) * cosine(step, steps.stop))
        loss = batches.loss(model(xt, t, ids, weights), noise, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(networks.trainable(model), 1.0)
        opt.step()
        # A short EMA horizon early on, so a short run still ends with useful averaged weights.
        update_ema(ema, model, min(0.999, (1 + step) / (10 + step)))
        if (step + 1) % 50 == 0:
            progress(ckpt.done.stem, step + 1, steps.stop, loss.item(), started)
        if (step + 1) % save_every == 0:
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "ema": ema.state_dict()}
            ckpt.save({**state, "step": step + 1})


# --- textual inversion ------------------------------------------------------------------------------------


def train_embedding(
    model: UNetAndText,
    batch_source: Callable[[], DiffusionBatches],
    work_dir: Path,
    steps: int,
    seed: int,
    init_words: tuple[str, ...] = ("green", "blue"),
    lr: float = 3e-2,
    batch: int = 32,
) -> torch.Tensor:
    """One 64-d vector for the new word "demoteal", trained on teal shapes with the model frozen."""
    ckpt = Checkpointer(work_dir, "embedding")
    if (done := ckpt.finished()) is not None:
        return done["vector"]
    batches = batch_source()
    tokenizer = batches.tokenizer
    word_ids = tokenizer.ids(TEAL_WORD)[1:-1]
    token = word_ids[0]  # after collapse_word, the first token of the word marks the vector's position
    # Teal lies between green and blue: starting from the mean of their token vectors, the vector begins
    # near the colour it must learn (from "green" alone it settled on a dark green, 80 units from teal).
    table = model.text.embeddings.token_embedding.weight
    init = torch.stack([table[tokenizer.ids(word)[1]] for word in init_words]).mean(0).detach().clone()
    vector = torch.nn.Parameter(init)
    opt = torch.optim.AdamW([vector], lr=lr, weight_decay=0.0)
    model.requires_grad_(False)
    started = time.time()
    for step in range(steps):
        xt, t, noise, ids, _ = batches.draw(step_generator(seed, 3, step), batch, colour_word=TEAL_WORD)
        ids = collapse_word(ids, word_ids)
        cond = networks.encode_text(model.text, ids, replace=(token, vector))
        loss = batches.loss(model.unet(xt, t, encoder_hidden_states=cond).sample, noise, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 50 == 0:
            progress("embedding", step + 1, steps, loss.item(), started)
    result = vector.detach().clone().unsqueeze(0)
    ckpt.save({"vector": result}, final=True)
    return result


def collapse_word(ids: torch.Tensor, word_ids: list[int]) -> torch.Tensor:
    """Make a multi-token word one token position, as the web UI places a one-vector embedding."""
    if len(word_ids) == 1:
        return ids
    rows = []
    for row in ids.tolist():
        for i in range(len(row) - len(word_ids) + 1):
            if row[i : i + len(word_ids)] == word_ids:
                row = row[: i + 1] + row[i + len(word_ids) :] + [row[-1]] * (len(word_ids) - 1)
                break
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long)


# --- LoRA -------------------------------------------------------------------------------------------------


def pastel(data: Dataset) -> Dataset:
    """The LoRA's style: every colour washed halfway towards white."""
    images = (data.images.astype(np.float32) * 0.5 + 127.5).round().astype(np.uint8)
    return Dataset(images, data.scenes)


def train_lora(
    model: UNetAndText,
    batch_source: Callable[[], DiffusionBatches],
    work_dir: Path,
    steps: int,
    seed: int,
    rank: int = 4,
    alpha: float = 4.0,
    batch: int = 32,
) -> dict[str, torch.Tensor]:
    """A rank-4 LoRA on the UNet and text encoder attention/MLP layers; returns kohya-format tensors."""
    ckpt = Checkpointer(work_dir, "lora")
    if (done := ckpt.finished()) is not None:
        return done["state"]
    batches = batch_source()
    model = copy.deepcopy(model).requires_grad_(False)
    torch.manual_seed(seed)  # the down projections' random init, independent of what ran before
    unet_wrappers = networks.inject_lora(
        model.unet, networks.lora_targets(model.unet, networks.UNET_LORA_PARENTS), rank, alpha
    )
    text_wrappers = networks.inject_lora(
        model.text, networks.lora_targets(model.text, networks.TEXT_LORA_PARENTS), rank, alpha
    )
    params = [
        p for w in (*unet_wrappers.values(), *text_wrappers.values()) for p in (w.down.weight, w.up.weight)
    ]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)
    started = time.time()
    for step in range(steps):
        xt, t, noise, ids, weights = batches.draw(step_generator(seed, 4, step), batch)
        loss = batches.loss(model(xt, t, ids, weights), noise, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 50 == 0:
            progress("lora", step + 1, steps, loss.item(), started)
    state = {
        **networks.kohya_state(unet_wrappers, "lora_unet"),
        **networks.kohya_state(text_wrappers, "lora_te_text_model"),
    }
    ckpt.save({"state": state}, final=True)
    return state
