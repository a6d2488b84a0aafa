"""Job-scoped models: a job's VAE override is seen by that job alone, the shared model stays exactly as
it was, helpers (the token counter) read what is loaded and never load, and only queued work loads."""

from __future__ import annotations

import threading

import pytest
import torch

from modules import cmd_args
from modules.models.convert import vae_to_original
from modules.models.loader import save_checkpoint
from modules.models.storage import save_state_dict
from modules.models.tiny import build_tiny_bundle
from modules.processing.job import GenerationJob
from modules.runtime import Runtime
from modules.ui.tokens import TokenCounter

DONOR = "donor.safetensors"


@pytest.fixture
def runtime(tmp_path):
    """A runtime loading the tiny model from a file, with a second VAE in models/VAE."""
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu", "--no-bundled-models"]))
    save_checkpoint(build_tiny_bundle(), rt.paths.ckpt_dir / "tiny.safetensors")
    donor = build_tiny_bundle(seed=11)
    rt.paths.vae_dir.mkdir(parents=True, exist_ok=True)
    save_state_dict(vae_to_original(donor.vae.state_dict()), rt.paths.vae_dir / DONOR, {})
    rt.models.refresh()
    yield rt
    rt.queue.close()


def job(**kw) -> GenerationJob:
    values = dict(prompt="a red circle", steps=2, width=64, height=64, seed=7, sampler_name="Euler")
    return GenerationJob(**{**values, **kw})


def vae_state(runtime: Runtime) -> dict[str, torch.Tensor]:
    bundle = runtime.loaded_model()
    return {k: v.clone() for k, v in bundle.vae.state_dict().items()}


def test_token_counter_never_loads_a_model(runtime):
    counter = TokenCounter(runtime)
    assert counter.count("a cat", 20) is None and "?/?" in counter.html("a cat", 20)
    assert runtime.models.loaded() == []  # a keystroke before the first load loads nothing
    runtime.model()
    assert counter.count("a cat", 20) == (2, 75)


def test_keystrokes_during_a_vae_override_job_change_nothing(runtime):
    override = job(override_settings={"sd_vae": DONOR})
    alone = runtime.txt2img(override)
    shared_before = vae_state(runtime)
    assert f"VAE: {DONOR}" in alone.infotexts[0] and "VAE hash: " in alone.infotexts[0]

    # Token counts from another thread at every UNet call of the job (the keystroke race).
    counter, counts = TokenCounter(runtime), []
    unet = runtime.loaded_model().unet
    original = unet.forward

    def typing_meanwhile(*args, **kwargs):
        other = threading.Thread(target=lambda: counts.append(counter.count("a cat, dog", 20)))
        other.start()
        other.join()
        return original(*args, **kwargs)

    unet.forward = typing_meanwhile
    try:
        raced = runtime.txt2img(override)
    finally:
        del unet.forward
    assert counts and all(c == (4, 75) for c in counts)
    assert [i.tobytes() for i in raced.images] == [i.tobytes() for i in alone.images]
    assert raced.infotexts == alone.infotexts
    # The shared model was never patched: its VAE is bit for bit what it was, and it says so.
    after = vae_state(runtime)
    assert after.keys() == shared_before.keys()
    assert all(torch.equal(after[k], shared_before[k]) for k in after)
    assert runtime.loaded_model().vae_name is None


def test_the_override_vae_really_decodes_and_the_live_one_is_back_next_job(runtime):
    plain = runtime.txt2img(job())
    override = runtime.txt2img(job(override_settings={"sd_vae": DONOR}))
    again = runtime.txt2img(job())
    assert plain.images[0].tobytes() != override.images[0].tobytes()
    assert again.images[0].tobytes() == plain.images[0].tobytes()
    assert "VAE:" not in again.infotexts[0]


def test_a_model_asked_for_outside_the_queue_loads_in_its_turn(runtime):
    seen = []
    original = runtime.models.get

    def spy(query):
        from modules.jobs import current_task

        seen.append(current_task() is not None)
        return original(query)

    runtime.models.get = spy
    runtime.model()
    assert seen == [True]


def test_a_long_batch_count_delays_another_user_by_one_image(runtime):
    import numpy as np

    gate, release = threading.Event(), threading.Event()
    runtime.queue.submit(lambda: gate.set() or release.wait(30), user="gatekeeper")
    assert gate.wait(30)
    alice = runtime.submit_job("txt2img", job(n_iter=3), user="alice")
    bob = runtime.submit_job("txt2img", job(seed=99), user="bob")
    finished: list[str] = []
    bob.future.add_done_callback(lambda _: finished.append("bob"))
    alice.future.add_done_callback(lambda _: finished.append("alice"))
    release.set()
    long, short = alice.future.result(60), bob.future.result(60)
    assert finished == ["bob", "alice"]  # bob's image came between alice's first and second
    assert long.seeds == [7, 8, 9]
    # Neither job saw the other: each equals a run alone.
    alone = runtime.txt2img(job(n_iter=3))
    for a, b in zip(long.samples, alone.samples, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.array_equal(np.asarray(short.images[0]), np.asarray(runtime.txt2img(job(seed=99)).images[0]))
