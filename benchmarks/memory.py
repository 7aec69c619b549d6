"""Table 3: memory, traced by ``tracemalloc`` in worker processes of their own.

* The peak of building and flushing 100,000 new rows in one commit, with and
  without receivers: what sa-signals records per object during a flush (to send
  ``post_save`` after it) must not show next to the objects themselves.
* What stays behind (traced memory after ``gc.collect()``, compared with before)
  once 100,000 receivers were connected, sent to, and disconnected, or dropped
  so that their weak references die; and once 100,000 instances were created
  and committed with deferred (``on_commit=True``) receivers, in a session kept
  open, as a long-lived worker's. "No growth" is read as under one byte per
  receiver or instance: a leak of anything, even an empty tuple, per item would
  be tens of bytes.

Byte counts do not depend on what else the machine runs, so unlike the timing
tables these run two workers at a time, one measurement each (tracemalloc
makes a 100,000-row flush several times slower; repeating it would buy
nothing). Each growth measurement runs after a smaller warm-up in the same
process, so that lazily filled caches (SQLAlchemy's compiled statements) are
not counted. tracemalloc sees Python's allocations only; SQLite's page cache,
in C, is invisible to it and the same for every variant.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import (
    Summary,
    Table,
    Target,
    format_bytes,
    format_precise_ratio,
)
from benchmarks.pool import WorkerProcess, check_calls
from benchmarks.variants import VARIANTS

__all__ = ["run"]

PEAK_VARIANTS = ("plain", "imported", "receiver", "on_commit")
PEAK_LIMIT = 1.01  # with receivers, within 1% of without
GROWTH_LIMIT = 1.0  # bytes per receiver or instance
DATABASE = "sqlite-memory"

Task = Callable[[WorkerProcess], dict[str, Any]]


def run(context: Context) -> tuple[list[Table], list[Target]]:
    objects = context.options.memory_objects

    def peak(worker: WorkerProcess) -> dict[str, Any]:
        reply = worker.request("memory_peak", database=DATABASE, objects=objects)
        check_calls(worker.variant, "insert", objects, reply["calls"])
        return reply

    def deferred(worker: WorkerProcess) -> dict[str, Any]:
        reply = worker.request("memory_deferred", database=DATABASE, objects=objects)
        check_calls(worker.variant, "insert", objects, reply["calls"])
        return reply

    def receivers(weak_collected: bool) -> Task:
        return lambda worker: worker.request(
            "memory_receivers", receivers=objects, weak_collected=weak_collected
        )

    # Tasks of one worker run one after the other; workers run two at a time.
    tasks: dict[str, list[tuple[str, Task]]] = {
        "plain": [("peak", peak)],
        "imported": [("peak", peak), ("deferred", deferred)],
        "receiver": [("peak", peak)],
        "on_commit": [("peak", peak), ("deferred", deferred)],
        "fresh": [("receivers", receivers(False)), ("weak", receivers(True))],
    }
    # "fresh": an "imported" worker that never flushed, whose receivers come and go
    processes = {name: "imported" if name == "fresh" else name for name in tasks}
    pool = context.workers.get(processes)
    context.progress("table 3: tracemalloc, a few minutes")
    with ThreadPoolExecutor(max_workers=2) as executor:

        def run_tasks(name: str) -> dict[str, dict[str, Any]]:
            return {key: task(pool[name]) for key, task in tasks[name]}

        results = dict(zip(tasks, executor.map(run_tasks, tasks), strict=True))
    return _tables(objects, results)


def _tables(
    objects: int, results: dict[str, dict[str, dict[str, Any]]]
) -> tuple[list[Table], list[Target]]:
    peak_table = Table(
        f"Table 3a: peak traced memory, building and committing {objects:,} new rows "
        "(SQLite :memory:)",
        [
            "variant",
            "peak (build + flush)",
            "ratio to no receivers",
            "peak of the flush alone",
            "ratio to no receivers",
        ],
    )

    def ratio(variant: str, key: str) -> Summary:
        value = results[variant]["peak"][key] / results["imported"]["peak"][key]
        return Summary(value, value, value)

    for variant in PEAK_VARIANTS:
        cells = []
        for key in ("peak", "flush_peak"):
            cells.append(format_bytes(results[variant]["peak"][key]))
            cells.append(format_precise_ratio(ratio(variant, key)).split(" ")[0])
        peak_table.add(VARIANTS[variant].label, *cells)
    peak_table.notes.append(
        "tracemalloc, bytes above what the process held before; byte counts vary by a few "
        "KiB from run to run."
    )
    targets = [
        Target(
            "3",
            f"peak of a {objects:,}-row flush, {VARIANTS[variant].label} / no receivers",
            ratio(variant, "peak"),
            PEAK_LIMIT,
        )
        for variant in ("receiver", "on_commit")
    ]

    growth_table = Table(
        "Table 3b: traced memory left behind (after gc.collect())",
        ["after", "growth", "per item"],
    )
    rows = (
        ("fresh", "receivers", f"connecting, sending to, disconnecting {objects:,} receivers"),
        ("fresh", "weak", f"connecting {objects:,} weakly held receivers, then dropping them"),
        (
            "on_commit",
            "deferred",
            f"creating and committing {objects:,} instances, 1 on_commit receiver",
        ),
        ("imported", "deferred", "the same, no receivers (control)"),
    )
    for worker, key, label in rows:
        growth = float(results[worker][key]["growth"])
        per_item = growth / objects
        growth_table.add(label, format_bytes(growth), f"{per_item:.2f} B")
        if worker != "imported":
            targets.append(
                Target(
                    "3",
                    f"no growth after {label}",
                    Summary(per_item, per_item, per_item),
                    GROWTH_LIMIT,
                    unit="B per item",
                )
            )
    return [peak_table, growth_table], targets
