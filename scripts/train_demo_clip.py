"""Train the bundled demo interrogator: a small CLIP (image and text towers) for the demo model's world.

    python scripts/train_demo_clip.py            # about 20 minutes on one idle core
    python scripts/train_demo_clip.py --quick    # about a minute, to check the pipeline end to end

The pictures are modules/demo_data.py's renders of every colour+shape pair (the held-out pairs too: they
are held out from the diffusion model, and the interrogator must name whatever it is shown). Pictures the
demo model generates are softer, wobblier and off-colour compared with the renders, so most renders go
through the demo checkpoint's own VAE with a little noise on the latents (generated pictures are that
VAE's decodings of imperfect latents), then get blur, colour shifts and pixel noise. Generating training
pictures with the demo model instead would cost about half a second each, and its labels would be the
prompt's, which the model does not always draw.

Two contrastive losses, both InfoNCE over cosine similarities scaled by CLIP's learned temperature:

- each picture against every phrase of the lists the model is made for (``demo-shapes``,
  ``demo-backgrounds``): exactly the ranking "fast" interrogation does;
- pictures against captions in the batch (demo captions, or the list phrases joined as "best" mode
  joins them), with every caption of the same colour, shape and background counted as a positive.

Seeded (same seed, same machine, same model). Output: a ``save_pretrained`` folder (fp16 weights, the
processor, the CLIP-L tokenizer files and ``phrase_lists.txt``) at assets/interrogate/demo-shapes-clip.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modules import demo_data, paths  # noqa: E402
from modules.interrogate import phrases  # noqa: E402
from modules.interrogate.models import BUNDLED_CLIP  # noqa: E402

CHECKPOINT = paths.BUNDLED_MODELS / "demo-shapes-sd1.safetensors"
LISTS = ("demo-shapes", "demo-backgrounds")  # the lists the model is trained on, in interrogation order
IMAGE_SIZE = demo_data.SIZE
PATCH = 8
# CLIP's own normalisation, so the folder works with the stock CLIPImageProcessor settings.
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
VALIDATION = 256  # pictures of another seed, ranked now and then to show progress
CLEAN_SHARE = 0.25  # renders kept as drawn (a user may interrogate a clean picture too)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "demo-clip-train")
    parser.add_argument("--quick", action="store_true", help="tiny counts, output to the work dir")
    parser.add_argument("--output-dir", type=Path, help="write the model folder here instead of assets/")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--images", type=int, default=12000)
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--latent-noise", type=float, default=0.25, help="most noise on scaled VAE latents")
    parser.add_argument(
        "--mask-loss", action=argparse.BooleanOptionalAction, default=True, help="train patch tokens on masks"
    )
    parser.add_argument("--report-every", type=int, default=100, help="steps between validations")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.steps, args.batch = 512, 40, 32
    return args


def clip_config():
    """CLIP-L's layout at toy width: the full 49408-token table (only the list words ever train), 64 px
    pictures in 8x8 patches."""
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config={
            "vocab_size": 49408,
            "hidden_size": 64,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
        },
        vision_config={
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH,
            "hidden_size": 96,
            "intermediate_size": 384,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
        },
        projection_dim=64,
    )


def make_processor():
    from transformers import CLIPImageProcessorPil, CLIPProcessor, CLIPTokenizer

    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    images = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size=size, image_mean=MEAN, image_std=STD
    )
    return CLIPProcessor(images, CLIPTokenizer.from_pretrained(paths.CLIP_L_TOKENIZER))


# --- labels -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    """What a phrase or a picture says: shape colour, shape, background colour."""

    colour: str
    shape: str
    background: str


_SHAPE = re.compile(r"\b(?P<colour>\w+) (?P<shape>circle|square|triangle)\b")
_BACKGROUND = re.compile(r"\bon an? (?P<background>\w+) background\b")


def read_shape(text: str) -> tuple[str, str] | None:
    """``(colour, shape)`` from words such as "a red circle", else None."""
    match = _SHAPE.search(text)
    return (match["colour"], match["shape"]) if match else None


def read_background(text: str) -> str | None:
    match = _BACKGROUND.search(text)
    return match["background"] if match else None


def list_phrases() -> tuple[list[str], list[str]]:
    """The shipped demo lists' phrases; the training targets are these exact strings."""
    shapes, backgrounds = phrases.load_lists(LISTS, None)
    return list(shapes.phrases), list(backgrounds.phrases)


