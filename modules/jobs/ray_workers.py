"""Generation on Ray workers (``--workers ray``): the queue stays here, the jobs run in worker processes.

The front end (UI and API) keeps its one fair queue; with ``--workers ray`` the queue runs as many tasks
at once as there are workers, and each generation task hands its job to a free ``GenerationWorker``
actor: a process with its own ``Runtime`` built from the same command line (same folders, extensions
and settings file), holding its own loaded models. The job travels with the settings snapshot it would
have run with here, so a job gives the same bytes on a worker as locally. While it runs, the task's
``Progress`` follows the worker's (steps, preview, text), and Interrupt and Skip are passed on to that
worker. A worker that dies mid-job is replaced and the job runs again on another (the user is told);
with none left it fails with a clear message. A worker that already holds the job's checkpoint is
preferred, which saves reloads.

Nothing here is imported without ``--workers ray``.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray

from modules.jobs.queue import Task
from modules.processing.job import GenerationJob, GenerationResult
from modules.progress import Progress, ProgressReport

ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.2  # how often a running job's progress is fetched from its worker
RETRIES = 1  # a job whose worker died runs again this many times, on another worker


class WorkerLost(RuntimeError):
    """The job's worker died and no other could finish it."""


class WorkerLacksModel(RuntimeError):
    """The job's checkpoint is not in the worker's models folder (a cluster's nodes need the files)."""


class GenerationWorker:
    """One worker process: a ``Runtime`` of its own, running one job at a time (as a Ray actor; its
    progress, interrupt and skip methods answer while a job runs, on the actor's other threads)."""

    def __init__(self, argv: list[str], threads: int) -> None:
        import torch

        from modules import offline

        # Ray limits a worker to one thread; the front end's count keeps CPU results bit-identical
        # to a local run (reductions split across threads round differently).
        torch.set_num_threads(threads)

        offline.enable(block_network=True)
        from modules.extensions import startup
        from modules.runtime import Runtime

        args, extensions, _ = startup.prepare(argv)
        args.workers = "local"  # a worker runs its jobs itself
        self.runtime = Runtime(args, extensions)
        extensions.call("ui_settings", self.runtime.options)  # the same settings as the front end's
        self.loaded: str | None = None

    def generate(self, mode: str, job: GenerationJob) -> tuple[GenerationResult, str | None, int]:
        """Run the job; the result, the checkpoint now loaded and this process's id."""
        self._check_checkpoint((job.override_settings or {}).get("sd_model_checkpoint"))
        result = self.runtime.run_job(mode, job)
        loaded = self.runtime.loaded_model()
        self.loaded = loaded.name if loaded is not None else None
        return result, self.loaded, os.getpid()

    def _check_checkpoint(self, name: str | None) -> None:
        """Say clearly which worker lacks the job's checkpoint and where it looked (the front end may
        list files this worker's folder does not hold, or got after it started: rescanned once)."""
        models = self.runtime.models
        for attempt in range(2):
            try:
                if name:
                    models.find(name)
                return
            except KeyError:
                if attempt == 0:
                    models.refresh()
        folders = ", ".join(str(folder) for folder in models.ckpt_dirs) or "none"
        raise WorkerLacksModel(
            f"the worker on {platform.node()} (process {os.getpid()}) has no checkpoint {name!r} in its "
            f"models folder ({folders}); workers read model files from the path they are given: "
            "put the file there (on a cluster, a folder every node shares)"
        )

    def progress(self) -> ProgressReport:
        return self.runtime.progress.report()

    def interrupt(self) -> bool:
        return self.runtime.interrupt()

    def skip(self) -> bool:
        return self.runtime.interrupt(skip=True)

    def pid(self) -> int:
        return os.getpid()


