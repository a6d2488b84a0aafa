"""Family detection from keys, clear errors for other files, and the v-prediction decision."""

from __future__ import annotations

import json

import pytest
import torch

from modules.models import detect
from modules.models.bundle import Arch
from modules.models.loader import load_checkpoint, save_checkpoint
from modules.models.storage import read_state_dict, save_state_dict

from .conftest import tiny

UNET = "model.diffusion_model.input_blocks.0.0.weight"


@pytest.mark.parametrize(
    ("keys", "arch"),
    [
        ([UNET, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"], Arch.SD1),
        ([UNET, "cond_stage_model.transformer.embeddings.token_embedding.weight"], Arch.SD1),
        ([UNET, "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"], Arch.SD2),
        (
            [
                UNET,
                "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
                "conditioner.embedders.1.model.ln_final.weight",
            ],
            Arch.SDXL,
        ),
    ],
)
def test_detection_table(keys: list[str], arch: Arch) -> None:
    assert detect.detect_arch(keys) is arch


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            ["lora_unet_down_blocks_0.alpha", "lora_te_text_model.alpha"],
            "top-level prefixes: lora_te_text_model",
        ),
        ([], "no UNet keys (model.diffusion_model.*) found"),
        ([UNET, "first_stage_model.decoder.conv_in.weight"], "prefixes: first_stage_model, model"),
        ([UNET, "conditioner.embedders.0.model.ln_final.weight"], "refiner"),
    ],
)
def test_unrecognised_files_name_what_was_found(keys: list[str], message: str) -> None:
    with pytest.raises(detect.DetectionError) as error:
        detect.detect_arch(keys)
    assert message in str(error.value)


def test_variant_names() -> None:
    assert [detect.Detected(Arch.SD1, c).variant for c in (4, 9, 5)] == ["", "inpainting", "depth"]
    assert detect.skeleton_name(Arch.SD2, 5) == "sd2-depth"
    assert detect.skeleton_name(Arch.SD2, 4, "v_prediction") == "sd2-v"
    assert detect.skeleton_name(Arch.SD1, 9) == "sd1-inpainting"


def test_shapes_give_the_config(tmp_path) -> None:
    bundle = tiny(Arch.SDXL)
    save_checkpoint(bundle, tmp_path / "xl.safetensors")
    config = load_checkpoint(tmp_path / "xl.safetensors").unet.config
    assert config.block_out_channels == [32, 64]
    assert list(config.transformer_layers_per_block) == [1, 2]
    assert config.down_block_types == ["DownBlock2D", "CrossAttnDownBlock2D"]
    assert (config.layers_per_block, config.cross_attention_dim, config.addition_time_embed_dim) == (2, 64, 8)


def test_real_sized_heads_come_from_the_skeleton() -> None:
    skeleton = detect.load_skeleton("sd2", "unet")
    assert detect._head_dims(skeleton["attention_head_dim"], [320, 640, 1280, 1280]) == [5, 10, 20, 20]
    assert detect._head_dims(detect.load_skeleton("sd1", "unet")["attention_head_dim"], [320]) == 8


@pytest.mark.parametrize(
    ("yaml", "expected"), [('  parameterization: "v"\n', "v_prediction"), ("model: {}\n", "epsilon")]
)
def test_yaml_beside_checkpoint_decides(tmp_path, yaml: str, expected: str) -> None:
    path = tmp_path / "model.safetensors"
    save_checkpoint(tiny(Arch.SD2, prediction="v_prediction"), path)
    (tmp_path / "model.yaml").write_text(f"model:\n  params:\n  {yaml}")
    assert load_checkpoint(path).prediction_type == expected


def test_probe_used_without_yaml_or_hints(tmp_path, monkeypatch) -> None:
    path = tmp_path / "sd2.safetensors"
    save_checkpoint(tiny(Arch.SD2), path)
    # Tiny models need their head-count hints, so only the prediction type is removed from the metadata.
    state, metadata = read_state_dict(path)
    hints = detect.metadata_hints(metadata)
    del hints["prediction_type"]
    save_state_dict(state, path, {detect.METADATA_KEY: json.dumps(hints)})
    calls = []
    monkeypatch.setattr(detect, "probe_v_prediction", lambda unet: calls.append(unet) or True)
    assert load_checkpoint(path).prediction_type == "v_prediction"
    assert len(calls) == 1


class _Constant(torch.nn.Module):
    """A stand-in UNet returning ``sign * 3`` everywhere: v-like (negative) or epsilon-like (positive)."""

    def __init__(self, sign: float) -> None:
        super().__init__()
        self.sign = sign
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = type("C", (), {"in_channels": 4, "cross_attention_dim": 8})()

    def forward(self, x, t, encoder_hidden_states):  # noqa: ANN001, ANN201
        assert int(t) == 999 and encoder_hidden_states.shape == (1, 2, 8)
        return type("Out", (), {"sample": torch.full_like(x, 3.0 * self.sign)})()


def test_probe_threshold() -> None:
    assert detect.probe_v_prediction(_Constant(-1.0)) is True
    assert detect.probe_v_prediction(_Constant(1.0)) is False