# --- pictures -----------------------------------------------------------------------------------------


def all_pairs_scene(rng: np.random.Generator) -> demo_data.Scene:
    """A scene of any colour+shape pair (held-out ones too), on a background of another colour."""
    colour = list(demo_data.COLOURS)[rng.integers(len(demo_data.COLOURS))]
    backgrounds = [c for c in demo_data.COLOURS if c != colour]
    return demo_data.Scene(
        colour=colour,
        shape=demo_data.SHAPES[rng.integers(len(demo_data.SHAPES))],
        background=backgrounds[rng.integers(len(backgrounds))],
        position=list(demo_data.POSITIONS)[rng.integers(len(demo_data.POSITIONS))],
        size=list(demo_data.SIZES)[rng.integers(len(demo_data.SIZES))],
    )


@torch.no_grad()
def vae_round_trip(images: np.ndarray, rng: np.random.Generator, most_noise: float) -> np.ndarray:
    """Renders as the demo model's VAE decodes them from slightly wrong latents (uint8 NHWC)."""
    from modules.models.loader import load_checkpoint

    vae = load_checkpoint(CHECKPOINT).vae.eval()
    scaling = vae.config.scaling_factor
    out = np.empty_like(images)
    for start in range(0, len(images), 64):
        x = torch.from_numpy(images[start : start + 64]).permute(0, 3, 1, 2).float() / 127.5 - 1
        latents = vae.encode(x).latent_dist.mean * scaling
        sigma = torch.from_numpy(rng.uniform(0, most_noise, (len(x), 1, 1, 1))).float()
        noise = torch.from_numpy(rng.standard_normal(latents.shape)).float()
        decoded = vae.decode((latents + sigma * noise) / scaling).sample
        pixels = ((decoded.clamp(-1, 1) + 1) * 127.5).round().byte()
        out[start : start + 64] = pixels.permute(0, 2, 3, 1).numpy()
    return out


def coverage(images: np.ndarray, scenes: list[demo_data.Scene]) -> np.ndarray:
    """How much of each pixel the shape covers (float NHW in [0, 1]), read back from clean renders: a
    render is ``alpha * fg + (1 - alpha) * bg``, bg is the corners' median, fg the shape's centre pixel."""
    masks = np.empty(images.shape[:3], np.float32)
    for i, (image, scene) in enumerate(zip(images.astype(np.float32), scenes, strict=True)):
        background = np.median(image[[0, 0, -1, -1], [0, -1, 0, -1]], axis=0)
        cx, cy = demo_data.POSITIONS[scene.position]
        foreground = image[int(cy * IMAGE_SIZE), int(cx * IMAGE_SIZE)]
        span = foreground - background
        masks[i] = np.clip((image - background) @ span / max(float(span @ span), 1.0), 0, 1)
    return masks


def make_pictures(
    count: int, seed: int, most_noise: float, cache: Path
) -> tuple[np.ndarray, np.ndarray, list[demo_data.Scene]]:
    """Pictures (renders, most round-tripped), the shapes' coverage masks and the scenes; the pictures
    are kept in ``cache`` for the next run."""
    rng = np.random.default_rng(seed)
    scenes = [all_pairs_scene(rng) for _ in range(count)]
    path = cache / f"pictures-{count}-{seed}-{most_noise:g}.npz"
    if path.is_file():
        with np.load(path) as saved:
            return saved["images"], saved["masks"], scenes
    images = np.stack([demo_data.render(s, rng) for s in scenes])
    masks = coverage(images, scenes)
    clean = int(count * CLEAN_SHARE)
    images[clean:] = vae_round_trip(images[clean:], rng, most_noise)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=images, masks=masks)
    return images, masks, scenes