class RayWorkers:
    """The pool of worker actors the queue's generation tasks run on."""

    def __init__(self, argv: list[str], count: int, address: str | None = None) -> None:
        if not ray.is_initialized():
            # Local workers import this project: put it on their path (a cluster's nodes need a copy).
            os.environ["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
            )
            ray.init(
                address=address or None,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
            )
        self.argv = list(argv)
        self._actor_class = ray.remote(max_concurrency=4)(GenerationWorker)
        self._lock = threading.Condition()
        self._free: list[Any] = []
        self._loaded: dict[Any, str | None] = {}
        self.pids: dict[int, int] = {}  # worker process id -> jobs it ran
        for _ in range(count):
            self._free.append(self._start())

    def _start(self) -> Any:
        import torch

        # A worker reserves its GPU; on CPUs it reserves nothing, so asking for more workers than the
        # cluster has cores still starts them all (Ray's default of one CPU each left the rest pending
        # for ever), and SPREAD places them across a cluster's nodes rather than packing the first.
        actor = self._actor_class.options(
            num_cpus=0, num_gpus=_gpus_per_worker(), scheduling_strategy="SPREAD"
        ).remote(self.argv, torch.get_num_threads())
        self._loaded[actor] = None
        return actor

    def actors(self) -> list[Any]:
        with self._lock:
            return list(self._loaded)

    def run(self, mode: str, job: GenerationJob, settings: Mapping[str, Any], task: Task | None) -> Any:
        """Run a job on a free worker (one holding its checkpoint first); retried once if it dies."""
        job = _with_settings(job, settings)
        wanted = settings.get("sd_model_checkpoint") or None
        progress = task.progress if task is not None else Progress()
        for attempt in range(RETRIES + 1):
            actor = self._take(wanted)
            try:
                result, loaded, pid = self._follow(actor, actor.generate.remote(mode, job), progress)
            except ray.exceptions.RayTaskError as error:  # the job failed there: its own error, as here
                self._give_back(actor, self._loaded.get(actor))
                raise error.cause from None
            except ray.exceptions.RayActorError as error:
                self._replace(actor)
                if attempt == RETRIES:
                    raise WorkerLost(
                        f"the worker running this job stopped ({error.__class__.__name__})"
                    ) from None
                progress.textinfo = "Its worker stopped; running the job again on another worker"
                continue
            self._give_back(actor, loaded)
            self.pids[pid] = self.pids.get(pid, 0) + 1
            if attempt:
                result.comments.append("This job was run again after its first worker stopped.")
            return result
        raise AssertionError("unreachable")

    def _follow(self, actor: Any, ref: Any, progress: Progress) -> Any:
        """Wait for the job, mirroring the worker's progress and passing Interrupt/Skip on."""
        told_interrupt, told_skip_of = False, -1
        while True:
            done, _ = ray.wait([ref], timeout=POLL_SECONDS)
            if done:
                return ray.get(ref)
            if progress.interrupted and not told_interrupt:
                actor.interrupt.remote()
                told_interrupt = True
            if progress.skipped and told_skip_of != progress.job_no:
                actor.skip.remote()
                told_skip_of = progress.job_no
            try:
                report = ray.get(actor.progress.remote(), timeout=5)
            except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError):
                continue  # the job's own reference says what happened to the worker
            progress.follow(report)

    def _take(self, wanted: str | None) -> Any:
        with self._lock:
            while not self._free:
                self._lock.wait()
            holding = [a for a in self._free if wanted and self._loaded.get(a) and self._loaded[a] in wanted]
            actor = holding[0] if holding else self._free[0]
            self._free.remove(actor)
            return actor

    def _give_back(self, actor: Any, loaded: str | None) -> None:
        with self._lock:
            self._loaded[actor] = loaded
            self._free.append(actor)
            self._lock.notify()

    def _replace(self, actor: Any) -> None:
        with self._lock:
            self._loaded.pop(actor, None)
            self._free.append(self._start())
            self._lock.notify()

    def close(self) -> None:
        with self._lock:
            actors, self._free = list(self._loaded), []
            self._loaded.clear()
        for actor in actors:
            ray.kill(actor)


def _with_settings(job: GenerationJob, settings: Mapping[str, Any]) -> GenerationJob:
    """The job carrying the whole settings snapshot it runs with here, so the worker's own config
    cannot differ (the snapshot already holds the job's own overrides)."""
    import dataclasses

    return dataclasses.replace(job, override_settings=dict(settings))


def _gpus_per_worker() -> float:
    import torch

    return 1.0 if torch.cuda.is_available() else 0.0


def default_worker_count() -> int:
    """One worker per GPU, else one."""
    import torch

    return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1


def wait_for_workers(workers: RayWorkers, timeout: float = 300.0) -> list[int]:
    """Block until every worker has started (it loads torch and the extensions); their process ids."""
    deadline = time.monotonic() + timeout
    refs = [actor.pid.remote() for actor in workers.actors()]
    return ray.get(refs, timeout=max(1.0, deadline - time.monotonic()))
