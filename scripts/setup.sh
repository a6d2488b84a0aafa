#!/usr/bin/env bash
# Sets up everything the project needs on a fresh machine, idempotently and fast when nothing changed:
# a virtual environment in .venv with the pinned requirements (and, with --test, the test tools and the
# Chromium browser the UI tests drive). Used by webui.sh and run_tests.sh; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    echo "Creating virtual environment in .venv"
    "$PYTHON" -m venv .venv
fi

install() {  # install a requirements file once per change of its content
    local file=$1 stamp=".venv/.installed-$(basename "$1")" flags=${2:-}
    local sum
    sum=$(cat "$file" constraints.txt | sha256sum | cut -c1-16)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
        echo "Installing $file"
        # shellcheck disable=SC2086
        .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt $flags -r "$file"
        echo "$sum" > "$stamp"
    fi
}

install requirements.txt
if [ "$want_tests" = 1 ]; then
    install requirements-test.txt
    [ -f requirements-test-nodeps.txt ] && install requirements-test-nodeps.txt --no-deps
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        echo "Installing Debian's chromium for the browser tests"
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
fi
