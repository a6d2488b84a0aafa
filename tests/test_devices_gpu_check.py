"""bench/gpu_check.py runs end to end on the CPU (tiny model), so GPU time goes to measuring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_cpu_smoke(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--cpu-smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    checks = {r["check"] for r in records}
    assert {"gpu_rng_on_device", "brownian_on_device", "host_reads", "a1111_reproduction", "speed"} <= checks
    assert all(r["equal"] for r in records if r["check"] in ("gpu_rng_on_device", "brownian_on_device"))
    (repro,) = [r for r in records if r["check"] == "a1111_reproduction"]
    assert repro["reproduces"] and repro["max_latent_diff"] == 0.0
    impls = {r["impl"] for r in records if r["check"] == "speed"}
    assert impls == {"ours", "diffusers", "ours --medvram", "ours --lowvram"}
