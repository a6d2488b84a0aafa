"""The job queue: task ids, fair order between users, cancel, position/ETA, errors, re-entrancy."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import CancelledError

import pytest

from modules.jobs import JobQueue, State, check_task_id, current_task


class Gate:
    """A task that holds the queue until opened, so the tests can line others up behind it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> str:
        self.started.set()
        assert self.release.wait(10)
        return "gate"


@pytest.fixture
def queue():
    q = JobQueue()
    yield q
    q.close()


def hold(queue: JobQueue) -> Gate:
    gate = Gate()
    queue.submit(gate, user="gatekeeper", task_id="gate")
    assert gate.started.wait(10)
    return gate


def test_task_ids_are_unique_or_the_callers_own(queue):
    ids = {queue.submit(lambda: None).id for _ in range(50)}
    assert len(ids) == 50 and all(i.startswith("task(") for i in ids)
    gate = hold(queue)
    task = queue.submit(lambda: 7, task_id="mine-1")
    assert task.id == "mine-1" and task.progress.task_id == "mine-1"
    with pytest.raises(ValueError, match="already queued"):
        queue.submit(lambda: 8, task_id="mine-1")
    gate.release.set()
    assert queue.result("mine-1", timeout=10) == 7
    assert queue.status("mine-1").state is State.DONE


@pytest.mark.parametrize("bad", ["", "a" * 65, "../x", "a b", "ä", "x\n"])
def test_bad_task_ids_are_refused(bad):
    with pytest.raises(ValueError, match="task id"):
        check_task_id(bad)


def test_round_robin_between_users_first_come_first_served_for_one(queue):
    ran: list[str] = []
    gate = hold(queue)
    for i in range(5):
        queue.submit(lambda i=i: ran.append(f"a{i}"), user="alice", task_id=f"a{i}")
    for i in range(2):
        queue.submit(lambda i=i: ran.append(f"b{i}"), user="bob", task_id=f"b{i}")
    expected = ["a0", "b0", "a1", "b1", "a2", "a3", "a4"]
    assert [t.id for t in queue.waiting()] == expected
    assert [queue.status(i).position for i in expected] == [1, 2, 3, 4, 5, 6, 7]
    assert queue.status("gate").position == 0
    gate.release.set()
    queue.result("a4", timeout=10)
    assert ran == expected


def test_a_user_arriving_late_waits_at_most_one_task_of_another(queue):
    ran: list[str] = []
    gate = hold(queue)
    for i in range(100):
        queue.submit(lambda i=i: ran.append(f"a{i}"), user="alice")
    late = queue.submit(lambda: ran.append("bob"), user="bob")
    assert queue.status(late.id).position == 2  # behind alice's first, not her hundredth
    gate.release.set()
    late.future.result(10)
    assert ran[:2] == ["a0", "bob"]


def test_cancel_takes_a_waiting_task_out_and_it_never_runs(queue):
    ran = []
    gate = hold(queue)
    task = queue.submit(lambda: ran.append("x"), user="u")
    after = queue.submit(lambda: "after", user="u")
    assert queue.cancel(task.id)
    assert not queue.cancel(task.id)  # already cancelled
    assert not queue.cancel("gate")  # running: interrupt it instead
    assert queue.status(task.id).state is State.CANCELLED
    assert queue.status(after.id).position == 1
    gate.release.set()
    assert after.future.result(10) == "after" and ran == []
    with pytest.raises(CancelledError):
        task.future.result()


def test_eta_counts_the_tasks_ahead(queue):
    for _ in range(3):
        queue.submit(lambda: None).future.result(10)
    gate = hold(queue)
    first, second = queue.submit(lambda: None), queue.submit(lambda: None)
    a, b = queue.status(first.id), queue.status(second.id)
    assert a.eta_seconds is not None and b.eta_seconds is not None and b.eta_seconds >= a.eta_seconds
    assert a.queued == b.queued == 2
    gate.release.set()
    second.future.result(10)


def test_a_failing_task_hands_its_error_to_the_caller_and_the_queue_goes_on(queue):
    def fail():
        raise ValueError("bad prompt")

    failed = queue.submit(fail)
    with pytest.raises(ValueError, match="bad prompt"):
        failed.future.result(10)
    assert queue.status(failed.id).state is State.FAILED
    assert queue.submit(lambda: 1).future.result(10) == 1


def test_work_knows_its_task_and_the_queue_forgets_finished_work(queue):
    seen = []
    task = queue.submit(lambda: seen.append(current_task()))
    task.future.result(10)
    assert seen == [task] and current_task() is None
    with pytest.raises(RuntimeError, match="already run"):
        task.work()  # the closure (and what it held) is dropped once done


def test_share_turn_lets_another_users_waiting_task_in_between_units(queue):
    ran: list[str] = []
    seen_running: list[list[str]] = []
    gate = hold(queue)

    def long_job() -> None:
        for i in range(3):
            ran.append(f"a{i}")
            queue.share_turn(frozenset({"txt2img"}))

    def bob() -> None:
        seen_running.append([t.id for t in queue.running()])
        assert current_task().id == "bob"
        ran.append("bob")

    alice = queue.submit(long_job, user="alice", label="txt2img", task_id="alice")
    queue.submit(lambda: ran.append("alice-2"), user="alice", label="txt2img", task_id="alice-2")
    queue.submit(lambda: ran.append("merge"), user="carol", label="merge", task_id="merge")
    queue.submit(bob, user="bob", label="txt2img", task_id="bob")
    gate.release.set()
    alice.future.result(10)
    queue.result("merge", timeout=10)
    queue.result("alice-2", timeout=10)
    # Bob's generation ran after alice's first unit; her own next task and carol's merge waited.
    assert ran[:4] == ["a0", "bob", "a1", "a2"]
    assert seen_running == [["bob"]]  # alice's suspended task is not "running" meanwhile
    assert queue.status("bob").state is State.DONE
    assert not queue.share_turn(frozenset({"txt2img"}))  # outside queued work: nothing happens


def test_without_workers_ray_nothing_of_ray_is_imported(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from modules import cmd_args\n"
        "from modules.runtime import Runtime\n"
        f"rt = Runtime(cmd_args.parse(['--data-dir', {str(tmp_path)!r}, '--device', 'cpu']))\n"
        "assert rt.workers is None and rt.queue.executor.slots == 1\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_jobs_run_at_a_lower_priority_than_the_server_threads(queue):
    from modules.jobs.queue import JOB_THREAD_NICENESS

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    here = niceness()
    assert queue.submit(niceness).future.result(10) == min(here + JOB_THREAD_NICENESS, 19)
    assert niceness() == here  # the caller's own thread keeps its priority
