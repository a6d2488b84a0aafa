"""Time the prompt language: parse + schedule (+ emphasis weights of every scheduled text).

Run: .venv/bin/python bench/bench_prompt_parse.py [--steps 20]
The parse cache is cleared before every run, so each number is a cold parse.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modules.prompting import parse_attention, prompt_schedule  # noqa: E402
from modules.prompting.parser import parse  # noqa: E402

EVERYDAY = "masterpiece, best quality, (a cute corgi:1.2) sitting on a [red:blue:0.4] sofa, ((soft light)), [blurry], bokeh, 85mm"
CASES = {
    "everyday (~120 chars)": EVERYDAY,
    "2,000 chars": ((EVERYDAY + ", ") * 20)[:2000],
    "500 unclosed [": "[" * 500 + "a",
    "500 unclosed (": "(" * 500 + "a",
    "500 words after unclosed [": "a [" * 500,
    "nested 1,000 deep": "(" * 1000 + "a" + ")" * 1000,
    "nested edits, 300 deep": "[a:" * 300 + "b" + ":0.5]" * 300,
    "alternation [a|b] x 100": "[a|b] " * 100,
}


def best_ms(function, repeats: int, budget_s: float = 0.5) -> float:
    """Best of ``repeats`` timed runs (or as many as fit the budget): least disturbed by other load."""
    times = []
    deadline = time.perf_counter() + budget_s
    while len(times) < repeats or (time.perf_counter() < deadline and len(times) < 10 * repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    parse("warm-up")  # build the LALR tables once
    print(f"{'case':28s} {'chars':>6s} {'entries':>7s} {'parse':>9s} {'+schedule':>10s} {'+attention':>11s}")
    for name, text in CASES.items():

        def parse_only(text: str = text) -> None:
            parse.cache_clear()
            parse(text)

        def parse_and_schedule(text: str = text) -> list[tuple[int, str]]:
            parse.cache_clear()
            return prompt_schedule(text, args.steps)

        def everything(text: str = text) -> None:
            for _, scheduled in parse_and_schedule(text):
                parse_attention(scheduled)

        entries = len(parse_and_schedule())
        print(
            f"{name:28s} {len(text):6d} {entries:7d} {best_ms(parse_only, args.repeats):7.2f}ms "
            f"{best_ms(parse_and_schedule, args.repeats):8.2f}ms {best_ms(everything, args.repeats):9.2f}ms"
        )


if __name__ == "__main__":
    main()
