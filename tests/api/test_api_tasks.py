"""Per-task control through the API: task ids, /progress of one task (queue position, ETA), Interrupt
and Skip of one task only, a waiting task cancelled before it starts, and a failed checkpoint switch
that is tried once and keeps the model in use."""

from __future__ import annotations

import threading
import time

from modules.jobs import State
from tests.api.test_api_progress import LONG, in_thread

API = "/sdapi/v1"
QUICK = {"prompt": "a quick square", "steps": 2, "width": 64, "height": 64, "seed": 3}


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def sampling(runtime, task_id: str) -> bool:
    task = runtime.queue.get(task_id)
    return task is not None and task.progress.report().sampling_step >= 2


def test_task_ids_progress_and_interrupt_of_one_task(client, runtime):
    first, _ = in_thread(lambda: client.post(f"{API}/txt2img", json={**LONG, "force_task_id": "task(a)"}))
    wait_for(lambda: sampling(runtime, "task(a)"))
    second, answers = in_thread(
        lambda: client.post(f"{API}/txt2img", json={**QUICK, "force_task_id": "task(b)"})
    )
    wait_for(lambda: runtime.queue.get("task(b)") is not None)

    running = client.get(f"{API}/progress", params={"task_id": "task(a)"}).json()
    assert running["task_state"] == "running" and running["queue_position"] == 0
    assert running["state"]["sampling_steps"] == 1000 and running["current_task"] == "task(a)"
    waiting = client.get(f"{API}/progress", params={"task_id": "task(b)"}).json()
    assert waiting["task_state"] == "waiting" and waiting["queue_position"] == 1
    assert waiting["queue_length"] == 1 and waiting["progress"] == 0
    assert client.get(f"{API}/progress", params={"task_id": "task(zzz)"}).status_code == 404
    same_id = client.post(f"{API}/txt2img", json={**QUICK, "force_task_id": "task(a)"})
    assert same_id.status_code == 422 and "already" in same_id.json()["detail"]
    bad_id = client.post(f"{API}/txt2img", json={**QUICK, "force_task_id": "../etc"})
    assert bad_id.status_code == 422 and "force_task_id" in bad_id.json()["detail"]

    # Interrupting the waiting task takes it out of the queue and leaves the running one alone.
    client.post(f"{API}/interrupt", params={"task_id": "task(b)"})
    second.join(60)
    assert answers[0].status_code == 409 and runtime.queue.status("task(b)").state is State.CANCELLED
    task_a = runtime.queue.get("task(a)")
    assert not task_a.progress.interrupted and task_a.state is State.RUNNING
    # A1111's plain /interrupt still stops the running task.
    client.post(f"{API}/interrupt")
    first.join(60)
    done = client.get(f"{API}/progress", params={"task_id": "task(a)"}).json()
    assert done["task_state"] == "done" and done["progress"] == 1


def test_skip_with_a_task_id_reaches_only_that_task(client, runtime):
    thread, _ = in_thread(lambda: client.post(f"{API}/txt2img", json={**LONG, "force_task_id": "mine"}))
    wait_for(lambda: sampling(runtime, "mine"))
    client.post(f"{API}/skip", params={"task_id": "someone-elses"})
    assert not runtime.queue.get("mine").progress.skipped
    client.post(f"{API}/skip", params={"task_id": "mine"})
    thread.join(60)
    assert not thread.is_alive()


def test_a_checkpoint_that_fails_to_load_is_tried_once_and_the_model_in_use_stays(
    client, runtime, checkpoint
):
    runtime.model_loader = None
    assert client.post(f"{API}/options", json={"sd_model_checkpoint": "tiny-test"}).status_code == 200
    in_use = runtime.options.get("sd_model_checkpoint")
    broken = checkpoint.with_name("broken.safetensors")
    broken.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    runtime.models.refresh()
    attempts = []
    load = runtime.models._load

    def counting(*args, **kwargs):
        attempts.append(args[0])
        return load(*args, **kwargs)

    runtime.models._load = counting
    for _ in range(2):
        response = client.post(f"{API}/options", json={"sd_model_checkpoint": "broken"})
        assert response.status_code == 422
        assert "sd_model_checkpoint" in response.json()["detail"] and "broken" in response.json()["detail"]
    assert attempts == [broken]  # the second request did not try again
    assert runtime.options.get("sd_model_checkpoint") == in_use
    assert client.get(f"{API}/options").json()["sd_model_checkpoint"] == in_use


def test_waiting_api_requests_hold_no_worker_thread(client, runtime):
    """Many more waiting requests than the server has worker threads: /progress still answers."""
    gate = threading.Event()
    runtime.queue.submit(lambda: gate.wait(60), user="holder")
    threads = [in_thread(lambda: client.post(f"{API}/txt2img", json=QUICK))[0] for _ in range(60)]
    wait_for(lambda: len(runtime.queue.waiting()) == 60)
    assert client.get(f"{API}/progress").status_code == 200
    gate.set()
    for thread in threads:
        thread.join(120)
    assert not runtime.queue.running() and not runtime.queue.waiting()
