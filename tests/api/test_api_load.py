"""A small version of bench/bench_queue_load.py in the suite: concurrent API generations and
browser-like clients against a live server on loopback; none may be lost (timings are only reported)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_concurrent_requests_and_tabs_are_all_answered():
    command = [sys.executable, str(ROOT / "bench" / "bench_queue_load.py"), "--requests", "50", "--tabs", "2"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    rounds = [json.loads(line) for line in done.stdout.splitlines()[1:]]
    assert [r["answered"] for r in rounds] == [52, 52] and all(r["lost"] == 0 for r in rounds)
    assert all(r["progress_calls"] > 0 for r in rounds)
