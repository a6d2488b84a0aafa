"""Time taken and memory under the parameters text, and hires fix's "Upscaling from ... to ..."."""

from __future__ import annotations

import torch

from modules.jobs.queue import Task
from modules.ui import performance
from modules.ui.txt2img import hires_size_html


def test_elapsed_text_is_a1111s():
    assert performance.elapsed_text(1.23) == "1.2 sec."
    assert performance.elapsed_text(0.04) == "0.0 sec."
    assert performance.elapsed_text(59.96) == "60.0 sec."  # as A1111: minutes from the unrounded time
    assert performance.elapsed_text(123.4) == "2 min. 3.4 sec."


def test_performance_html_names_a_queue_wait_only_when_there_was_one():
    shown = performance.performance_html(1.2)
    assert "Time taken: <wbr><span class='measurement'>1.2 sec.</span>" in shown
    assert "queue" not in shown and "vram" not in shown
    assert "(after 3.0 sec. in the queue)" in performance.performance_html(1.2, waited=3.0)


def test_task_html_uses_the_tasks_own_running_time():
    task = Task(id="t", user="u", label="txt2img", work=lambda: None)
    assert performance.task_html(task) == ""  # never ran (cancelled while waiting)
    task.submitted_at, task.started_at, task.finished_at = 10.0, 10.2, 12.7
    assert "2.5 sec." in performance.task_html(task) and "queue" not in performance.task_html(task)


class FakeCuda:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def reset_peak_memory_stats(self, device) -> None:
        self.calls.append("reset")

    def memory_stats(self, device) -> dict:
        self.calls.append("stats")
        return {"active_bytes.all.peak": 3 * 2**30, "reserved_bytes.all.peak": 4 * 2**30}

    def mem_get_info(self, device) -> tuple[int, int]:
        return 16 * 2**30, 80 * 2**30


def test_memory_meter_reads_peaks_of_the_job_on_cuda_only():
    cuda = FakeCuda()
    meter = performance.MemoryMeter(torch.device("cuda"), cuda)
    assert meter.run(lambda: cuda.calls.append("work") or 7) == 7
    assert cuda.calls == ["reset", "work", "stats"]
    shown = performance.performance_html(2.0, memory=meter.memory)
    assert "3.00 GB" in shown and "4.00 GB" in shown and "64.0/80 GB</span> (80.0%)" in shown
    on_cpu = performance.MemoryMeter(torch.device("cpu"), FakeCuda())
    assert on_cpu.run(lambda: 1) == 1 and on_cpu.memory is None


def hires(**values):
    base = {"enable_hr": True, "width": 64, "height": 64, "hr_scale": 2.0, "hr_resize_x": 0, "hr_resize_y": 0}
    return hires_size_html({**base, **values})


def test_hires_size_follows_the_jobs_rule():
    assert hires() == (
        "Upscaling from <span class='resolution'>64x64</span> to <span class='resolution'>128x128</span>"
    )
    assert "to <span class='resolution'>96x144</span>" in hires(height=96, hr_scale=1.5)
    assert "to <span class='resolution'>100x96</span>" not in hires(hr_resize_x=100)  # whole cells
    assert "to <span class='resolution'>96x96</span>" in hires(hr_resize_x=100)
    assert hires(enable_hr=False) == ""
    assert hires(width=None) == ""  # a box mid-edit says nothing
