"""Write a random-weight checkpoint with SD 1.5's exact shapes and key names (original single-file layout).

For benchmarking loading without downloading a real model:
    .venv/bin/python scripts/make_sd15_sized_checkpoint.py /tmp/sd15-random.safetensors [--dtype fp16|fp32]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modules import paths  # noqa: E402
from modules.models.bundle import Arch  # noqa: E402
from modules.models.convert import Components, components_to_checkpoint  # noqa: E402


def shapes() -> dict[str, torch.Tensor]:
    """Original-layout keys of SD 1.5, with meta tensors carrying the shapes."""
    config = paths.CONFIGS / "sd1"
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(json.loads((config / "unet" / "config.json").read_text()))
        vae = AutoencoderKL.from_config(json.loads((config / "vae" / "config.json").read_text()))
        text = CLIPTextModel(
            CLIPTextConfig.from_dict(json.loads((config / "text_encoder" / "config.json").read_text()))
        )
    text_state = {"text_model." + k: v for k, v in text.state_dict().items()}
    return components_to_checkpoint(Components(unet.state_dict(), vae.state_dict(), [text_state]), Arch.SD1)


def random_like(key: str, meta: torch.Tensor, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    if "norm" in key and key.endswith("weight"):
        return torch.ones(meta.shape, dtype=dtype)
    return (torch.randn(meta.shape, generator=generator) * 0.02).to(dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    args = parser.parse_args()
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    generator = torch.Generator().manual_seed(0)
    state = {k: random_like(k, v, generator, dtype) for k, v in shapes().items()}
    save_file(state, str(args.output))
    count = sum(t.numel() for t in state.values())
    print(
        f"wrote {args.output}: {len(state)} tensors, {count:,} parameters, {args.output.stat().st_size:,} bytes"
    )


if __name__ == "__main__":
    main()
