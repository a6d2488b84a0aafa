#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite, browser tests included.
# Any arguments go to pytest, e.g. ./run_tests.sh tests/prompting -x
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"
