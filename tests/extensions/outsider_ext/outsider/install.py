"""Runs in a subprocess at start (once per change of this file): writes a marker where the test says."""

import os
from pathlib import Path

marker = os.environ.get("OUTSIDER_INSTALL_MARKER")
if marker:
    Path(marker).write_text(f"installed from {Path.cwd().name}\n")
