"""Running a generation from the UI: a worker thread does the job while the event handler streams
progress (bar, ETA, live preview) back to the page, then the results."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterator
from typing import Any

from modules.progress import Progress, ProgressReport

POLL_SECONDS = 0.25
WAITING_HTML = "<div class='progress-text'>Waiting for the generation in another tab to finish...</div>"


def progress_html(report: ProgressReport, waiting: bool = False) -> str:
    if waiting:
        return WAITING_HTML
    percent = int(report.progress * 100)
    eta = f", ETA {report.eta_seconds:.0f}s" if report.eta_seconds is not None else ""
    step = f"step {report.sampling_step}/{report.sampling_steps}" if report.sampling_steps else "starting"
    batch = f"batch {report.job_no + 1}/{report.job_count}, " if report.job_count > 1 else ""
    label = html.escape(f"{percent}% - {batch}{step}{eta}")
    return (
        f"<div class='progress-bar' role='progressbar' aria-valuenow='{percent}'>"
        f"<div class='progress-fill' style='width:{percent}%'></div>"
        f"<span class='progress-text'>{label}</span></div>"
    )


def run_with_progress(
    progress: Progress, queue_lock: threading.Lock, work: Callable[[], Any]
) -> Iterator[tuple[str, Any, Any, bool]]:
    """Yield ``(progress_html, preview_image_or_None, result_or_None, finished)`` while ``work`` runs.

    ``result`` is the job's return value, or the exception it raised, on the final item.
    """
    outcome: dict[str, Any] = {}
    # The generation that holds the queue when we arrive is someone else's: until a new one starts
    # (``task_id`` moves on), its progress is not ours and we show "Waiting..." instead. A counter,
    # not a start time: two generations started within the clock's resolution stay distinct.
    foreign_task = progress.report().task_id if queue_lock.locked() else None

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as error:  # reported to the user, never lost
            outcome["result"] = error

    thread = threading.Thread(target=target, daemon=True, name="generation")
    thread.start()
    last_preview = -1
    while thread.is_alive():
        thread.join(POLL_SECONDS)
        report = progress.report()
        waiting = report.task_id == foreign_task or (queue_lock.locked() and not report.active)
        preview = None
        if not waiting and report.preview is not None and report.preview_id != last_preview:
            preview, last_preview = report.preview, report.preview_id
        yield progress_html(report, waiting=waiting), preview, None, False
    yield "", None, outcome.get("result"), True
