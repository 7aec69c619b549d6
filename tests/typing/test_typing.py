"""The public API as a type checker sees it: user code written the way the
README shows it passes ``mypy --strict``, and the mistakes a typo makes are
caught before anything runs. Run against whatever sa-signals is installed (the
wheel, in CI's wheel job), so it also proves that ``py.typed`` ships."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="the typing tests need mypy (the test extra)")

HERE = Path(__file__).parent
CONFIG = HERE / "mypy.ini"


def mypy_errors(path: Path, cache: Path) -> dict[int, list[str]]:
    """mypy's errors in ``path``, by line."""
    report, problems, _ = mypy_api.run(
        ["--config-file", str(CONFIG), "--cache-dir", str(cache), "--no-error-summary", str(path)]
    )
    assert not problems, problems
    errors: dict[int, list[str]] = {}
    for line in report.splitlines():
        found = re.fullmatch(rf"(?:.*[/\\])?{re.escape(path.name)}:(\d+): error: (.*)", line)
        if found:
            errors.setdefault(int(found[1]), []).append(found[2])
    return errors


def test_user_code_passes_mypy_strict(tmp_path: Path) -> None:
    assert mypy_errors(HERE / "user_code.py", tmp_path) == {}


def test_mypy_catches_each_mistake_and_nothing_else(tmp_path: Path) -> None:
    mistakes = HERE / "mistakes.py"
    marked = {
        number
        for number, line in enumerate(mistakes.read_text().splitlines(), start=1)
        if "  # error" in line
    }
    errors = mypy_errors(mistakes, tmp_path)
    assert set(errors) == marked, errors
    assert any("sendr" in error for error in errors[min(marked)])