def augment(
    images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float NCHW in [0, 1] -> CLIP-normalised, after random flips, blur, colour shifts and noise; the
    masks (NHW) flipped alike."""
    n = len(images)

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, *shape, generator=generator)

    flip = torch.rand(n, generator=generator) < 0.5  # left-right only: an upside-down triangle is no triangle
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    masks = torch.where(flip[:, None, None], masks.flip(-1), masks)
    blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    images = torch.lerp(images, blurred, uniform(0, 1, 1, 1, 1))
    images = images * uniform(0.88, 1.08, 3, 1, 1) + uniform(-0.06, 0.06, 3, 1, 1)
    images = images + uniform(0, 0.03, 1, 1, 1) * torch.randn(images.shape, generator=generator)
    images = images.clamp(0, 1)
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    return (images - mean) / std, masks


def caption_variant(scene: demo_data.Scene, rng: np.random.Generator) -> str:
    """A demo caption (with or without size and position) or the list phrases joined as "best" mode does."""
    choice = rng.integers(4)
    if choice == 0:
        return f"a {scene.colour} {scene.shape}, on a {scene.background} background"
    return scene.caption(with_size=bool(choice & 1), with_position=bool(choice & 2))


# --- training -----------------------------------------------------------------------------------------


def phrase_targets(scenes: list[demo_data.Scene], shapes: list[str], backgrounds: list[str]) -> torch.Tensor:
    """Per scene: the index of its shape phrase and of its background phrase."""
    shape_index = {read_shape(p): i for i, p in enumerate(shapes)}
    background_index = {read_background(p): i for i, p in enumerate(backgrounds)}
    return torch.tensor([[shape_index[(s.colour, s.shape)], background_index[s.background]] for s in scenes])


def embed(model, tokenizer, texts: list[str]) -> torch.Tensor:
    tokens = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    features = model.get_text_features(**tokens)
    features = features if isinstance(features, torch.Tensor) else features.pooler_output
    return F.normalize(features, dim=-1)


def patch_targets(masks: torch.Tensor) -> torch.Tensor:
    """NHW coverage -> per patch token (row-major, as CLIP flattens its patch grid) its 8x8 pixels."""
    n, side = len(masks), IMAGE_SIZE // PATCH
    blocks = masks.reshape(n, side, PATCH, side, PATCH).permute(0, 1, 3, 2, 4)
    return blocks.reshape(n, side * side, PATCH * PATCH)


def loss_step(model, mask_head, tokenizer, pixels, masks, scenes, targets, lists, rng) -> torch.Tensor:
    output = model.get_image_features(pixel_values=pixels)
    image = F.normalize(output.pooler_output, dim=-1)
    scale = model.logit_scale.exp().clamp(max=100)
    shapes, backgrounds = lists
    phrase_loss = F.cross_entropy(scale * image @ embed(model, tokenizer, shapes).T, targets[:, 0])
    phrase_loss += F.cross_entropy(scale * image @ embed(model, tokenizer, backgrounds).T, targets[:, 1])
    text = embed(model, tokenizer, [caption_variant(s, rng) for s in scenes])
    keys = [(s.colour, s.shape, s.background) for s in scenes]
    same = torch.tensor([[a == b for b in keys] for a in keys], dtype=torch.float32)
    positives = same / same.sum(dim=1, keepdim=True)
    logits = scale * image @ text.T
    caption_loss = -(positives * logits.log_softmax(1)).sum(1).mean()
    caption_loss -= (positives * logits.T.log_softmax(1)).sum(1).mean()
    loss = phrase_loss + caption_loss / 2
    if mask_head is not None:  # the patch tokens say which of their pixels the shape covers
        predicted = mask_head(output.last_hidden_state[:, 1:])
        loss = loss + F.binary_cross_entropy_with_logits(predicted, patch_targets(masks))
    return loss


@torch.no_grad()
def validate(model, tokenizer, pixels: torch.Tensor, targets: torch.Tensor, lists) -> str:
    """Phrase-ranking accuracy (colour, shape, background) on pictures kept out of training."""
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    image = model.get_image_features(pixel_values=(pixels.float() / 255 - mean) / std)
    image = F.normalize(image.pooler_output, dim=-1)
    shapes, backgrounds = lists
    shape = (image @ embed(model, tokenizer, shapes).T).argmax(1)
    background = (image @ embed(model, tokenizer, backgrounds).T).argmax(1)
    said = [read_shape(shapes[int(i)]) for i in shape]
    truth = [read_shape(shapes[int(i)]) for i in targets[:, 0]]
    colour_ok = np.mean([a[0] == b[0] for a, b in zip(said, truth, strict=True)])
    shape_ok = np.mean([a[1] == b[1] for a, b in zip(said, truth, strict=True)])
    background_ok = float((background == targets[:, 1]).float().mean())
    return f"colour {colour_ok:.2f} shape {shape_ok:.2f} background {background_ok:.2f}"


def train(args: argparse.Namespace, folder: Path):
    from transformers import CLIPModel

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    started = time.time()
    images, masks, scenes = make_pictures(args.images, args.seed, args.latent_noise, args.work_dir)
    held_images, _, held_scenes = make_pictures(VALIDATION, args.seed + 1, args.latent_noise, args.work_dir)
    print(f"{len(images)} pictures in {time.time() - started:.0f} s", flush=True)
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    masks = torch.from_numpy(masks)
    held_pixels = torch.from_numpy(held_images).permute(0, 3, 1, 2).contiguous()
    lists = list_phrases()
    targets = phrase_targets(scenes, *lists)
    held_targets = phrase_targets(held_scenes, *lists)
    model = CLIPModel(clip_config())
    # Training only (not saved): a from-scratch ViT found shapes slowly from the phrase loss alone.
    width = model.config.vision_config.hidden_size
    mask_head = torch.nn.Linear(width, PATCH * PATCH) if args.mask_loss else None
    tokenizer = make_processor().tokenizer
    trained = [*model.parameters(), *(mask_head.parameters() if mask_head is not None else [])]
    optimizer = torch.optim.AdamW(trained, lr=args.lr, weight_decay=0.05)
    generator = torch.Generator().manual_seed(args.seed)
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(s / args.steps, 1)))
    )
    for step in range(args.steps):
        index = torch.randint(len(images), (args.batch,), generator=generator)
        batch, batch_masks = augment(pixels[index].float() / 255, masks[index], generator)
        chosen = [scenes[int(i)] for i in index]
        loss = loss_step(model, mask_head, tokenizer, batch, batch_masks, chosen, targets[index], lists, rng)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        schedule.step()
        if step % args.report_every == 0 or step == args.steps - 1:
            elapsed = (time.time() - started) / 60
            held = validate(model, tokenizer, held_pixels, held_targets, lists)
            print(
                f"step {step}/{args.steps} loss {loss.item():.3f}, held-out {held} ({elapsed:.1f} min)",
                flush=True,
            )
            save(model, folder)  # an interrupted run leaves its latest model
    return model


def save(model, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # fp16 halves the file; the config says float32 so transformers loads (and computes) in fp32.
    half = copy.deepcopy(model).half()
    half.save_pretrained(folder)
    half.config.dtype = torch.float32
    half.config.save_pretrained(folder)
    make_processor().save_pretrained(folder)
    # The slow-tokenizer files the repo ships (1.5 MB) instead of the fast tokenizer's 3.6 MB JSON: the
    # fast tokenizer is rebuilt from them on load.
    (folder / "tokenizer.json").unlink()
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(paths.CLIP_L_TOKENIZER / name, folder / name)
    (folder / phrases.LIST_NAMES_FILE).write_text("\n".join(LISTS) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    print(f"wrote {folder} ({size:.1f} MB)", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = args.output_dir or (args.work_dir / BUNDLED_CLIP.name if args.quick else BUNDLED_CLIP)
    train(args, folder)


if __name__ == "__main__":
    main()
