"""Following a queued generation from the UI: while the tab's task waits, its place in the queue and
the ETA; while it runs, the bar, ETA and live preview; then the result. Waiting costs no thread: the
handler is async and polls the task."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from typing import Any

from modules.jobs import JobQueue, Task, TaskStatus
from modules.progress import ProgressReport

POLL_SECONDS = 0.25


def waiting_html(status: TaskStatus | None) -> str:
    if status is None or status.position is None:
        text = "Waiting..."
    else:
        eta = f", ETA {status.eta_seconds:.0f}s" if status.eta_seconds is not None else ""
        text = f"Waiting in the queue: {status.position} of {status.queued}{eta}"
    return f"<div class='ui-progress-text queue-position'>{html.escape(text)}</div>"


def images_text(report: ProgressReport) -> str:
    """Which image of how many is being made: "image 2 of 4, ", "images 3-4 of 8, " (a batch of
    several is sampled together); nothing for a single image."""
    size = max(report.batch_size, 1)
    total = report.job_count * size
    if total <= 1:
        return ""
    first = min(report.job_no, report.job_count - 1) * size + 1
    if size == 1:
        return f"image {first} of {total}, "
    return f"images {first}-{first + size - 1} of {total}, "


def progress_html(report: ProgressReport) -> str:
    percent = int(report.progress * 100)
    eta = f", ETA {report.eta_seconds:.0f}s" if report.eta_seconds is not None else ""
    step = f"step {report.sampling_step}/{report.sampling_steps}" if report.sampling_steps else "starting"
    label = html.escape(f"{percent}% - {images_text(report)}{step}{eta}")
    return (
        f"<div class='ui-progress-bar' role='progressbar' aria-valuenow='{percent}'>"
        f"<div class='ui-progress-fill' style='width:{percent}%'></div>"
        f"<span class='ui-progress-text'>{label}</span></div>"
    )


async def follow(queue: JobQueue, task: Task) -> AsyncIterator[tuple[str, Any, Any, bool]]:
    """Yield ``(progress_html, preview_image_or_None, result_or_None, finished)`` until ``task`` ends.

    ``result`` is the task's return value, or the exception it raised, on the final item.
    """
    done = asyncio.wrap_future(task.future)
    last_preview = -1
    while not done.done():
        status = queue.status(task.id)
        if status is None or status.state == "waiting":
            yield waiting_html(status), None, None, False
        else:
            report = task.progress.report()
            preview = None
            if report.preview is not None and report.preview_id != last_preview:
                preview, last_preview = report.preview, report.preview_id
            yield progress_html(report), preview, None, False
        await asyncio.wait([done], timeout=POLL_SECONDS)
    try:
        result = done.result()
    except BaseException as error:  # reported to the user, never lost
        result = error
    yield "", None, result, True
