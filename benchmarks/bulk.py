"""Table 4: an ORM-enabled bulk DELETE, with and without a delete receiver.

``session.execute(delete(Item).where(...))`` of N rows, then ``commit()``. With
no delete receiver for the model, sa-signals lets the statement run untouched:
one DELETE, as plain SQLAlchemy. With one, it must announce every row as
Django's ``QuerySet.delete()`` does, so it loads the rows first (one SELECT),
sends ``pre_delete``/``post_delete`` per row, and restricts the DELETE to their
keys: the price of the feature, which this table shows as a ratio to plain
SQLAlchemy. Django's own ``QuerySet.delete()`` makes the same trade (a single
DELETE without receivers, a collection of every row with one); its ratio, on
in-memory SQLite, is shown for comparison.
"""

from __future__ import annotations

import functools

from benchmarks.context import Context
from benchmarks.harness import (
    DATABASE_LABELS,
    Table,
    Target,
    format_duration,
    format_ratio,
    interleave,
    labelled,
)
from benchmarks.pool import WorkerProcess
from benchmarks.variants import DJANGO_VARIANTS

__all__ = ["run"]

BULK_LABELS = {
    "plain": "plain SQLAlchemy (sa_signals not imported)",
    "imported": "sa-signals imported, no receivers",
    "receiver": "1 post_delete receiver",
    "pre_post": "pre_delete + post_delete receivers",
}
BULK_VARIANTS = tuple(BULK_LABELS)


def run(context: Context) -> tuple[list[Table], list[Target]]:
    options = context.options
    objects = options.objects
    table = Table(
        f"Table 4: bulk DELETE of N = {objects:,} rows (`session.execute(delete(...))` + commit), "
        "ratio to plain SQLAlchemy",
        ["variant", *[DATABASE_LABELS[name] for name in options.databases]],
    )
    names = context.databases.names
    django = list(DJANGO_VARIANTS) if "sqlite-memory" in names else []
    pool = context.workers.get([*BULK_VARIANTS, *django])
    results = {}
    for database in names:
        variants = [*BULK_VARIANTS, *(django if database == "sqlite-memory" else [])]
        results[database] = interleave(
            variants,
            functools.partial(_sample, pool, database, objects),
            rounds=options.rounds,
            warmup=options.warmup,
            progress=labelled(progress=context.progress, label=f"table 4, {database}"),
        )
    table.notes.extend(context.databases.notes)

    def cell(database: str, variant: str, baseline: str) -> str:
        samples = results.get(database)
        if samples is None or variant not in samples.values:
            return "-"
        seconds = format_duration(samples.of(variant).median)
        if variant == baseline:
            return f"1.00x ({seconds})"
        return f"{format_ratio(samples.ratio(variant, baseline))} ({seconds})"

    for variant, label in BULK_LABELS.items():
        table.add(label, *[cell(database, variant, "plain") for database in options.databases])
    table.add(
        "Django QuerySet.delete(), no receiver (ratio to itself)",
        *[cell(database, "django", "django") for database in options.databases],
    )
    table.add(
        "Django QuerySet.delete(), 1 post_delete receiver (ratio to no receiver)",
        *[cell(database, "django_receiver", "django") for database in options.databases],
    )
    table.notes.append(
        f"Median [min-max] of {options.rounds} interleaved rounds of the per-round ratio, then "
        "the median time. No target: the rows must be loaded to be announced; see the README's "
        "'Bulk statements' for the cost as documented."
    )
    return [table], []


def _sample(pool: dict[str, WorkerProcess], database: str, objects: int, variant: str) -> float:
    return pool[variant].flush(database, "bulk_delete", objects)
