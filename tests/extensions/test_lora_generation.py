"""<lora:...> in real txt2img jobs on the tiny model, through the real extension loader: the image changes
with the weight, weight 0 changes nothing, the shared model is bit-identical after every job (errors
included), "Lora hashes" is written, and an unknown name is noted without stopping the job."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from modules.infotext import parse_infotext
from modules.processing.job import GenerationJob
from tests.extensions import lora_helpers as h


@pytest.fixture
def runtime(tmp_path, tiny_bundle):
    rt = h.lora_runtime(tmp_path / "data", tiny_bundle)
    h.write_lora(
        rt.paths.lora_dir / "both.safetensors", h.sd1_lora_tensors(seed=1), {"ss_output_name": "both_alias"}
    )
    h.write_lora(rt.paths.lora_dir / "te_only.safetensors", h.sd1_lora_tensors(seed=2, unet=False))
    h.write_lora(
        rt.paths.lora_dir / "compvis.safetensors", h.sd1_lora_tensors(seed=1, te=False, compvis=True)
    )
    h.write_lora(rt.paths.lora_dir / "diffusers.safetensors", h.sd1_lora_tensors(seed=1, te=False))
    return rt


def job(prompt: str, **kw) -> GenerationJob:
    defaults = dict(steps=3, width=64, height=64, seed=11, sampler_name="Euler", do_not_save_samples=True)
    return GenerationJob(prompt=prompt, **{**defaults, **kw})


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


@pytest.mark.slow
def test_output_changes_with_weight_and_weight_zero_is_a_no_op(runtime, tiny_bundle):
    before = h.state_of(tiny_bundle)
    plain = pixels(runtime.txt2img(job("a red circle")))
    zero = pixels(runtime.txt2img(job("a red circle <lora:both:0>")))
    small = pixels(runtime.txt2img(job("a red circle <lora:both:0.02>")))
    full = pixels(runtime.txt2img(job("a red circle <lora:both:1>")))
    assert np.array_equal(plain, zero)
    assert not np.array_equal(plain, small) and not np.array_equal(small, full)
    # The change grows with the weight: a tiny weight nudges the image, weight 1 changes it a lot.
    assert np.abs(full - plain).mean() > 3 * np.abs(small - plain).mean()
    h.assert_same_state(before, tiny_bundle)
    assert np.array_equal(plain, pixels(runtime.txt2img(job("a red circle"))))


def test_text_encoder_part_is_applied_before_the_prompt_is_encoded(runtime, tiny_bundle):
    plain = pixels(runtime.txt2img(job("a red circle")))
    te = pixels(runtime.txt2img(job("a red circle <lora:te_only:1>")))
    assert not np.array_equal(plain, te)
    # te weight 0, UNet weight 1 on a text-encoder-only LoRA: nothing to patch.
    assert np.array_equal(plain, pixels(runtime.txt2img(job("a red circle <lora:te_only:0:1>"))))


def test_compvis_named_file_acts_like_the_diffusers_named_one(runtime):
    a = pixels(runtime.txt2img(job("a cat <lora:compvis:0.8>")))
    b = pixels(runtime.txt2img(job("a cat <lora:diffusers:0.8>")))
    assert np.array_equal(a, b)


def test_lora_hashes_in_infotext_are_the_addnet_hash(runtime):
    result = runtime.txt2img(job("a cat <lora:both:0.7> <lora:te_only>"))
    data = (runtime.paths.lora_dir / "both.safetensors").read_bytes()
    both = hashlib.sha256(data[8 + int.from_bytes(data[:8], "little") :]).hexdigest()[:12]
    text = result.infotexts[0]
    assert f'Lora hashes: "both: {both}, te_only: ' in text
    assert "<lora" not in text.splitlines()[-1] and result.prompts[0].startswith("a cat <lora:both:0.7>")
    from modules.infotext import parse_infotext

    assert parse_infotext(text)["Lora hashes"].startswith(f"both: {both}, te_only: ")


def test_found_by_alias_and_hash_option_respected(runtime):
    result = runtime.txt2img(job("a cat <lora:both_alias:1>", override_settings={h_option(): False}))
    assert "Lora hashes" not in result.infotexts[0]
    assert not result.comments


def h_option() -> str:
    return h.ln.HASHES_OPTION


@pytest.mark.slow
def test_unknown_name_is_noted_and_generation_continues(runtime, tiny_bundle):
    plain = pixels(runtime.txt2img(job("a red circle")))
    result = runtime.txt2img(job("a red circle <lora:nope:1> <lora:both:0>"))
    assert result.comments == ["Networks not found: nope"]
    assert np.array_equal(plain, pixels(result))
    assert not runtime.extensions.errors


def test_model_restored_when_the_job_fails(runtime, tiny_bundle, monkeypatch):
    from modules.processing import sampling_pass

    before = h.state_of(tiny_bundle)

    def explode(*args, **kwargs):
        raise RuntimeError("sampler failed")

    monkeypatch.setattr(sampling_pass, "run_pass", explode)
    with pytest.raises(RuntimeError, match="sampler failed"):
        runtime.txt2img(job("a cat <lora:both:1>"))
    h.assert_same_state(before, tiny_bundle)


@pytest.mark.slow
def test_batches_with_different_loras_encode_with_their_own_weights(runtime):
    """n_iter batches that differ only by a LoRA tag: the conditioning cache must not serve batch 1's."""
    from modules.extensions.api import AlwaysVisible, Script

    class PerBatchLora(Script):
        def title(self):
            return "per batch lora"

        def show(self, is_img2img):
            return AlwaysVisible

        def process(self, p):
            p.all_prompts[1] = p.all_prompts[1] + " <lora:te_only:1>"

    runtime.extensions.scripts.append(PerBatchLora())
    both = runtime.txt2img(job("a red circle", n_iter=2))
    runtime.extensions.scripts.clear()
    second = runtime.txt2img(job("a red circle <lora:te_only:1>", seed=12))
    assert np.array_equal(np.asarray(both.samples[1], dtype=np.int16), pixels(second))
    assert "Lora hashes" not in both.infotexts[both.index_of_first_image]
    assert "Lora hashes: " in both.infotexts[-1]


