"""The diffusers skeletons in configs/ have the published sizes (parameter counts on the meta device)."""

from __future__ import annotations

import json

import pytest
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from modules import paths

SD15_UNET = 859_520_964
SD15_INPAINT_UNET = 859_535_364
SD2_UNET = 865_910_724
SDXL_UNET = 2_567_463_684
SD_VAE = 83_653_863
CLIP_L = 123_060_480
OPEN_CLIP_H_23_LAYERS = 340_387_840  # diffusers' SD2 text encoder (last of 24 layers cut)
OPEN_CLIP_BIG_G = 694_659_840  # with its 1280x1280 text projection


def count(model_class, config) -> int:  # noqa: ANN001
    with init_empty_weights():
        model = model_class(config)
    return sum(p.numel() for p in model.parameters())


def component(name: str, part: str) -> dict:
    return json.loads((paths.CONFIGS / name / part / "config.json").read_text())


@pytest.mark.parametrize(
    ("name", "unet_params", "in_channels"),
    [
        ("sd1", SD15_UNET, 4),
        ("sd1-inpainting", SD15_INPAINT_UNET, 9),
        ("sd2", SD2_UNET, 4),
        ("sd2-v", SD2_UNET, 4),
        ("sd2-depth", SD2_UNET + 320 * 9, 5),  # one more input channel of the 3x3 conv_in
        ("sdxl", SDXL_UNET, 4),
    ],
)
def test_unet_and_vae_sizes(name: str, unet_params: int, in_channels: int) -> None:
    unet = component(name, "unet")
    assert unet["in_channels"] == in_channels
    assert count(UNet2DConditionModel.from_config, unet) == unet_params
    assert count(AutoencoderKL.from_config, component(name, "vae")) == SD_VAE


@pytest.mark.parametrize(
    ("name", "expected"), [("sd1", CLIP_L), ("sd2", OPEN_CLIP_H_23_LAYERS), ("sdxl", CLIP_L)]
)
def test_text_encoder_sizes(name: str, expected: int) -> None:
    config = CLIPTextConfig.from_dict(component(name, "text_encoder"))
    assert count(CLIPTextModel, config) == expected


def test_sdxl_second_text_encoder() -> None:
    config = CLIPTextConfig.from_dict(component("sdxl", "text_encoder_2"))
    assert count(CLIPTextModelWithProjection, config) == OPEN_CLIP_BIG_G


def test_sdxl_added_embedding_is_consistent() -> None:
    unet = component("sdxl", "unet")
    pooled = component("sdxl", "text_encoder_2")["projection_dim"]
    assert unet["projection_class_embeddings_input_dim"] == pooled + 6 * unet["addition_time_embed_dim"]
    assert unet["cross_attention_dim"] == 768 + 1280


@pytest.mark.parametrize("name", ["sd1", "sd1-inpainting", "sd2", "sd2-v", "sd2-depth", "sdxl"])
def test_every_skeleton_is_complete(name: str) -> None:
    folder = paths.CONFIGS / name
    index = json.loads((folder / "model_index.json").read_text())
    for part, (library, _) in ((k, v) for k, v in index.items() if isinstance(v, list) and v[0]):
        file = "scheduler_config.json" if part == "scheduler" else "config.json"
        assert library in ("diffusers", "transformers")
        if not part.startswith("tokenizer"):
            assert (folder / part / file).is_file(), part
    prediction = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())["prediction_type"]
    assert prediction == ("v_prediction" if name == "sd2-v" else "epsilon")
