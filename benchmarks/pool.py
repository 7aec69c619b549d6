"""The coordinator's side of the worker processes (see ``benchmarks.worker``).

Workers start together (their imports overlap) and then run one request at a
time, in the order the coordinator asks, which is what interleaves the variants.
One set of workers serves the whole run.
A worker runs from the directory that holds the ``benchmarks`` package, so a
copy of the repository (with a patched ``sa_signals`` next to it) measures that
copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from benchmarks.variants import VARIANTS

__all__ = ["ROOT", "WorkerError", "WorkerProcess", "Workers", "check_calls", "workers"]

ROOT = Path(__file__).absolute().parent.parent  # not resolved: a symlinked copy runs as itself


class WorkerError(RuntimeError):
    pass


class WorkerProcess:
    """One variant's worker, possibly under a wrapper (valgrind)."""

    def __init__(
        self,
        variant: str,
        urls: dict[str, str],
        wrapper: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.variant = variant
        config = json.dumps({"variant": variant, "urls": urls})
        self.process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "benchmarks.worker", config],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=None if environment is None else {**os.environ, **environment},
        )
        self.pid = self.process.pid

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        return stdin, stdout

    def request(self, command: str, **arguments: Any) -> dict[str, Any]:
        stdin, stdout = self._pipes()
        stdin.write(json.dumps({"command": command, **arguments}) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise WorkerError(
                f"the {self.variant!r} worker exited ({self.process.wait()}) on {command}"
            )
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"the {self.variant!r} worker failed on {command}:\n{reply['error']}")
        return reply

    def flush(self, database: str, operation: str, objects: int, mark: bool = False) -> float:
        """Seconds of one timed flush, after checking that the receivers ran as
        often as they should have."""
        reply = self.request(
            "flush", database=database, operation=operation, objects=objects, mark=mark
        )
        check_calls(self.variant, operation, objects, reply["calls"])
        return float(reply["seconds"])

    def close(self) -> None:
        stdin, _ = self._pipes()
        stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def check_calls(variant: str, operation: str, objects: int, calls: int) -> None:
    expected = VARIANTS[variant].expected_calls(operation, objects)
    if calls != expected:
        raise WorkerError(
            f"{variant}: {operation} of {objects} objects called the receiver {calls} "
            f"times, not {expected}: the variant does not measure what it claims"
        )


class Workers:
    """The run's worker processes, started when a table first needs them (all
    those it needs at once, so that their start-ups overlap) and kept until the
    run ends, so that tables 2, 3 and 4 share them."""

    def __init__(self, urls_for: Callable[[str], dict[str, str]]) -> None:
        self._urls_for = urls_for
        self._started: dict[str, WorkerProcess] = {}

    def get(self, variants: Sequence[str] | Mapping[str, str]) -> dict[str, WorkerProcess]:
        """The workers of these variants (or, for a mapping ``{name: variant}``,
        of these names: one variant may run in several processes)."""
        named = variants if isinstance(variants, Mapping) else {v: v for v in variants}
        new = {
            name: WorkerProcess(variant, self._urls_for(name))
            for name, variant in named.items()
            if name not in self._started
        }
        self._started.update(new)
        for worker in new.values():
            worker.request("ready")
        return {name: self._started[name] for name in named}

    def close(self) -> None:
        for worker in self._started.values():
            worker.close()
        self._started.clear()


@contextmanager
def workers(urls_for: Callable[[str], dict[str, str]]) -> Iterator[Workers]:
    started = Workers(urls_for)
    try:
        yield started
    finally:
        started.close()
