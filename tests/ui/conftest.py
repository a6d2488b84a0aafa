"""A live web UI server in a subprocess, as a user starts it (python webui.py ...)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def start_server(
    args: list[str], data_dir: Path, port: int, prefix: list[str] | None = None
) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = (prefix or []) + [
        sys.executable,
        str(ROOT / "webui.py"),
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *args,
    ]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture
def server(tmp_path, free_port):
    """Start the app; yields its base URL; stops it afterwards."""
    procs = []

    def start(*args: str) -> str:
        proc = start_server(list(args), tmp_path, free_port)
        procs.append(proc)
        url = f"http://127.0.0.1:{free_port}/"
        wait_for_http(url, proc)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
