"""Run the command line in a fresh process, as a user would (imported by the tests)."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    """``python -m mmfactor.cli ARGS`` with captured text output and a 10-minute limit."""
    return subprocess.run(
        [sys.executable, "-m", "mmfactor.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )
