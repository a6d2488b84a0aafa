#!/usr/bin/env bash
# Set up (first run only), run the whole test suite (browser tests included), then the linter and the
# formatter check. Any arguments go to pytest instead (no lint), e.g. ./run_tests.sh tests/prompting -x
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh --test
.venv/bin/python -m pytest "$@"
if [ "$#" -eq 0 ]; then
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
fi
