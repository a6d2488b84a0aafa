"""The LoRA extension's parts without generation: tag arguments, key mapping, delta maths, the patcher's
exact restore, file hashes/metadata/previews."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from tests.extensions import lora_helpers as h

LoraLibrary, Network, Patcher, parse_args = h.ln.LoraLibrary, h.ln.Network, h.ln.Patcher, h.ln.parse_args
deltas, targets_for = h.deltas, h.keys.targets_for


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("film",), ("film", 1.0, 1.0, None)),
        (("film", "0.8"), ("film", 0.8, 0.8, None)),
        (("film", "0.8", "0.5"), ("film", 0.8, 0.5, None)),
        (("film", "1", "0.5", "16"), ("film", 1.0, 0.5, 16)),
        (("film", "1", "unet=0.5", "te=0.2"), ("film", 0.2, 0.5, None)),
        (("film", "te=0.3"), ("film", 0.3, 0.3, None)),
        (("film", "0.7", "dyn=8"), ("film", 0.7, 0.7, 8)),
        # A1111: only an argument that "=" splits into exactly two parts is named
        (("a=b=c", "1"), ("a=b=c", 1.0, 1.0, None)),
        (("a=b=c", "0.5", "unet=0.2"), ("a=b=c", 0.5, 0.2, None)),
        (("a=b", "0.5"), ("0.5", 1.0, 1.0, None)),  # "a=b" is named, so the name is the next one
        (("x==y", "0.4"), ("x==y", 0.4, 0.4, None)),
        # names are read verbatim (A1111): " sp " is not "sp"; numbers may carry spaces (float())
        ((" sp ", "1"), (" sp ", 1.0, 1.0, None)),
        (("film", " 0.6 "), ("film", 0.6, 0.6, None)),
        (("film", "te =0.3"), ("film", 1.0, 1.0, None)),  # the key "te " is not "te"
    ],
)
def test_tag_arguments_as_a1111_reads_them(args, expected):
    r = parse_args(args)
    assert (r.name, r.te_multiplier, r.unet_multiplier, r.dyn_dim) == expected


def test_bad_tag_arguments_raise():
    with pytest.raises(ValueError):
        parse_args(("film", "strong"))
    with pytest.raises(ValueError):
        parse_args(("",))


def test_diffusers_and_compvis_names_reach_the_same_module(tiny_bundle):
    targets = targets_for(tiny_bundle)
    attn = tiny_bundle.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q
    assert targets[h.UNET_ATTN].module is attn and targets[h.UNET_ATTN].part == "unet"
    assert targets[h.UNET_ATTN_COMPVIS].module is attn
    resnet = tiny_bundle.unet.down_blocks[0].resnets[0]
    assert targets["lora_unet_input_blocks_1_0_in_layers_2"].module is resnet.conv1
    assert targets["lora_unet_input_blocks_1_0_emb_layers_1"].module is resnet.time_emb_proj
    assert (
        targets["lora_unet_output_blocks_1_1_conv"].module is tiny_bundle.unet.up_blocks[0].upsamplers[0].conv
    )
    te = targets[h.TE_Q]
    assert te.part == "te" and te.module is tiny_bundle.text_encoders[0].encoder.layers[0].self_attn.q_proj


def test_sdxl_text_encoders_use_te1_and_te2():
    from modules.models.tiny import build_tiny_sdxl_bundle

    bundle = build_tiny_sdxl_bundle()
    targets = targets_for(bundle)
    one, two = bundle.text_encoders
    name = "text_model_encoder_layers_0_self_attn_k_proj"
    assert targets[f"lora_te1_{name}"].module is one.encoder.layers[0].self_attn.k_proj
    assert targets[f"lora_te2_{name}"].module is two.get_submodule(
        "text_model.encoder.layers.0.self_attn.k_proj"
    )
    assert f"lora_te_{name}" not in targets
    # SDXL LoRAs name the UNet the compvis way: the attention level is input_blocks 4.
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q" in targets


def test_linear_delta_is_up_down_scaled_by_alpha_over_rank():
    g = torch.Generator().manual_seed(1)
    w = h.lora_module(g, 6, 5, rank=3, alpha=1.5)
    delta, scale = deltas.compute(w, torch.Size([6, 5]))
    assert torch.allclose(delta, w["lora_up.weight"] @ w["lora_down.weight"])
    assert scale == pytest.approx(0.5)
    no_alpha = {k: v for k, v in w.items() if k != "alpha"}
    assert deltas.compute(no_alpha, torch.Size([6, 5]))[1] == 1.0


def test_conv_delta_matches_composing_the_two_convolutions():
    g = torch.Generator().manual_seed(2)
    w = h.lora_module(g, 4, 3, rank=2, alpha=None, kernel=3)
    delta, _ = deltas.compute(w, torch.Size([4, 3, 3, 3]))
    x = torch.randn(1, 3, 7, 7, generator=g)
    two_step = torch.nn.functional.conv2d(
        torch.nn.functional.conv2d(x, w["lora_down.weight"]), w["lora_up.weight"]
    )
    assert torch.allclose(torch.nn.functional.conv2d(x, delta), two_step, atol=1e-5)


def test_dyn_dim_keeps_only_the_first_ranks():
    g = torch.Generator().manual_seed(3)
    w = h.lora_module(g, 4, 4, rank=4, alpha=4.0)
    delta, scale = deltas.compute(w, torch.Size([4, 4]), dyn_dim=2)
    assert torch.allclose(delta, w["lora_up.weight"][:, :2] @ w["lora_down.weight"][:2])
    assert scale == 1.0  # alpha over the trained rank, not the kept one


def test_loha_and_lokr_deltas():
    g = torch.Generator().manual_seed(4)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    loha = {
        "hada_w1_a": r(6, 2),
        "hada_w1_b": r(2, 4),
        "hada_w2_a": r(6, 2),
        "hada_w2_b": r(2, 4),
        "alpha": torch.tensor(1.0),
    }
    delta, scale = deltas.compute(loha, torch.Size([6, 4]))
    expected = (loha["hada_w1_a"] @ loha["hada_w1_b"]) * (loha["hada_w2_a"] @ loha["hada_w2_b"])
    assert torch.allclose(delta, expected) and scale == 0.5
    lokr = {"lokr_w1": r(2, 2), "lokr_w2_a": r(3, 1), "lokr_w2_b": r(1, 2), "alpha": torch.tensor(1.0)}
    delta, scale = deltas.compute(lokr, torch.Size([6, 4]))
    assert torch.allclose(delta, torch.kron(lokr["lokr_w1"], lokr["lokr_w2_a"] @ lokr["lokr_w2_b"]))
    assert scale == 1.0
    with pytest.raises(deltas.UnsupportedModule):
        deltas.compute({"dora_scale": r(6, 1), **loha}, torch.Size([6, 4]))


def test_patch_then_restore_is_bit_identical_and_weight_zero_changes_nothing(tiny_bundle):
    before = h.state_of(tiny_bundle)
    tensors = h.sd1_lora_tensors(seed=5)
    patcher = Patcher()
    q = tiny_bundle.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.weight
    original_q = q.detach().clone()
    changed, warnings = patcher.apply(tiny_bundle, [Network(parse_args(("x", "0.5")), tensors, 1)])
    assert changed and not warnings
    up, down = tensors[f"{h.UNET_ATTN}.lora_up.weight"], tensors[f"{h.UNET_ATTN}.lora_down.weight"]
    assert torch.allclose(q, original_q + 0.5 * 0.5 * (up @ down), atol=1e-6)  # alpha 2 / rank 4, weight 0.5
    assert patcher.apply(tiny_bundle, [Network(parse_args(("x", "0.5")), tensors, 1)]) == (False, [])
    patcher.restore()
    h.assert_same_state(before, tiny_bundle)
    patcher.apply(tiny_bundle, [Network(parse_args(("x", "0")), tensors, 1)])
    h.assert_same_state(before, tiny_bundle)
    patcher.restore()


def test_a_failing_network_leaves_the_model_untouched(tiny_bundle):
    before = h.state_of(tiny_bundle)
    good = h.sd1_lora_tensors(seed=6)
    bad = {f"{h.UNET_ATTN2}.lora_up.weight": torch.zeros(32, 2), f"{h.UNET_ATTN2}.lora_down.weight": None}
    with pytest.raises(AttributeError):
        Patcher().apply(
            tiny_bundle, [Network(parse_args(("a",)), good, 1), Network(parse_args(("b",)), bad, 2)]
        )
    h.assert_same_state(before, tiny_bundle)


def test_modules_of_another_model_family_are_reported():
    from modules.models.tiny import build_tiny_bundle

    bundle = build_tiny_bundle(seed=3)
    xl_only = {
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.zeros(32, 2),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(2, 32),
    }
    patcher = Patcher()
    _, warnings = patcher.apply(bundle, [Network(parse_args(("xl",)), xl_only, 1)])
    assert warnings and "none of its 1 modules fit" in warnings[0]
    assert not patcher.active


def test_library_finds_by_name_alias_and_reports_hash_metadata_preview(tmp_path):
    folder = tmp_path / "Lora"
    path = h.write_lora(
        folder / "sub" / "film.safetensors",
        h.sd1_lora_tensors(),
        {"ss_output_name": "film_v2", "ss_network_dim": "4", "ss_tag_frequency": '{"a": {"b": 1}}'},
    )
    (folder / "sub" / "film.preview.png").write_bytes(b"png")
    library = LoraLibrary([folder, tmp_path / "missing"])
    lora = library.find("film")
    assert lora is library.find("film_v2") and lora.alias == "film_v2"
    assert lora.metadata["ss_tag_frequency"] == {"a": {"b": 1}}  # JSON values parsed, as A1111
    assert lora.preview == folder / "sub" / "film.preview.png"
    data = path.read_bytes()
    header = 8 + int.from_bytes(data[:8], "little")
    assert lora.sha256 == hashlib.sha256(data[header:]).hexdigest()  # header (metadata) excluded
    assert lora.shorthash == lora.sha256[:12]
    assert library.find_by_hash(lora.shorthash) is lora
    assert lora.item() == {"name": "film", "alias": "film_v2", "path": str(path), "metadata": lora.metadata}
    assert library.find("later") is None
    h.write_lora(folder / "later.safetensors", h.sd1_lora_tensors(seed=2))
    assert library.find("later") is not None  # a miss rescans the folders
    json.dumps([f.item() for f in library.files()])  # the API can serialise the list


def test_stored_sshs_hash_wins_as_in_a1111(tmp_path):
    path = h.write_lora(tmp_path / "x.safetensors", h.sd1_lora_tensors(), {"sshs_model_hash": "ab" * 32})
    assert LoraLibrary([tmp_path]).find("x").shorthash == "ab" * 6
    assert path.exists()
