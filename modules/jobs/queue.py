"""The one queue every heavy piece of work goes through: generations, model switches, merges, extras.

A ``JobQueue`` holds waiting tasks and hands them, one at a time, to an ``Executor``. Callers get a
``Task`` back at once and wait on its ``future`` (``asyncio.wrap_future`` in async handlers), so a
waiting request costs no thread. Order is fair between users: first come first served for one user,
round robin across users, so one user's many jobs delay another's by at most one job. Within one job,
``share_turn`` (called by a generation between its images) lets a waiting generation of another user
run first, nested on the same thread, so a batch count of 100 delays others by at most one image.

The interface is small on purpose (``submit``, ``cancel``, ``status``, ``result``): it is the seam a
remote executor will plug into later. ``LocalExecutor`` runs tasks in this process on one thread.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from modules.progress import Progress

TASK_ID = re.compile(r"[A-Za-z0-9_()\-.:]{1,64}")
FINISHED_KEPT = 512  # finished tasks remembered for late /progress questions; older ones are forgotten
ETA_WINDOW = 20  # how many recent durations the ETA averages


class State(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(eq=False)
class Task:
    """One unit of queued work. ``progress`` is the task's own: interrupt and skip act on it alone."""

    id: str
    user: str
    label: str
    work: Callable[[], Any]
    future: Future = field(default_factory=Future)
    progress: Progress = field(default_factory=Progress)
    state: State = State.WAITING
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    finished_at: float | None = None
    context: dict[str, Any] = field(default_factory=dict)  # what the executor keeps for this task alone
    suspended: bool = False  # running, but another user's task runs in its turn (share_turn)


@dataclass(frozen=True)
class TaskStatus:
    id: str
    state: State
    position: int | None  # 0: running; 1: next; None: finished or unknown
    queued: int  # tasks waiting in all
    eta_seconds: float | None  # until this task finishes (waiting: including the ones ahead)


def new_task_id() -> str:
    """A1111's UI task id shape, "task(...)" with random letters."""
    return f"task({uuid.uuid4().hex[:15]})"


def check_task_id(task_id: str) -> str:
    if not TASK_ID.fullmatch(task_id):
        raise ValueError("task id: 1 to 64 letters, digits or _()-.: characters")
    return task_id


class Executor(Protocol):
    """Runs the tasks the queue hands it; ``slots`` says how many may run at once."""

    slots: int

    def run(self, task: Task) -> Any: ...


class LocalExecutor:
    """Runs each task's work in this process, on the queue's dispatcher threads (one by default; as
    many as there are remote workers when the work hands its job on, see ``ray_workers``)."""

    def __init__(self, slots: int = 1) -> None:
        self.slots = slots

    def run(self, task: Task) -> Any:
        return task.work()


_current = threading.local()
# Niceness of the threads that run jobs (and of torch's compute threads, which they start and which
# inherit it): when generation keeps every core busy, the server's own threads (answering /progress,
# the page) still get a core at once instead of waiting for a time slice. Results do not change.
JOB_THREAD_NICENESS = 5  # added to the niceness the process runs at


def _yield_to_request_handling() -> None:
    """Lower this thread's scheduling priority (Linux: per thread); elsewhere, nothing."""
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            thread = threading.get_native_id()
            now = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(now + JOB_THREAD_NICENESS, 19))
        except OSError:
            pass  # not permitted here: keep the default priority


def current_task() -> Task | None:
    """The task whose work runs on this thread, or None outside the queue."""
    return getattr(_current, "task", None)


