"""What a finished job cost, shown under its parameters text as A1111 shows it: the time taken and, on
a CUDA device, the peak memory the job used.

The time is the job's own running time, from our queue's clock; a wait in the queue (another user's
job ran first) is named beside it rather than counted in.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from modules.jobs.queue import Task

T = TypeVar("T")
GB = 1024**3
WAIT_SHOWN = 1.0  # seconds in the queue worth naming


@dataclass(frozen=True)
class Memory:
    active_peak: int  # bytes
    reserved_peak: int
    system_used: int
    system_total: int


class MemoryMeter:
    """Peak CUDA memory of one job: reset when the job starts, read when it ends (in the queue's
    thread, where only this job runs on the device). ``cuda`` is torch.cuda, or a stand-in in tests."""

    def __init__(self, device: torch.device, cuda: Any = torch.cuda) -> None:
        self.cuda = cuda if device.type == "cuda" else None
        self.device = device
        self.memory: Memory | None = None

    def run(self, work: Callable[[], T]) -> T:
        if self.cuda is None:
            return work()
        self.cuda.reset_peak_memory_stats(self.device)
        try:
            return work()
        finally:
            stats = self.cuda.memory_stats(self.device)
            free, total = self.cuda.mem_get_info(self.device)
            self.memory = Memory(
                stats.get("active_bytes.all.peak", 0),
                stats.get("reserved_bytes.all.peak", 0),
                total - free,
                total,
            )


def elapsed_text(seconds: float) -> str:
    """A1111's wording: "1.2 sec.", "2 min. 3.4 sec."."""
    minutes, rest = divmod(max(0.0, seconds), 60)
    text = f"{rest:.1f} sec."
    return f"{int(minutes)} min. {text}" if minutes >= 1 else text


def memory_html(memory: Memory) -> str:
    # A1111's abbreviations: A(ctive), R(eserved) by torch, Sys(tem) as the driver sees it.
    percent = memory.system_used / max(memory.system_total, 1) * 100
    return (
        "<p class='vram'>"
        f"<abbr title='Active: peak memory the tensors of the job used'>A</abbr>: "
        f"<span class='measurement'>{memory.active_peak / GB:.2f} GB</span>, "
        f"<abbr title='Reserved: peak memory torch held'>R</abbr>: "
        f"<span class='measurement'>{memory.reserved_peak / GB:.2f} GB</span>, "
        f"<abbr title='System: memory in use on the device at the end (all programs)'>Sys</abbr>: "
        f"<span class='measurement'>{memory.system_used / GB:.1f}/{memory.system_total / GB:g} GB</span> "
        f"({percent:.1f}%)</p>"
    )


def performance_html(seconds: float, waited: float = 0.0, memory: Memory | None = None) -> str:
    wait = f" (after {elapsed_text(waited)} in the queue)" if waited >= WAIT_SHOWN else ""
    return (
        "<div class='performance'><p class='time'>Time taken: <wbr>"
        f"<span class='measurement'>{html.escape(elapsed_text(seconds))}</span>{html.escape(wait)}</p>"
        f"{memory_html(memory) if memory else ''}</div>"
    )


def task_html(task: Task, meter: MemoryMeter | None = None) -> str:
    """The cost of a finished ``task`` (nothing for one that never ran: cancelled while waiting)."""
    if task.started_at is None or task.finished_at is None:
        return ""
    waited = task.started_at - task.submitted_at
    return performance_html(task.finished_at - task.started_at, waited, meter.memory if meter else None)
