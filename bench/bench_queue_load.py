"""Many users at once against a live server on loopback: N concurrent API generations plus a few
browser-like clients (page load, then their own task polled through /progress), while a watcher times
/progress throughout and samples the server's memory.

The watcher that the figures come from is a process of its own, as another user's browser is: timed
inside the load client's event loop, a /progress call also waits for that loop to handle the other
205 connections' responses, which is the client's delay, not the server's (both are printed).

    .venv/bin/python bench/bench_queue_load.py [--requests 200] [--tabs 5] [--rounds 2] [--root DIR]

``--root`` runs the server from another checkout (e.g. /work/main, to compare before/after). Prints one
JSON line per round: answered / lost requests, /progress p50/p99/max in ms, server RSS in MiB.
Loopback only; the server is started and stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
JOB = {"prompt": "a red circle", "steps": 1, "width": 64, "height": 64, "seed": 1, "sampler_name": "Euler"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(root: Path, data_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    """``webui.py --api`` of the checkout ``root`` on ``port``, its output discarded."""
    command = [
        sys.executable,
        str(root / "webui.py"),
        "--api",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [*command, *extra], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )


def wait_until_answered(url: str, proc: subprocess.Popen, timeout: float = 300, poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}") from None
            time.sleep(poll)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def start(root: Path, data_dir: Path, port: int) -> subprocess.Popen:
    """A server that answers and has its model loaded: the page comes up before the model's load ends
    (bench_startup.py times that), and the rounds measure serving, not the one-off load."""
    proc = launch(root, data_dir, port)
    wait_until_answered(f"http://127.0.0.1:{port}/sdapi/v1/progress", proc)
    httpx.post(f"http://127.0.0.1:{port}/sdapi/v1/txt2img", json=JOB, timeout=300).raise_for_status()
    return proc


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def api_user(client: httpx.AsyncClient, index: int) -> bool | str:
    response = await client.post("/sdapi/v1/txt2img", json={**JOB, "seed": index}, timeout=None)
    if response.status_code != 200:
        return f"api {response.status_code}: {response.text[:200]}"
    return len(response.json()["images"]) == 1 or "api: wrong image count"


async def browser_tab(client: httpx.AsyncClient, index: int, round_no: int) -> bool:
    """A tab: loads the page, queues its job under its own task id and polls that task until done."""
    await get(client, "/")
    task_id = f"tab-{round_no}-{index}"
    job = asyncio.ensure_future(
        client.post("/sdapi/v1/txt2img", json={**JOB, "force_task_id": task_id}, timeout=None)
    )
    while not job.done():
        await get(client, "/sdapi/v1/progress", task_id=task_id)
        await asyncio.sleep(0.25)
    response = await job
    return response.status_code == 200 or f"tab {response.status_code}: {response.text[:200]}"


async def get(client: httpx.AsyncClient, path: str, **params: str) -> httpx.Response:
    """A GET retried once when the server closed an idle keep-alive connection as it was reused (a
    client-side race that browsers also retry for idempotent requests)."""
    try:
        return await client.get(path, params=params, timeout=None)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        return await client.get(path, params=params, timeout=None)


async def watch_progress(client: httpx.AsyncClient, stop: asyncio.Event, samples: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await get(client, "/sdapi/v1/progress", skip_current_image="true")
        samples.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.1)


def watch_in_own_process(url: str, stop: multiprocessing.Event, out: multiprocessing.Queue) -> None:
    """/progress every 0.1 s from a process of its own until ``stop``; the times in ms go to ``out``."""
    samples = []
    params = {"skip_current_image": "true"}
    with httpx.Client(base_url=url) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                client.get("/sdapi/v1/progress", params=params, timeout=None)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # the server closed the idle keep-alive connection as it was reused: retried, as get() does
                client.get("/sdapi/v1/progress", params=params, timeout=None)
            samples.append((time.perf_counter() - started) * 1000)
            time.sleep(0.1)
    out.put(samples)


def percentiles(samples: list[float], prefix: str) -> dict:
    ordered = sorted(samples)
    return {
        f"{prefix}calls": len(ordered),
        f"{prefix}p50_ms": round(statistics.median(ordered), 1),
        f"{prefix}p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        f"{prefix}max_ms": round(ordered[-1], 1),
    }


async def one_round(url: str, requests: int, tabs: int, round_no: int) -> dict:
    limits = httpx.Limits(max_connections=requests + tabs + 10)
    spawn = multiprocessing.get_context("spawn")
    stop_own, own_samples = spawn.Event(), spawn.Queue()
    own = spawn.Process(target=watch_in_own_process, args=(url, stop_own, own_samples))
    own.start()
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        stop, samples = asyncio.Event(), []
        watcher = asyncio.create_task(watch_progress(client, stop, samples))
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(api_user(client, i) for i in range(requests)),
            *(browser_tab(client, i, round_no) for i in range(tabs)),
            return_exceptions=True,
        )
        seconds = time.perf_counter() - started
        stop.set()
        stop_own.set()
        await watcher
    own_times = own_samples.get(timeout=60)
    own.join(30)
    answered = sum(o is True for o in outcomes)
    failures: dict[str, int] = {}
    for outcome in outcomes:
        if outcome is not True:
            reason = outcome if isinstance(outcome, str) else f"{type(outcome).__name__}: {outcome}"
            failures[reason] = failures.get(reason, 0) + 1
    return {
        "answered": answered,
        "lost": len(outcomes) - answered,
        "failures": failures,
        "seconds": round(seconds, 1),
        **percentiles(own_times, "progress_"),
        **percentiles(samples, "progress_in_load_client_"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--tabs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        proc = start(args.root, Path(data_dir), port)
        try:
            url = f"http://127.0.0.1:{port}"
            print(
                json.dumps({"root": str(args.root), "rss_start_mib": round(rss_mib(proc.pid), 1)}), flush=True
            )
            for round_no in range(args.rounds):
                result = asyncio.run(one_round(url, args.requests, args.tabs, round_no))
                result["round"] = round_no
                result["rss_after_mib"] = round(rss_mib(proc.pid), 1)
                print(json.dumps(result), flush=True)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
