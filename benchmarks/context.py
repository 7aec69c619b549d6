"""What a table gets from the run: its options, databases, workers and a way to
report progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.databases import Databases
from benchmarks.harness import Options
from benchmarks.pool import Workers

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    options: Options
    databases: Databases  # those reachable, for the whole run
    workers: Workers  # started on demand, shared by the tables
    progress: Callable[[str], None]  # one line on stderr
