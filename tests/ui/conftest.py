"""A live web UI server in a subprocess, as a user starts it (python webui.py ...)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("/tmp/ui-shots")


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
        stop_server(proc)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """One app per test module (browser tests share it): yields (base URL, data dir)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data_dir = tmp_path_factory.mktemp("data")
    proc = start_server([], data_dir, port)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, proc)
        yield url, data_dir
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (never Playwright's own downloaded browsers)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -r requirements-test.txt)"
    )
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def page(browser, module_server):
    """The app open in one page, shared by a module's tests (modules needing more define their own)."""
    from tests.ui.browser import open_app

    url, _ = module_server
    page = open_app(browser, url)
    yield page
    page.close()
