"""Start-up loads the model as the queue's first task: the call returns at once, a job submitted
meanwhile waits behind the load, the outcome is printed, and a model that fails to load leaves the app
serving."""

from __future__ import annotations

import threading

import pytest

from modules import cmd_args
from modules.models.loader import save_checkpoint
from modules.models.manager import LoadFailed
from modules.models.tiny import build_tiny_bundle
from modules.processing.job import GenerationJob
from modules.runtime import Runtime


@pytest.fixture
def runtime(tmp_path):
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu", "--no-bundled-models"]))
    yield rt
    rt.queue.close()


def job() -> GenerationJob:
    return GenerationJob(prompt="a red circle", steps=2, width=64, height=64, seed=7, sampler_name="Euler")


def test_the_load_runs_in_the_queue_and_the_first_job_waits_for_it(runtime, capsys):
    save_checkpoint(build_tiny_bundle(), runtime.paths.ckpt_dir / "tiny.safetensors")
    runtime.models.refresh()
    release, started = threading.Event(), threading.Event()
    real_get = runtime.models.get

    def slow_get(title):
        started.set()
        assert release.wait(30)
        return real_get(title)

    runtime.models.get = slow_get
    load = runtime.load_in_background()
    assert started.wait(30)
    assert load.label == "load model" and load.state == "running"  # returned while the load runs
    first = runtime.submit_job("txt2img", job())
    assert first.state == "waiting" and runtime.models.loaded() == []
    release.set()
    assert load.future.result(60).name == "tiny"
    result = first.future.result(60)
    assert len(result.images) == 1 and "Model: tiny" in result.infotexts[0]
    assert "Model loaded: tiny" in capsys.readouterr().out


def test_a_model_that_fails_to_load_is_reported_and_the_app_keeps_serving(runtime, capsys):
    runtime.paths.ckpt_dir.mkdir(parents=True, exist_ok=True)
    (runtime.paths.ckpt_dir / "broken.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    runtime.models.refresh()
    load = runtime.load_in_background()
    with pytest.raises(LoadFailed, match="broken.safetensors"):
        load.future.result(60)
    out = capsys.readouterr().out
    assert "Loading the model failed:" in out and "pick another checkpoint" in out
    assert runtime.exclusive(lambda: "still serving") == "still serving"


def test_with_no_checkpoint_the_fallback_is_written_before_it_returns(runtime):
    assert runtime.models.checkpoints() == []
    load = runtime.load_in_background()
    assert runtime.models.checkpoints()  # listed at once, so the UI's dropdown shows it
    assert load.future.result(120) is not None


def test_a_ckpt_outside_the_folders_is_listed_and_loaded_first(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "mine.safetensors"
    elsewhere.parent.mkdir()
    save_checkpoint(build_tiny_bundle(), elsewhere)
    data = tmp_path / "data"
    argv = ["--data-dir", str(data), "--device", "cpu", "--ckpt", str(elsewhere)]
    rt = Runtime(cmd_args.parse(argv))  # the bundled model is listed too, and comes first by name
    try:
        assert "mine.safetensors" in rt.models.titles()
        assert rt.load_in_background().future.result(60).name == "mine"
    finally:
        rt.queue.close()


def test_a_missing_ckpt_stops_the_start_naming_it(tmp_path):
    with pytest.raises(SystemExit, match="--ckpt .*nowhere.safetensors"):
        Runtime(
            cmd_args.parse(["--data-dir", str(tmp_path), "--ckpt", str(tmp_path / "nowhere.safetensors")])
        )


@pytest.mark.slow
def test_webui_starts_the_load_once_the_page_answers(tmp_path, free_port):
    """webui.py launches the page first and then queues the model's load (whose diffusers and
    transformers imports would otherwise compete with the page's): its output says so in that order."""
    from tests.ui.conftest import start_server

    proc = start_server(["--no-bundled-models"], tmp_path, free_port)
    lines: list[str] = []
    watchdog = threading.Timer(180, proc.kill)  # a server that never says it loaded fails, not hangs
    watchdog.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(("Model loaded", "Loading the model failed")):
                break
    finally:
        watchdog.cancel()
        proc.terminate()
        proc.wait(30)
    text = "".join(lines)
    assert "Model loaded" in text, text
    assert text.index("Running on local URL") < text.index("Loading model on") < text.index("Model loaded")