@pytest.mark.slow
def test_lyco_tag_and_lora_tag_together(runtime, tiny_bundle):
    before = h.state_of(tiny_bundle)
    together = pixels(runtime.txt2img(job("x <lora:diffusers:1> <lyco:te_only:1>")))
    assert not np.array_equal(together, pixels(runtime.txt2img(job("x <lora:diffusers:1>"))))
    h.assert_same_state(before, tiny_bundle)


def test_listing_for_the_ui_and_api(runtime):
    network = runtime.extensions.extra_networks["lora"]
    items = network.extra["items"](runtime.paths)
    assert {i["name"] for i in items} >= {"both", "te_only", "compvis", "diffusers"}
    both = next(i for i in items if i["name"] == "both")
    assert set(both) == {"name", "alias", "path", "metadata"} and both["alias"] == "both_alias"
    h.write_lora(runtime.paths.lora_dir / "new.safetensors", h.sd1_lora_tensors(seed=9))
    network.extra["refresh"](runtime.paths)
    cards = network.extra["cards"](runtime.paths)
    assert any(c["name"] == "new" and c["prompt"] == "<lora:new:1>" for c in cards)


def with_problem_files(runtime) -> None:
    (runtime.paths.lora_dir / "broken.safetensors").write_bytes(
        b"\x10\x00\x00\x00\x00\x00\x00\x00not a header...."
    )
    misfit = h.lora_module(torch.Generator().manual_seed(0), 8, 8, 2, 2.0)
    h.write_lora(
        runtime.paths.lora_dir / "misfit.safetensors",
        {f"lora_unet_no_such_module.{k}": v for k, v in misfit.items()},
    )


