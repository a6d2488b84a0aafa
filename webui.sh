#!/usr/bin/env bash
# Set up (first run only) and start the web UI on http://127.0.0.1:7860 with the bundled default model.
# Any arguments go to webui.py, e.g. ./webui.sh --listen --port 7861 --api
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
exec .venv/bin/python webui.py "$@"
