"""/progress, /interrupt and /skip while a job runs, whether the API or the UI (the runtime) started it,
and a second API request waiting in the shared queue."""

from __future__ import annotations

import threading
import time

from modules.processing.job import GenerationJob

API = "/sdapi/v1"
LONG = {"prompt": "a slow square", "steps": 1000, "width": 64, "height": 64, "seed": 11}


def wait_until_sampling(client, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"{API}/progress").json()
        # job_count is 0 between jobs; sampling_step still shows the last job's
        if body["state"]["job_count"] and body["state"]["sampling_step"] >= 2:
            return body
        time.sleep(0.05)
    raise AssertionError("the job never started sampling")


def in_thread(target, *args) -> tuple[threading.Thread, list]:
    results: list = []
    thread = threading.Thread(target=lambda: results.append(target(*args)))
    thread.start()
    return thread, results


def test_idle_progress_is_zero_with_no_jobs(client):
    body = client.get(f"{API}/progress").json()
    assert body["progress"] == 0 and body["eta_relative"] == 0
    assert body["state"]["job_count"] == 0 and body["current_image"] is None
    assert set(body["state"]) >= {
        "skipped",
        "interrupted",
        "job",
        "job_count",
        "job_no",
        "sampling_step",
        "sampling_steps",
    }


def test_progress_of_an_api_job_and_interrupt(client, runtime):
    thread, results = in_thread(lambda: client.post(f"{API}/txt2img", json=LONG))
    body = wait_until_sampling(client)
    assert body["state"]["job"] == "txt2img" and body["state"]["job_count"] == 1
    assert body["state"]["sampling_steps"] == 1000
    assert 0.01 < body["progress"] < 0.5 and body["eta_relative"] > 0
    assert body["current_image"] is not None  # the live preview, base64
    assert client.get(f"{API}/progress", params={"skip_current_image": True}).json()["current_image"] is None
    assert client.post(f"{API}/interrupt").json() == {}
    thread.join(timeout=60)
    assert not thread.is_alive()
    response = results[0]
    assert response.status_code == 200 and len(response.json()["images"]) == 1
    assert client.get(f"{API}/progress").json()["state"]["job_count"] == 0
    assert not runtime.queue.running() and not runtime.queue.waiting()


def test_a_ui_job_is_visible_and_interruptible_through_the_api(client, runtime):
    job = GenerationJob(prompt="ui job", steps=1000, width=64, height=64, seed=2, do_not_save_samples=True)
    thread, results = in_thread(runtime.txt2img, job)
    wait_until_sampling(client)
    client.post(f"{API}/interrupt")
    thread.join(timeout=60)
    assert results[0].interrupted


def test_skip_ends_only_the_current_batch(client):
    thread, results = in_thread(lambda: client.post(f"{API}/txt2img", json={**LONG, "n_iter": 2}))
    wait_until_sampling(client)
    assert client.post(f"{API}/skip").status_code == 200
    deadline = time.monotonic() + 60
    state = {}
    while time.monotonic() < deadline:
        state = client.get(f"{API}/progress").json()["state"]
        if state["job_no"] == 1 and state["sampling_step"] >= 1:
            break
        time.sleep(0.05)
    assert state["job_no"] == 1 and not state["skipped"]  # the second batch runs: skip is not interrupt
    client.post(f"{API}/interrupt")
    thread.join(timeout=60)
    assert len(results[0].json()["images"]) == 2  # one image per batch (no grid: save_images is false)


def test_second_request_waits_for_the_queue(client, runtime):
    first, first_result = in_thread(lambda: client.post(f"{API}/txt2img", json=LONG))
    wait_until_sampling(client)
    second, second_result = in_thread(lambda: client.post(f"{API}/txt2img", json={**LONG, "steps": 2}))
    time.sleep(0.3)
    assert second.is_alive()  # waiting for the lock while the first job samples
    client.post(f"{API}/interrupt")
    first.join(timeout=60)
    second.join(timeout=60)
    assert first_result[0].status_code == 200 and second_result[0].status_code == 200
