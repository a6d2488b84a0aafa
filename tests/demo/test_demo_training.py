"""The demo model's trainer conditions on exactly what the app feeds the model at generation time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modules import demo_data
from modules.conditioning.encoder import PromptEncoder
from modules.models.loader import load_checkpoint
from modules.paths import BUNDLED_MODELS
from scripts.demo import networks, stages


@pytest.fixture(scope="module")
def bundle():
    return load_checkpoint(BUNDLED_MODELS / "demo-shapes-sd1.safetensors")


@pytest.mark.parametrize(
    "caption",
    [
        "a red circle on a blue background",
        "a large (red:1.4) circle on a blue background, top left",
        "a (green:0.6) square on a (white:1.2) background",
        "",
    ],
)
def test_training_conditioning_equals_the_apps_for_emphasised_captions(bundle, caption):
    ids, weights = networks.CaptionTokenizer().batch([caption])
    with torch.no_grad():
        trained = networks.emphasise(networks.encode_text(bundle.text_encoders[0], ids), weights)
        app = PromptEncoder(bundle).encode(caption).tokens
    torch.testing.assert_close(trained, app, atol=1e-5, rtol=1e-4)


def test_emphasis_weights_land_on_the_colour_tokens():
    tokenizer = networks.CaptionTokenizer()
    ids, weights = tokenizer.ids_and_weights("a (red:1.4) circle on a (blue:0.6) background")
    plain_ids, plain_weights = tokenizer.ids_and_weights("a red circle on a blue background")
    assert ids == plain_ids and set(plain_weights) == {1.0}
    red, blue = tokenizer.ids("red")[1], tokenizer.ids("blue")[1]
    assert weights[ids.index(red)] == 1.4 and weights[ids.index(blue)] == 0.6
    assert sorted(set(weights)) == [0.6, 1.0, 1.4]


def test_emphasised_scenes_caption_and_render_the_weight():
    scene = demo_data.Scene("red", "square", "white", "center", "large", colour_weight=0.5)
    assert scene.caption() == "a large (red:0.5) square on a white background, center"
    weak = demo_data.judge(demo_data.render(scene)).fg_mean
    strong = demo_data.judge(
        demo_data.render(demo_data.Scene("red", "square", "white", "center", "large", 1.5))
    )
    assert strong.fg_mean[0] - strong.fg_mean[1] > weak[0] - weak[1] + 100  # far more saturated red


def test_training_data_carries_emphasis_now_and_then():
    data = stages.Dataset.render(400, seed=3)
    shares = np.mean([(s.colour_weight != 1, s.background_weight != 1) for s in data.scenes], axis=0)
    assert 0.2 < shares[0] < 0.4 and 0.08 < shares[1] < 0.22
    assert {s.colour_weight for s in data.scenes} <= {1.0, *stages.EMPHASIS_WEIGHTS}
    plain = stages.Dataset.render(50, seed=3, emphasis=False)
    assert all(s.colour_weight == s.background_weight == 1.0 for s in plain.scenes)


def test_min_snr_weights_only_the_cleanest_steps_down():
    batches = stages.DiffusionBatches.__new__(stages.DiffusionBatches)
    batches.alphas = stages.scaled_linear_alphas_cumprod().float()
    noise = torch.zeros(2, 4, 8, 8)
    prediction = torch.ones(2, 4, 8, 8)
    clean, noisy = torch.tensor([0, 0]), torch.tensor([900, 900])
    assert batches.loss(prediction, noise, noisy).item() == pytest.approx(1.0)
    assert batches.loss(prediction, noise, clean).item() < 0.01


@pytest.mark.slow
def test_the_training_script_runs_end_to_end_and_resumes(tmp_path):
    """A few steps of every stage (the decoder in its child process), then the app loads the outputs."""
    from safetensors.torch import load_file

    from scripts import train_demo_model

    out = tmp_path / "out"
    argv = ["--work-dir", str(tmp_path / "work"), "--output-dir", str(out), "--images", "96"]
    argv += [
        "--vae-steps",
        "2",
        "--decoder-steps",
        "2",
        "--unet-steps",
        "3",
        "--ti-steps",
        "2",
        "--lora-steps",
        "2",
    ]
    threads = torch.get_num_threads()
    try:
        train_demo_model.main(argv)
    finally:
        torch.set_num_threads(threads)  # main() pins one thread for the training process
    stages_done = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert stages_done == ["decoder.pt", "diffusion.pt", "embedding.pt", "lora.pt", "vae.pt"]
    bundle = load_checkpoint(out / "demo-shapes-sd1.safetensors")
    assert bundle.arch.value == "sd1" and bundle.text_encoders[0].config.hidden_size == networks.TEXT_WIDTH
    assert float(bundle.text_encoders[0].final_layer_norm.bias.mean()) == networks.FINAL_NORM_BIAS
    assert load_file(str(out / "demoteal.safetensors"))["emb_params"].shape == (1, networks.TEXT_WIDTH)
    assert any(k.endswith(".lora_down.weight") for k in load_file(str(out / "demo-pastel.safetensors")))
    # A second run finds every stage finished and writes the same checkpoint bytes.
    first = (out / "demo-shapes-sd1.safetensors").read_bytes()
    try:
        train_demo_model.main(argv)
    finally:
        torch.set_num_threads(threads)
    assert (out / "demo-shapes-sd1.safetensors").read_bytes() == first
