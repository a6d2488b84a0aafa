"""By-hand fuzz of the API, longer than the suite's bounded one: bodies drawn from the OpenAPI schema
(the same strategy as tests/api/test_api_fuzz.py, random, not derandomized) for a number of seconds,
against the API over the tiny model. Prints the requests tried and the count of each status; any 5xx is
printed with its body and makes the exit status 1.

    .venv/bin/python bench/fuzz_api.py --seconds 600
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from hypothesis import HealthCheck, given, settings

    from modules import cmd_args
    from modules.api.server import create_app
    from modules.models.tiny import build_tiny_bundle
    from modules.runtime import Runtime
    from tests.api.test_api_fuzz import requests_

    bundle = build_tiny_bundle()
    with tempfile.TemporaryDirectory() as data:
        runtime = Runtime(cmd_args.parse(["--data-dir", data, "--device", "cpu", "--no-bundled-models"]))
        runtime.model_loader = lambda: bundle
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            schema = client.get("/openapi.json").json()
            statuses: Counter[int] = Counter()
            failures: list[str] = []
            end = time.monotonic() + args.seconds

            @settings(max_examples=100, suppress_health_check=list(HealthCheck), deadline=None, database=None)
            @given(requests_(schema))
            def run(request):
                route, body = request
                response = client.post(route, json=body)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(f"{route} {body!r:.400} -> {response.text[:300]}")

            while time.monotonic() < end:
                run()  # a fresh random batch of 100 each time
    print(f"requests: {sum(statuses.values())}")
    print("statuses: " + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())))
    print(f"5xx: {sum(n for code, n in statuses.items() if code >= 500)}")
    for failure in failures[:20]:
        print("  " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
