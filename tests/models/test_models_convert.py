"""Key mapping between original and diffusers layouts, checked on the real architectures' key sets."""

from __future__ import annotations

import json

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel

from modules import paths
from modules.models import convert


def meta_state(model_class, name: str, part: str) -> dict:  # noqa: ANN001
    config = json.loads((paths.CONFIGS / name / part / "config.json").read_text())
    with init_empty_weights():
        return model_class.from_config(config).state_dict()


@pytest.mark.parametrize(
    ("name", "key_count", "expected"),
    [
        (
            "sd1",
            686,
            ["output_blocks.2.1.conv.weight", "output_blocks.5.2.conv.weight", "input_blocks.9.0.op.bias"],
        ),
        (
            "sd2",
            686,
            ["input_blocks.1.1.proj_in.weight", "middle_block.1.transformer_blocks.0.attn2.to_k.weight"],
        ),
        (
            "sdxl",
            1680,
            [
                "label_emb.0.0.weight",
                "output_blocks.2.2.conv.weight",  # SDXL's lowest level has attention before its upsampler
                "input_blocks.7.1.transformer_blocks.9.ff.net.2.weight",
                "input_blocks.6.0.op.weight",
            ],
        ),
    ],
)
def test_unet_keys_match_published_layout(name: str, key_count: int, expected: list[str]) -> None:
    diffusers_state = meta_state(UNet2DConditionModel, name, "unet")
    original = convert.unet_to_original(diffusers_state)
    assert len(original) == key_count
    assert set(expected) <= set(original)
    assert not any(k.startswith(("down_blocks", "up_blocks", "mid_block")) for k in original)
    assert list(convert.unet_to_diffusers(original)) == list(diffusers_state)


def test_vae_layout_and_attention_reshape() -> None:
    state = {k: torch.zeros(v.shape) for k, v in meta_state(AutoencoderKL, "sd1", "vae").items()}
    original = convert.vae_to_original(state)
    assert len(original) == 248
    assert original["encoder.mid.attn_1.q.weight"].shape == (512, 512, 1, 1)
    # LDM numbers decoder levels from the bottom: diffusers' first up block (512 ch) is up.3.
    assert (
        original["decoder.up.3.upsample.conv.weight"].shape
        == state["decoder.up_blocks.0.upsamplers.0.conv.weight"].shape
    )
    assert "decoder.up.0.block.0.nin_shortcut.weight" in original  # 256 -> 128 channels
    back = convert.vae_to_diffusers({**original, "loss.logvar": torch.zeros(())})
    assert set(back) == set(state)
    assert back["encoder.mid_block.attentions.0.to_q.weight"].shape == (512, 512)


def test_openclip_fused_qkv_and_projection() -> None:
    generator = torch.Generator().manual_seed(0)
    qkv = torch.randn(12, 4, generator=generator)
    projection = torch.randn(4, 3, generator=generator)
    original = {
        "transformer.resblocks.0.attn.in_proj_weight": qkv,
        "transformer.resblocks.0.attn.in_proj_bias": torch.arange(12.0),
        "transformer.resblocks.0.mlp.c_fc.weight": torch.ones(8, 4),
        "text_projection": projection,
        "positional_embedding": torch.ones(77, 4),
        "logit_scale": torch.tensor(4.6),
    }
    hf = convert.openclip_to_hf(original)
    assert torch.equal(hf["text_model.encoder.layers.0.self_attn.k_proj.weight"], qkv[4:8])
    assert torch.equal(hf["text_model.encoder.layers.0.self_attn.v_proj.bias"], torch.arange(8.0, 12.0))
    assert torch.equal(hf["text_projection.weight"], projection.t())
    assert "logit_scale" not in hf and "text_model.encoder.layers.0.mlp.fc1.weight" in hf
    back = convert.hf_to_openclip(hf)
    assert set(back) == set(original) - {"logit_scale"}
    assert all(torch.equal(back[k], original[k]) for k in back)


def test_old_transformers_clip_keys_gain_text_model_level() -> None:
    hf = convert.clip_to_hf(
        {
            "embeddings.token_embedding.weight": torch.ones(2),
            "text_model.embeddings.position_ids": torch.ones(2),
        }
    )
    assert list(hf) == ["text_model.embeddings.token_embedding.weight"]