class JobQueue:
    def __init__(self, executor: Executor | None = None) -> None:
        self.executor = executor or LocalExecutor()
        self._cond = threading.Condition()
        self._waiting: OrderedDict[str, deque[Task]] = OrderedDict()  # user -> their tasks, in order
        self._tasks: dict[str, Task] = {}  # waiting and running
        self._finished: OrderedDict[str, Task] = OrderedDict()
        self._durations: deque[float] = deque(maxlen=ETA_WINDOW)
        self._closed = False
        self._threads = [
            threading.Thread(target=self._dispatch, name=f"job-queue-{i}", daemon=True)
            for i in range(self.executor.slots)
        ]
        for thread in self._threads:
            thread.start()

    # --- the interface --------------------------------------------------------------------------------

    def submit(
        self, work: Callable[[], Any], user: str = "", label: str = "", task_id: str | None = None
    ) -> Task:
        """Queue ``work``; returns its task at once. A task id already in use is refused (ValueError)."""
        task_id = check_task_id(task_id) if task_id else new_task_id()
        task = Task(task_id, user, label, work)
        task.progress.task_id = task_id
        with self._cond:
            if self._closed:
                raise RuntimeError("the queue is closed")
            if task_id in self._tasks:
                raise ValueError(f"task id {task_id!r} is already queued or running")
            self._finished.pop(task_id, None)
            self._tasks[task_id] = task
            self._waiting.setdefault(user, deque()).append(task)
            self._cond.notify()
        return task

    def cancel(self, task_id: str) -> bool:
        """Take a waiting task out of the queue; False if it is running, finished or unknown."""
        with self._cond:
            task = self._tasks.get(task_id)
            if task is None or task.state is not State.WAITING:
                return False
            queue = self._waiting[task.user]
            queue.remove(task)
            if not queue:
                del self._waiting[task.user]
            self._finish(task, State.CANCELLED)
        task.future.cancel()
        return True

    def status(self, task_id: str) -> TaskStatus | None:
        with self._cond:
            task = self._tasks.get(task_id) or self._finished.get(task_id)
            if task is None:
                return None
            order = self._order()
            queued = len(order)
            if task.state is State.RUNNING:
                return TaskStatus(task.id, task.state, 0, queued, self._remaining(task))
            if task.state is not State.WAITING:
                return TaskStatus(task.id, task.state, None, queued, None)
            position = order.index(task) + 1
            mean = self._mean_duration()
            ahead = sum(_or(self._remaining(t), mean) for t in self.running())
            slots = self.executor.slots
            eta = (ahead + position * mean) / slots if mean else None
            return TaskStatus(task.id, task.state, position, queued, eta)

    def result(self, task_id: str, timeout: float | None = None) -> Any:
        """Wait for a task's result (raises what its work raised, or CancelledError)."""
        with self._cond:
            task = self._tasks.get(task_id) or self._finished.get(task_id)
        if task is None:
            raise KeyError(f"task {task_id!r} not found")
        return task.future.result(timeout)

    # --- reading --------------------------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        with self._cond:
            return self._tasks.get(task_id) or self._finished.get(task_id)

    def running(self) -> list[Task]:
        """Tasks running now (one suspended by ``share_turn`` is not: the task it let in is)."""
        with self._cond:
            return [t for t in self._tasks.values() if t.state is State.RUNNING and not t.suspended]

    def share_turn(self, labels: frozenset[str]) -> bool:
        """From inside running work, between two units of it: run one waiting task whose label is in
        ``labels``, of a user with no task running, at once on this thread, then return (True if one
        ran). Fairness per image for long jobs; the caller must leave nothing patched that the other
        task could see. Only the local executor runs tasks this way."""
        outer = current_task()
        if outer is None or not isinstance(self.executor, LocalExecutor):
            return False
        with self._cond:
            busy = {t.user for t in self._tasks.values() if t.state is State.RUNNING}
            task = self._take(lambda t: t.user not in busy and t.label in labels)
            if task is None:
                return False
            outer.suspended = True
        try:
            self._run(task)
        finally:
            outer.suspended = False
        return True

    def others_waiting(self, labels: frozenset[str]) -> bool:
        """Whether ``share_turn`` would run something now."""
        with self._cond:
            busy = {t.user for t in self._tasks.values() if t.state is State.RUNNING}
            return any(q[0].label in labels for u, q in self._waiting.items() if u not in busy)

    def waiting(self) -> list[Task]:
        """Waiting tasks in the order they will run."""
        with self._cond:
            return self._order()

    def close(self) -> None:
        """Stop taking tasks; the running ones finish, waiting ones are cancelled."""
        with self._cond:
            self._closed = True
            waiting = self._order()
            self._cond.notify_all()
        for task in waiting:
            self.cancel(task.id)

    # --- inside ---------------------------------------------------------------------------------------

    def _order(self) -> list[Task]:
        """Round robin over users in the order they will be served (the caller holds the lock)."""
        queues = [list(q) for q in self._waiting.values()]
        return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]

    def _next(self) -> Task | None:
        with self._cond:
            while not self._waiting and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            return self._take(lambda task: True)

    def _take(self, wanted: Callable[[Task], bool]) -> Task | None:
        """The first user's next task that is ``wanted``, marked running (the caller holds the lock)."""
        user = next((u for u, q in self._waiting.items() if wanted(q[0])), None)
        if user is None:
            return None
        queue = self._waiting[user]
        task = queue.popleft()
        # The served user goes to the back of the line; one with nothing left leaves it.
        del self._waiting[user]
        if queue:
            self._waiting[user] = queue
        task.state = State.RUNNING
        task.started_at = time.monotonic()
        return task

    def _dispatch(self) -> None:
        _yield_to_request_handling()
        while (task := self._next()) is not None:
            self._run(task)

    def _run(self, task: Task) -> None:
        if not task.future.set_running_or_notify_cancel():
            with self._cond:
                self._finish(task, State.CANCELLED)
            return
        outer = current_task()
        _current.task = task
        try:
            result = self.executor.run(task)
        except BaseException as error:  # handed to the waiting caller, never lost
            with self._cond:
                self._finish(task, State.FAILED)
            task.future.set_exception(error)
        else:
            with self._cond:
                self._finish(task, State.DONE)
            task.future.set_result(result)
        finally:
            _current.task = outer
            task.progress.end()

    def _finish(self, task: Task, state: State) -> None:
        if task.started_at is not None and state is not State.CANCELLED:
            self._durations.append(time.monotonic() - task.started_at)
        task.state = state
        task.finished_at = time.monotonic()
        task.work = _spent  # drop the closure (request images, job) as soon as it is done
        self._tasks.pop(task.id, None)
        self._finished[task.id] = task
        while len(self._finished) > FINISHED_KEPT:
            self._finished.popitem(last=False)

    def _mean_duration(self) -> float:
        return sum(self._durations) / len(self._durations) if self._durations else 0.0

    def _remaining(self, task: Task) -> float | None:
        report = task.progress.report()
        if report.eta_seconds is not None:
            return report.eta_seconds
        mean = self._mean_duration()
        elapsed = time.monotonic() - (task.started_at or time.monotonic())
        return max(0.0, mean - elapsed) if mean else None


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _spent() -> None:
    raise RuntimeError("this task has already run")
