"""Train the bundled demo model (coloured shapes, SD1 family) on CPU, plus its TI embedding and LoRA.

    python scripts/train_demo_model.py            # everything, about an hour on 2 idle cores
    python scripts/train_demo_model.py --quick    # a few minutes, to check the pipeline end to end

The VAE trains first; then the decoder's second stage runs in a child process on the other core while
the UNet and text encoder train (the diffusion stage needs only the frozen encoder).

Seeded and resumable: stage states live in --work-dir; run the same command again to continue an
interrupted run, or pass --fresh to start over. Outputs: the checkpoint (through the project's own
save_checkpoint), the "demoteal" embedding and the pastel LoRA.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modules import paths  # noqa: E402
from modules.models import recommended  # noqa: E402
from modules.models.loader import save_checkpoint  # noqa: E402
from scripts.demo import networks, stages  # noqa: E402

CHECKPOINT = paths.BUNDLED_MODELS / "demo-shapes-sd1.safetensors"
EMBEDDING = paths.ASSETS / "embeddings" / "demoteal.safetensors"
LORA = (
    paths.ASSETS / "lora" / "demo-pastel.safetensors"
)  # not under assets/models: that folder is scanned for checkpoints


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "demo-model-train")
    parser.add_argument("--fresh", action="store_true", help="discard saved stage states first")
    parser.add_argument("--quick", action="store_true", help="tiny step counts, outputs to the work dir")
    parser.add_argument(
        "--output-dir", type=Path, help="write the three files here instead of assets/ (to compare first)"
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--images", type=int, default=12000)
    parser.add_argument("--vae-steps", type=int, default=1000)
    parser.add_argument("--decoder-steps", type=int, default=800)
    parser.add_argument("--unet-steps", type=int, default=6000)
    parser.add_argument("--unet-lr", type=float, default=2e-3)
    parser.add_argument("--ti-steps", type=int, default=600)
    parser.add_argument("--ti-lr", type=float, default=3e-2)
    parser.add_argument("--lora-steps", type=int, default=150)
    # One thread: with other processes on a 2-core machine, two OpenMP threads measured 3-6x slower.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--decoder-only", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.vae_steps, args.decoder_steps = 2000, 100, 50
        args.unet_steps, args.ti_steps, args.lora_steps = 150, 20, 20
    return args


def outputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    folder = args.output_dir or (args.work_dir if args.quick else None)
    if folder is not None:
        return folder / CHECKPOINT.name, folder / EMBEDDING.name, folder / LORA.name
    return CHECKPOINT, EMBEDDING, LORA


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.fresh and args.work_dir.exists():
        shutil.rmtree(args.work_dir)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    # Datasets are rendered and encoded only when a stage that needs them still has work to do.
    data = functools.cache(lambda: stages.Dataset.render(args.images, args.seed))
    vae = stages.train_vae(data, args.work_dir, args.vae_steps, args.seed)
    if args.decoder_only:
        stages.train_decoder(vae, data, args.work_dir, args.decoder_steps, args.seed)
        return
    decoder = None
    if not stages.Checkpointer(args.work_dir, "decoder").done.exists():
        child = [arg for arg in (argv if argv is not None else sys.argv[1:]) if arg != "--fresh"]
        decoder = subprocess.Popen([sys.executable, __file__, *child, "--decoder-only"])

    def batches(source: Callable[[], stages.Dataset]) -> Callable[[], stages.DiffusionBatches]:
        return lambda: stages.DiffusionBatches(
            source(), stages.encode_dataset(vae, source()), vae.config.scaling_factor
        )

    model = stages.train_diffusion(batches(data), args.work_dir, args.unet_steps, args.seed, lr=args.unet_lr)
    if decoder is not None and decoder.wait() != 0:
        raise SystemExit("the decoder stage failed (see its output above)")
    vae = stages.train_decoder(vae, data, args.work_dir, args.decoder_steps, args.seed)
    checkpoint, embedding, lora = outputs(args)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    # fp16 halves the file; the loader upcasts to the runtime dtype.
    bundle = networks.make_bundle(model.unet, vae, model.text)
    defaults = recommended.encode(stages.demo_data.RECOMMENDED)
    save_checkpoint(bundle, checkpoint, dtype=torch.float16, metadata=defaults)
    print(f"wrote {checkpoint} ({checkpoint.stat().st_size / 1e6:.1f} MB)", flush=True)

    teal = functools.cache(
        lambda: stages.Dataset.render(args.images // 4, args.seed + 1, stages.demo_data.TEAL, emphasis=False)
    )
    vector = stages.train_embedding(
        model, batches(teal), args.work_dir, args.ti_steps, args.seed, lr=args.ti_lr
    )
    embedding.parent.mkdir(parents=True, exist_ok=True)
    save_file({"emb_params": vector.to(torch.float32).contiguous()}, str(embedding))
    print(f"wrote {embedding}", flush=True)

    washed = functools.cache(
        lambda: stages.pastel(stages.Dataset.render(args.images // 4, args.seed + 2, emphasis=False))
    )
    state = stages.train_lora(model, batches(washed), args.work_dir, args.lora_steps, args.seed)
    lora.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_network_alpha": "4.0"}
    save_file({k: v.to(torch.float16).contiguous() for k, v in state.items()}, str(lora), metadata)
    print(f"wrote {lora} ({len(state)} tensors); total {(time.time() - started) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
