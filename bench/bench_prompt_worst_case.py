"""Worst-case prompt timings over random prompt-like texts (what the property tests used to assert).

Run: .venv/bin/python bench/bench_prompt_worst_case.py [--count 2000] [--seed 0]
Draws texts from the characters that matter to the language (brackets, colons, pipes, numbers,
escapes, BREAK, AND) and from arbitrary Unicode, then reports the median, p99 and maximum time of a
cold parse, a 20-step schedule and the emphasis parse. The target is single milliseconds per call
(the previous in-test bound was 50 ms).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modules.prompting import parse_attention, prompt_schedule  # noqa: E402
from modules.prompting.parser import parse  # noqa: E402

PIECES = [*"[]():|\\ ab1.5\n-e", " BREAK ", " AND "]


def random_text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 60)))
    return "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(0, 200)))


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    results: dict[str, list[float]] = {"parse": [], "schedule (20 steps)": [], "attention": []}
    for _ in range(args.count):
        text = random_text(rng)
        parse.cache_clear()
        results["parse"].append(timed(parse, text))
        parse.cache_clear()
        results["schedule (20 steps)"].append(timed(prompt_schedule, text, 20))
        results["attention"].append(timed(parse_attention, text))
    print(f"{args.count} random texts, seed {args.seed}")
    print(f"{'call':<22}{'median':>10}{'p99':>10}{'max':>10}")
    for name, times in results.items():
        times.sort()
        p99 = times[int(len(times) * 0.99) - 1]
        print(
            f"{name:<22}{statistics.median(times) * 1e3:>8.3f}ms{p99 * 1e3:>8.3f}ms{times[-1] * 1e3:>8.3f}ms"
        )


if __name__ == "__main__":
    main()
