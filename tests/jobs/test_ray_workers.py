"""--workers ray on a local Ray instance with 2 CPU worker processes on the tiny model: jobs from API
clients and the queue all complete, equal to local runs, on both workers; Interrupt reaches the worker
running that task only; a worker killed mid-job is replaced and its job runs again; a worker
without the job's checkpoint says so."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modules.api.server import create_app
from modules.extensions import startup
from modules.models.loader import save_checkpoint
from modules.models.tiny import build_tiny_bundle
from modules.processing.job import GenerationJob
from modules.runtime import Runtime

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -r requirements.txt)")
pytestmark = pytest.mark.slow

FLAGS = ["--device", "cpu", "--no-bundled-models"]


def make_runtime(data_dir, *extra: str) -> Runtime:
    args, extensions, _ = startup.prepare(["--data-dir", str(data_dir), *FLAGS, *extra])
    runtime = Runtime(args, extensions)
    extensions.call("ui_settings", runtime.options)
    return runtime


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    ray_dir, local_dir = tmp_path_factory.mktemp("ray"), tmp_path_factory.mktemp("local")
    checkpoint = ray_dir / "models" / "Stable-diffusion" / "tiny.safetensors"
    checkpoint.parent.mkdir(parents=True)
    save_checkpoint(build_tiny_bundle(), checkpoint)
    (local_dir / "models" / "Stable-diffusion").mkdir(parents=True)
    shutil.copy(checkpoint, local_dir / "models" / "Stable-diffusion" / checkpoint.name)
    return ray_dir, local_dir


@pytest.fixture(scope="module")
def distributed(folders) -> Iterator[Runtime]:
    from modules.jobs.ray_workers import wait_for_workers

    runtime = make_runtime(folders[0], "--workers", "ray", "--ray-workers", "2")
    assert len(set(wait_for_workers(runtime.workers))) == 2
    yield runtime
    runtime.queue.close()
    runtime.workers.close()
    ray.shutdown()


@pytest.fixture(scope="module")
def local(folders) -> Runtime:
    return make_runtime(folders[1])


def job(**kw) -> GenerationJob:
    values = dict(prompt="a red circle", steps=2, width=64, height=64, seed=1, sampler_name="Euler")
    return GenerationJob(**{**values, **kw})


def pixels(image) -> np.ndarray:
    return np.asarray(image)


def test_jobs_from_api_clients_and_the_queue_all_complete_equal_to_local_runs(distributed, local):
    before = dict(distributed.workers.pids)
    with TestClient(create_app(distributed)) as client:
        answers: list = [None] * 10

        def post(i: int) -> None:
            body = {
                "prompt": "a red circle",
                "steps": 2,
                "width": 64,
                "height": 64,
                "seed": 100 + i,
                "sampler_name": "Euler",
            }
            answers[i] = client.post("/sdapi/v1/txt2img", json=body)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        tasks = [distributed.submit_job("txt2img", job(seed=i), user=f"user{i % 3}") for i in range(10)]
        results = [task.future.result(300) for task in tasks]
        for thread in threads:
            thread.join(300)
    assert all(answer is not None and answer.status_code == 200 for answer in answers)
    for seed in (0, 7):
        alone = local.txt2img(job(seed=seed))
        assert np.array_equal(pixels(results[seed].images[0]), pixels(alone.images[0]))
        assert results[seed].infotexts[0] == alone.infotexts[0]
    ran = {pid: n - before.get(pid, 0) for pid, n in distributed.workers.pids.items()}
    assert sum(ran.values()) == 20 and len([n for n in ran.values() if n]) == 2  # both workers worked


def wait_sampling(task, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if task.progress.report().sampling_step >= 1:
            return
        time.sleep(0.05)
    raise AssertionError("the job never started sampling")


def test_interrupt_reaches_the_worker_running_that_task_only(distributed):
    long = dict(steps=400, n_iter=2)
    mine = distributed.submit_job("txt2img", job(seed=5, **long), user="alice")
    other = distributed.submit_job("txt2img", job(seed=6, steps=30, n_iter=2), user="bob")
    wait_sampling(mine)
    wait_sampling(other)
    assert distributed.interrupt(mine.id)
    interrupted, finished = mine.future.result(300), other.future.result(300)
    assert interrupted.interrupted and len(interrupted.samples) <= 1
    assert not finished.interrupted and len(finished.samples) == 2


def test_a_worker_killed_mid_job_is_replaced_and_the_job_runs_again(distributed, local):
    task = distributed.submit_job("txt2img", job(seed=9, steps=60), user="carol")
    wait_sampling(task)
    pool = distributed.workers
    with pool._lock:
        busy = [actor for actor in pool._loaded if actor not in pool._free]
    assert len(busy) == 1
    ray.kill(busy[0])
    result = task.future.result(300)
    assert any("run again" in comment for comment in result.comments)
    alone = local.txt2img(job(seed=9, steps=60))
    assert np.array_equal(pixels(result.images[0]), pixels(alone.images[0]))
    assert len(pool.actors()) == 2  # the dead worker was replaced


def test_a_worker_without_the_checkpoint_says_so_and_stays_in_the_pool(distributed, tmp_path):
    from modules.jobs.ray_workers import RayWorkers, WorkerLacksModel, wait_for_workers

    # As a cluster node whose models folder lacks the front end's file; and a third worker on two
    # cores still starts (workers reserve no CPU: it used to wait for one for ever).
    bare = RayWorkers(["--data-dir", str(tmp_path), *FLAGS], 1)
    try:
        assert len(wait_for_workers(bare, timeout=120)) == 1
        # (named by a hash the worker's fallback tiny model does not share: the same file would match)
        settings = {
            **distributed.options.snapshot({}),
            "sd_model_checkpoint": "shared.safetensors [0123abcd]",
        }
        with pytest.raises(WorkerLacksModel) as refused:
            bare.run("txt2img", job(), settings, None)
        message = str(refused.value)
        assert f"no checkpoint {settings['sd_model_checkpoint']!r}" in message
        assert str(tmp_path / "models" / "Stable-diffusion") in message
        with bare._lock:
            assert len(bare._free) == 1  # the worker was given back, not lost with the failed job
    finally:
        bare.close()
