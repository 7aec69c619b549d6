"""Fixtures of the auth tests.

Every test here hashes with a cheap but real Argon2id hasher, installed through
the documented ``set_password_hasher`` and removed afterwards, so the production
defaults are never touched; a test that needs them says ``set_password_hasher(None)``.
The hasher remembers what it verified, which lets a test see *that* the hasher
ran (and against which hash) without measuring time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher

from sa_signals.auth import set_password_hasher, user_login_failed

Sends = list[dict[str, Any]]  # what sa_signals.testing.capture records

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}  # microseconds, not 50 ms


class WatchedHasher(PasswordHasher):
    """A real Argon2id hasher that keeps the ``(hash, password)`` of every verify."""

    def __init__(self, time_cost: int, memory_cost: int, parallelism: int) -> None:
        super().__init__(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        self.verified: list[tuple[str | bytes, str | bytes]] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append((hash, password))
        return super().verify(hash, password)


@pytest.fixture(autouse=True)
def hasher() -> Iterator[WatchedHasher]:
    hasher = WatchedHasher(**CHEAP)
    previous = set_password_hasher(hasher)
    yield hasher
    set_password_hasher(previous)


@pytest.fixture
def failures(sa_signals_capture: Callable[..., Sends]) -> Sends:
    """Every ``user_login_failed`` sent during the test (the plugin's fixture)."""
    return sa_signals_capture(user_login_failed)


def run_python(code: str, *, without_argon2: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, in the repository (``tests`` importable);
    with ``without_argon2``, ``import argon2`` fails there as if it were not installed."""
    prelude = "import sys\nsys.modules['argon2'] = None\n" if without_argon2 else ""
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
