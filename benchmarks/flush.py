"""Table 2: what sa-signals adds to a flush, per database, and what Django's adds.

Each sample is one ``session.commit()`` of N objects (inserted, updated or
deleted), in the worker process of one variant (see ``benchmarks.variants``):
plain SQLAlchemy that never imported sa-signals, sa-signals imported with no
receiver, receivers for another model only, one receiver, ``pre_`` and
``post_`` receivers, one ``on_commit=True`` receiver, and the hand-written
SQLAlchemy listener calling the same function, which is the floor: what a user
would write without sa-signals. Every ratio is to plain SQLAlchemy, except the
line that compares one receiver with that listener.

On in-memory SQLite, Django's ``save()`` (``delete()``) of the same N objects
runs in two more workers, without and with one ``post_save`` (``post_delete``)
receiver, interleaved with the others: what one receiver adds per object there
is the yardstick for what it adds here.

Timing on a shared machine is noisy, so the targets are also checked in
instructions, which callgrind counts exactly (table 2b, ``run_instructions``),
Django's included.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.context import Context
from benchmarks.harness import (
    DATABASE_LABELS,
    Options,
    Samples,
    Table,
    Target,
    format_duration,
    format_precise_ratio,
    format_ratio,
    format_summary,
    interleave,
    labelled,
)
from benchmarks.pool import WorkerProcess
from benchmarks.variants import DJANGO_VARIANTS, SA_VARIANTS, VARIANTS

__all__ = ["run"]

OPERATIONS = ("insert", "update", "delete")
IMPORTED_LIMIT = 1.02  # no receivers <= 1.02x plain SQLAlchemy
IMPORTED_INSTRUCTIONS_LIMIT = 1.005  # ... and <= 1.005x in instructions (issue 17)
LISTENER_LIMIT = 1.10  # one receiver <= 1.10x the hand-written listener
# In instructions (issue 17): one receiver / the listener, per operation; pre_ and
# post_ receivers / one receiver; one on_commit=True receiver / the listener.
LISTENER_INSTRUCTIONS_LIMITS = {"insert": 1.10, "update": 1.25, "delete": 1.10}
PRE_POST_INSTRUCTIONS_LIMIT = 1.05
ON_COMMIT_INSTRUCTIONS_LIMIT = 1.35
DJANGO_LIMIT = 0.5  # µs one post_save receiver adds <= 0.5x what it adds to Django's save()
# Django's, the slowest, first: two at a time, they then run side by side.
CALLGRIND_VARIANTS = (
    "django",
    "django_receiver",
    "plain",
    "imported",
    "listener",
    "receiver",
    "pre_post",
    "on_commit",
    "tracing_off",
    "traced",
)
CALLGRIND_REPEATS = 2  # instruction counts vary by ~0.05% between repeats

Progress = Callable[[str], None]


def run(context: Context) -> tuple[list[Table], list[Target]]:
    options, progress = context.options, context.progress
    tables: list[Table] = []
    targets: list[Target] = []
    names = context.databases.names
    django = list(DJANGO_VARIANTS) if "sqlite-memory" in names else []
    pool = context.workers.get([*SA_VARIANTS, *django])
    for database in names:
        variants = [*SA_VARIANTS, *(django if database == "sqlite-memory" else [])]
        by_operation = {}
        for operation in OPERATIONS:
            by_operation[operation] = interleave(
                variants,
                functools.partial(_sample, pool, database, operation, options.objects),
                rounds=options.rounds,
                warmup=options.warmup,
                progress=labelled(progress, f"table 2, {database}, {operation}"),
            )
        table, found = _table(database, by_operation, options)
        tables.append(table)
        targets.extend(found)
    if tables:
        tables[-1].notes.extend(context.databases.notes)
    return tables, targets


def run_instructions(context: Context) -> tuple[list[Table], list[Target]]:
    """Table 2b, on its own so that it can be run alone (``--tables instructions``)."""
    if not context.options.callgrind:
        return [], []
    table, targets = _callgrind(context.options, context.progress)
    return [table], targets


def _sample(
    pool: dict[str, WorkerProcess], database: str, operation: str, objects: int, variant: str
) -> float:
    return pool[variant].flush(database, operation, objects)


def _table(
    database: str, by_operation: dict[str, Samples], options: Options
) -> tuple[Table, list[Target]]:
    label = DATABASE_LABELS[database]
    objects = options.objects
    table = Table(
        f"Table 2 ({label}): flush cost, N = {objects:,} objects per commit, ratio to plain "
        "SQLAlchemy",
        ["variant", *OPERATIONS],
    )
    for variant in SA_VARIANTS:
        cells = []
        for operation in OPERATIONS:
            samples = by_operation[operation]
            seconds = format_duration(samples.of(variant).median)
            if variant == "plain":
                cells.append(f"1.00x ({seconds})")
            else:
                cells.append(f"{format_ratio(samples.ratio(variant, 'plain'))} ({seconds})")
        table.add(VARIANTS[variant].label, *cells)

    per_object = 1e6 / objects  # seconds per flush -> µs per object
    table.add(
        "**1 receiver / hand-written listener**",
        *[format_ratio(by_operation[o].ratio("receiver", "listener")) for o in OPERATIONS],
    )
    table.add(
        "µs added per object by 1 receiver (vs plain)",
        *[
            format_summary(by_operation[o].difference("receiver", "plain").scaled(per_object), "µs")
            for o in OPERATIONS
        ],
    )
    has_django = "django" in by_operation[OPERATIONS[0]].values
    if has_django:
        table.add(
            "Django: µs per object, no receiver",
            *[
                format_summary(by_operation[o].of("django").scaled(per_object), "µs")
                for o in OPERATIONS
            ],
        )
        table.add(
            "Django: µs added per object by 1 receiver",
            *[
                format_summary(
                    by_operation[o].difference("django_receiver", "django").scaled(per_object),
                    "µs",
                )
                for o in OPERATIONS
            ],
        )
        table.add(
            "**µs added by 1 receiver: ours / Django's**",
            *[
                format_ratio(
                    by_operation[o].ratio_of_differences(
                        ("receiver", "plain"), ("django_receiver", "django")
                    )
                )
                for o in OPERATIONS
            ],
        )

    targets = []
    for operation in OPERATIONS:
        samples = by_operation[operation]
        targets.append(
            Target(
                "2",
                f"{label}, {operation}: imported, no receivers / plain",
                samples.ratio("imported", "plain"),
                IMPORTED_LIMIT,
            )
        )
        targets.append(
            Target(
                "2",
                f"{label}, {operation}: 1 receiver / hand-written listener",
                samples.ratio("receiver", "listener"),
                LISTENER_LIMIT,
            )
        )
        if has_django and operation in ("insert", "update"):  # post_save's own target
            targets.append(
                Target(
                    "2",
                    f"{label}, {operation}: µs added by post_save, ours / Django's",
                    samples.ratio_of_differences(
                        ("receiver", "plain"), ("django_receiver", "django")
                    ),
                    DJANGO_LIMIT,
                    positive_only=True,
                )
            )
    table.notes.append(
        f"Each cell: median [min-max] of {options.rounds} interleaved rounds of the per-round "
        "ratio, then the median time of one commit (flush, COMMIT, deferred receivers). "
        "Objects are built or loaded before the clock starts."
    )
    return table, targets


# -- instructions, under callgrind -------------------------------------------------------------


def _callgrind(options: Options, progress: Progress) -> tuple[Table, list[Target]]:
    # Python runs ~50x slower under callgrind: fewer objects than table 2, which
    # makes the per-flush constant weigh more, so the ratios are if anything stricter.
    objects = options.callgrind_objects
    table = Table(
        f"Table 2b (SQLite :memory:): instructions per commit under callgrind, N = {objects:,}",
        ["variant", *OPERATIONS],
    )
    if shutil.which("valgrind") is None:
        table.notes.append("Not measured: valgrind is not installed.")
        return table, []
    directory = options.workdir / "callgrind"
    directory.mkdir(exist_ok=True)
    progress("table 2b: callgrind, a few minutes")
    # Instruction counts do not depend on what else runs: two at a time, one per core.
    with ThreadPoolExecutor(max_workers=2) as executor:
        counts = dict(
            zip(
                CALLGRIND_VARIANTS,
                executor.map(
                    lambda variant: _count_instructions(variant, directory, objects),
                    CALLGRIND_VARIANTS,
                ),
                strict=True,
            )
        )
    by_operation = {
        operation: Samples({variant: counts[variant][operation] for variant in counts})
        for operation in OPERATIONS
    }
    for variant in (*CALLGRIND_VARIANTS[2:], *CALLGRIND_VARIANTS[:2]):
        cells = []
        for operation in OPERATIONS:
            samples = by_operation[operation]
            instructions = f"{samples.of(variant).median / 1e6:,.1f} M"
            ratio = samples.ratio(variant, "plain")
            cells.append(f"{format_precise_ratio(ratio)} ({instructions})")
        table.add(VARIANTS[variant].label, *cells)
    for label, (variant, baseline) in (
        ("**1 receiver / hand-written listener**", ("receiver", "listener")),
        ("**pre_ + post_ / 1 receiver**", ("pre_post", "receiver")),
        ("**1 on_commit=True receiver / hand-written listener**", ("on_commit", "listener")),
        ("**tracing turned on and off again / never turned on**", ("tracing_off", "receiver")),
        ("**1 receiver traced / untraced**", ("traced", "receiver")),
    ):
        table.add(
            label,
            *[format_precise_ratio(by_operation[o].ratio(variant, baseline)) for o in OPERATIONS],
        )
    per_object = 1e-3 / objects  # instructions per flush -> thousands per object
    for label, pair in (
        ("k instructions added per object by 1 receiver: ours (vs plain)", ("receiver", "plain")),
        ("k instructions added per object by 1 receiver: Django's", ("django_receiver", "django")),
    ):
        table.add(
            label,
            *[
                format_summary(by_operation[o].difference(*pair).scaled(per_object), "k", 1)
                for o in OPERATIONS
            ],
        )
    added = {
        operation: by_operation[operation].ratio_of_differences(
            ("receiver", "plain"), ("django_receiver", "django")
        )
        for operation in OPERATIONS
    }
    table.add(
        "**added by 1 receiver: ours / Django's**",
        *[format_precise_ratio(added[o]) for o in OPERATIONS],
    )
    table.notes.append(
        f"Instructions (Ir) of the timed region only, {CALLGRIND_REPEATS} repeats after a "
        "warm-up (median [min-max]), in millions; counted by `valgrind --tool=callgrind "
        "--dump-before=sys_getswitchinterval`, with PYTHONHASHSEED=0. Noise-free, so it "
        "resolves what the timings cannot."
    )
    targets = [
        Target(
            "2b",
            f"SQLite :memory:, {operation}: imported, no receivers / plain (instructions)",
            by_operation[operation].ratio("imported", "plain"),
            IMPORTED_INSTRUCTIONS_LIMIT,
            precise=True,
        )
        for operation in OPERATIONS
    ]
    targets.extend(
        Target(
            "2b",
            f"SQLite :memory:, {operation}: added by post_save, ours / Django's (instructions)",
            added[operation],
            DJANGO_LIMIT,
            precise=True,
            positive_only=True,
        )
        for operation in ("insert", "update")
    )
    for operation in OPERATIONS:
        samples = by_operation[operation]
        targets += [
            Target(
                "2b",
                f"SQLite :memory:, {operation}: 1 receiver / hand-written listener (instructions)",
                samples.ratio("receiver", "listener"),
                LISTENER_INSTRUCTIONS_LIMITS[operation],
                precise=True,
            ),
            Target(
                "2b",
                f"SQLite :memory:, {operation}: pre_ + post_ / 1 receiver (instructions)",
                samples.ratio("pre_post", "receiver"),
                PRE_POST_INSTRUCTIONS_LIMIT,
                precise=True,
            ),
            Target(
                "2b",
                f"SQLite :memory:, {operation}: on_commit=True receiver / listener (instructions)",
                samples.ratio("on_commit", "listener"),
                ON_COMMIT_INSTRUCTIONS_LIMIT,
                precise=True,
            ),
        ]
    return table, targets


def _count_instructions(variant: str, directory: Path, objects: int) -> dict[str, list[float]]:
    """Run one variant's worker under callgrind; the instructions of each marked
    sample are in dump number 2k (its first marker dumps what came before)."""
    output = directory / f"{variant}.out"
    for stale in directory.glob(f"{variant}.out*"):
        stale.unlink()
    wrapper = [
        "valgrind",
        "--tool=callgrind",
        "-q",
        "--dump-before=sys_getswitchinterval",
        f"--callgrind-out-file={output}",
    ]
    worker = WorkerProcess(
        variant, {"sqlite-memory": "sqlite://"}, wrapper, environment={"PYTHONHASHSEED": "0"}
    )
    counts: dict[str, list[float]] = {}
    marked = 0
    try:
        worker.request("ready")
        for operation in OPERATIONS:
            worker.flush("sqlite-memory", operation, objects)  # warm-up, not counted
            counts[operation] = []
            for _ in range(CALLGRIND_REPEATS):
                worker.flush("sqlite-memory", operation, objects, mark=True)
                marked += 1
                counts[operation].append(_instructions(Path(f"{output}.{2 * marked}")))
    finally:
        worker.close()
    return counts


def _instructions(dump: Path) -> float:
    if not dump.exists():
        raise RuntimeError(
            f"callgrind wrote no {dump.name}: is the Python binary stripped of the "
            "symbol sys_getswitchinterval?"
        )
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return float(line.split()[1])
    raise RuntimeError(f"no summary line in {dump}")
