"""Running code in a fresh interpreter, where nothing was connected or wrapped yet."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_fresh(code: str) -> None:
    """Run ``code`` in a new Python process; its failure fails the test, with its
    traceback."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
