#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite, browser tests included.
# Any arguments go to pytest, e.g. ./run_tests.sh tests/prompting -x
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh --test
.venv/bin/python -m pytest "$@"
if [ "$#" -eq 0 ]; then
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
fi
