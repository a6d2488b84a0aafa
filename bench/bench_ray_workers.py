"""Throughput of generations on Ray workers (1 and 2) against local execution, on the tiny model.

    .venv/bin/python bench/bench_ray_workers.py [--jobs 24] [--steps 4] [--pairs 3]

Each round submits ``--jobs`` txt2img jobs (64 px, Euler) from three users to the queue and times them
until all are done: locally (one at a time in this process), on 1 Ray worker and on 2. Rounds are
interleaved ``--pairs`` times; prints the median and range of each time over the local one, and the
dispatch overhead per job (1 worker against local). On a 2-core machine two workers share the cores,
so the gain is bounded by them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modules.extensions import startup  # noqa: E402
from modules.models.loader import save_checkpoint  # noqa: E402
from modules.models.tiny import build_tiny_bundle  # noqa: E402
from modules.processing.job import GenerationJob  # noqa: E402
from modules.runtime import Runtime  # noqa: E402


def make_runtime(data_dir: Path, *extra: str) -> Runtime:
    args, extensions, _ = startup.prepare(
        ["--data-dir", str(data_dir), "--device", "cpu", "--no-bundled-models", *extra]
    )
    runtime = Runtime(args, extensions)
    extensions.call("ui_settings", runtime.options)
    return runtime


def timed_round(runtime: Runtime, jobs: int, steps: int) -> float:
    started = time.perf_counter()
    tasks = [
        runtime.submit_job(
            "txt2img",
            GenerationJob(
                prompt="a red circle", steps=steps, width=64, height=64, seed=i, sampler_name="Euler"
            ),
            user=f"user{i % 3}",
        )
        for i in range(jobs)
    ]
    for task in tasks:
        task.future.result(600)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    from modules.jobs.ray_workers import wait_for_workers

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        checkpoint = data / "models" / "Stable-diffusion" / "tiny.safetensors"
        checkpoint.parent.mkdir(parents=True)
        save_checkpoint(build_tiny_bundle(), checkpoint)
        runtimes = {"local": make_runtime(data)}
        for count in (1, 2):
            runtimes[f"ray{count}"] = make_runtime(data, "--workers", "ray", "--ray-workers", str(count))
            wait_for_workers(runtimes[f"ray{count}"].workers)
        for runtime in runtimes.values():
            timed_round(runtime, 3, args.steps)  # warm: models loaded everywhere
        times: dict[str, list[float]] = {name: [] for name in runtimes}
        for _ in range(args.pairs):
            for name, runtime in runtimes.items():
                times[name].append(timed_round(runtime, args.jobs, args.steps))
        local = times["local"]
        report: dict[str, object] = {"jobs": args.jobs, "steps": args.steps, "pairs": args.pairs}
        for name in ("ray1", "ray2"):
            ratios = [t / base for t, base in zip(times[name], local, strict=True)]
            report[f"{name}_over_local"] = {
                "median": round(statistics.median(ratios), 3),
                "min": round(min(ratios), 3),
                "max": round(max(ratios), 3),
            }
        overhead = [(r - base) / args.jobs * 1000 for r, base in zip(times["ray1"], local, strict=True)]
        report["dispatch_overhead_ms_per_job"] = round(statistics.median(overhead), 1)
        report["local_seconds_per_job"] = round(statistics.median(local) / args.jobs, 3)
        print(json.dumps(report))
        for runtime in runtimes.values():
            runtime.queue.close()
            if runtime.workers is not None:
                runtime.workers.close()


if __name__ == "__main__":
    main()
