"""Progress, interrupt and skip of one queued task.

Every task of the job queue (``modules.jobs``) has its own ``Progress``: processing code reports into
the one of the task it runs in, the UI and API read it (percent, ETA, live preview) or ask it to stop,
so one user's Interrupt never reaches another user's task.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProgressReport:
    active: bool
    job: str
    job_no: int
    job_count: int
    batch_size: int  # images made together in each of the job_count batches
    sampling_step: int
    sampling_steps: int
    progress: float  # 0..1 over the whole request
    eta_seconds: float | None
    interrupted: bool
    skipped: bool
    preview: Any  # PIL image or None
    preview_id: int
    textinfo: str
    task_id: str  # the queue's id of the task this progress belongs to ("" outside the queue)


class Progress:
    def __init__(self, task_id: str = "") -> None:
        self._lock = threading.Lock()
        self.task_id = task_id
        self.interrupted = False
        self.skipped = False
        self._reset("")
        self.active = False
        self._spanning = False

    def _reset(self, job: str) -> None:
        self.job = job
        self.job_no = 0
        self.job_count = 0
        self.batch_size = 1
        self.sampling_step = 0
        self.sampling_steps = 0
        self.started_at = time.monotonic()
        self.preview = None
        self.preview_id = 0
        self.textinfo = ""
        self._followed_preview = -1

    def begin(self, job: str, job_count: int = 1, batch_size: int = 1) -> None:
        """The task starts running; an Interrupt pressed before that still counts. Inside ``span``, a
        generation that begins is the next job of the one bar instead."""
        with self._lock:
            if self._spanning:
                if self._span_started:
                    self._advance()
                self._span_started = True
                self.batch_size = batch_size
                return
            self._reset(job)
            self.job_count = job_count
            self.batch_size = batch_size
            self.active = True

    @contextmanager
    def span(self, job: str, job_count: int, batch_size: int = 1) -> Iterator[None]:
        """Generations run one after another (img2img's batch of a folder) as one bar of ``job_count``
        batches, so the bar does not start again at every image."""
        with self._lock:
            self._reset(job)
            self.job_count, self.batch_size, self.active = job_count, batch_size, True
            self._spanning, self._span_started = True, False
        try:
            yield
        finally:
            with self._lock:
                self._spanning = False

    def end(self) -> None:
        with self._lock:
            self.active = False

    def next_job(self) -> None:
        """Start the next batch; a Skip only ever skips the batch that was running when pressed."""
        with self._lock:
            self._advance()

    def _advance(self) -> None:
        self.job_no += 1
        self.sampling_step = 0
        self.skipped = False

    def set_step(self, step: int, total: int) -> None:
        with self._lock:
            self.sampling_step = step
            self.sampling_steps = total

    def set_preview(self, image: Any) -> None:
        with self._lock:
            self.preview = image
            self.preview_id += 1

    def interrupt(self) -> None:
        with self._lock:
            self.interrupted = True

    def skip(self) -> None:
        with self._lock:
            self.skipped = True

    def should_stop(self) -> bool:
        return self.interrupted or self.skipped

    def fraction(self) -> float:
        if not self.active or self.job_count == 0:
            return 0.0
        within = self.sampling_step / self.sampling_steps if self.sampling_steps else 0.0
        return min(1.0, (self.job_no + within) / self.job_count)

    def follow(self, report: ProgressReport) -> None:
        """Show another process's progress of this task (a worker's); its own interrupt and skip
        requests stay as they are, and a new batch clears a skip as ``next_job`` does."""
        with self._lock:
            if report.job_no != self.job_no:
                self.skipped = False
            self.job, self.job_no, self.job_count = report.job, report.job_no, report.job_count
            self.sampling_step, self.sampling_steps = report.sampling_step, report.sampling_steps
            self.textinfo = report.textinfo
            if report.preview is not None and report.preview_id != self._followed_preview:
                self._followed_preview = report.preview_id
                self.preview = report.preview
                self.preview_id += 1

    def report(self) -> ProgressReport:
        with self._lock:
            fraction = self.fraction()
            elapsed = time.monotonic() - self.started_at
            eta = elapsed / fraction - elapsed if self.active and fraction > 0 else None
            return ProgressReport(
                active=self.active,
                job=self.job,
                job_no=self.job_no,
                job_count=self.job_count,
                batch_size=self.batch_size,
                sampling_step=self.sampling_step,
                sampling_steps=self.sampling_steps,
                progress=fraction,
                eta_seconds=eta,
                interrupted=self.interrupted,
                skipped=self.skipped,
                preview=self.preview,
                preview_id=self.preview_id,
                textinfo=self.textinfo,
                task_id=self.task_id,
            )