# prompt -> (notes the user is shown, names in "Lora hashes"): a bad tag is skipped with a note (A1111
# would stop loading all of the prompt's LoRAs), and a LoRA that did not load is never in the hashes.
PROBLEM_TAGS = [
    ("a <lora:both:1> <lora:both:strong>", ["<lora:both:strong> ignored: "], ["both"]),
    ("a <lora::1> <lora:te_only:1>", ["<lora::1> ignored: a <lora:...> tag needs a name"], ["te_only"]),
    (
        "a <lora:broken:1> <lora:te_only:1>",
        ["LoRA broken: broken.safetensors could not be read"],
        ["te_only"],
    ),
    ("a <lora:misfit:1>", ["LoRA misfit: none of its 1 modules fit this model"], []),
    ("a <lora: both :1>", ["Networks not found:  both "], []),  # names verbatim, as A1111
    ("a <lora:a=b=c:1>", ["Networks not found: a=b=c"], []),  # "a=b=c" is the name, as A1111
    ("a <lora:both:0.5> # <lora:nope:1>", [], ["both"]),  # a comment hides its tags
]


@pytest.mark.parametrize(("prompt", "notes", "hashed"), PROBLEM_TAGS)
def test_problem_tags_are_reported_and_not_hashed(runtime, prompt, notes, hashed):
    with_problem_files(runtime)
    result = runtime.txt2img(job(prompt))
    assert len(result.comments) == len(notes)
    for comment, note in zip(result.comments, notes, strict=True):
        assert comment.startswith(note)
    assert result.info["comments"] == "".join(f"{c}\n" for c in result.comments)  # the API's info
    hashes = parse_infotext(result.infotexts[0]).get("Lora hashes", "")
    assert [entry.split(":")[0].strip() for entry in hashes.split(",") if entry] == hashed
    assert not runtime.extensions.errors


def test_another_users_job_let_in_between_images_never_sees_this_jobs_lora(runtime, tiny_bundle):
    import threading

    before = h.state_of(tiny_bundle)
    gate, release = threading.Event(), threading.Event()
    runtime.queue.submit(lambda: gate.set() or release.wait(30), user="gatekeeper")
    assert gate.wait(30)
    alice = runtime.submit_job("txt2img", job("a red circle <lora:both:1>", n_iter=2), user="alice")
    bob = runtime.submit_job("txt2img", job("a red circle", seed=5), user="bob")
    release.set()
    with_lora, plain = alice.future.result(60), bob.future.result(60)
    assert bob.finished_at < alice.finished_at  # bob's job ran between alice's two images
    assert np.array_equal(pixels(plain), pixels(runtime.txt2img(job("a red circle", seed=5))))
    alone = runtime.txt2img(job("a red circle <lora:both:1>", n_iter=2))
    for a, b in zip(with_lora.samples, alone.samples, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))  # the LoRA came back for her second image
    h.assert_same_state(before, tiny_bundle)


def test_the_text_cache_across_jobs_never_serves_text_encoded_under_another_lora(runtime, monkeypatch):
    """The runtime keeps encoded texts across jobs (modules.conditioning.text_cache): the same prompt
    again costs no text-encoder call; a text-encoder LoRA patched in, and taken out again, miss."""
    from modules.conditioning import encoder

    calls = []
    real = encoder.encode_chunks
    monkeypatch.setattr(encoder, "encode_chunks", lambda *a, **k: calls.append(1) or real(*a, **k))

    def run(prompt: str) -> tuple[np.ndarray, int]:
        calls.clear()
        return pixels(runtime.txt2img(job(prompt))), len(calls)

    plain, first_calls = run("a red circle")
    again, again_calls = run("a red circle")
    te, te_calls = run("a red circle <lora:te_only:1>")
    after, after_calls = run("a red circle")
    assert (first_calls, again_calls) == (2, 0)  # prompt and negative prompt, then none
    assert te_calls == 2 and not np.array_equal(plain, te)
    assert after_calls == 2  # the restored weights are new versions: encoded again, not trusted
    assert np.array_equal(plain, again) and np.array_equal(plain, after)
