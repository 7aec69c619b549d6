"""What every table shares: interleaving, statistics, targets and formatting.

A benchmark on a shared machine measures the machine as much as the code: another
process, a CPU frequency change or a cold cache makes one sample slow. The
numbers printed are therefore never a variant's time alone but ratios between
variants measured side by side:

* each round measures every variant twice, in the order A B C ... C B A (a
  linear drift during the round then weighs on all variants alike), starting
  from a different variant each round (so that no variant is always the one
  measured right after the warm-up, or right after a slow one);
* the round's value of a variant is the lower of its two measurements: on a
  shared machine noise only ever adds time, and one interruption must not
  decide a round; a ratio is then taken within each round, between values
  measured seconds apart;
* warm-up rounds run first and are thrown away (caches, JIT-less but
  lazily-built SQLAlchemy structures, the database's own caches);
* what is printed is the median of the per-round ratios, with the lowest and
  highest ones: ``1.02x [0.99-1.05]``. A range that straddles 1.00 says that the
  difference is below what this machine can resolve.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DATABASE_LABELS",
    "Options",
    "Samples",
    "Summary",
    "Table",
    "Target",
    "format_bytes",
    "format_ratio",
    "gc_paused",
    "interleave",
    "labelled",
]

# The databases a table can run on, by the name the command line uses.
DATABASE_LABELS = {
    "sqlite-memory": "SQLite :memory:",
    "sqlite-file": "SQLite file",
    "postgresql": "PostgreSQL",
}


@dataclass(frozen=True)
class Options:
    """One run's settings, from the command line (see ``__main__``)."""

    quick: bool
    rounds: int  # measured rounds, after the warm-up
    warmup: int  # rounds thrown away first
    objects: int  # rows per flush (tables 2 and 4)
    memory_objects: int  # rows, receivers and instances of table 3
    outbox_objects: int  # events per commit of table 5
    callgrind_objects: int  # rows per flush under callgrind (table 2b)
    databases: tuple[str, ...]
    postgresql_url: str
    broker_url: str  # table 5's Celery broker
    callgrind: bool
    workdir: Path  # scratch space for SQLite files and callgrind output


@dataclass(frozen=True)
class Summary:
    """The median of some per-round values, with their range."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no values to summarize")
        return cls(statistics.median(values), min(values), max(values))

    def scaled(self, factor: float) -> Summary:
        return Summary(self.median * factor, self.low * factor, self.high * factor)


@dataclass
class Samples:
    """One value per variant per measured round, in round order, so that values
    of the same round can be compared with each other."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def of(self, variant: str) -> Summary:
        return Summary.of(self.values[variant])

    def ratio(self, variant: str, baseline: str) -> Summary:
        """``variant / baseline``, taken within each round."""
        pairs = zip(self.values[variant], self.values[baseline], strict=True)
        return Summary.of([value / base for value, base in pairs])

    def difference(self, variant: str, baseline: str) -> Summary:
        """``variant - baseline``, taken within each round."""
        pairs = zip(self.values[variant], self.values[baseline], strict=True)
        return Summary.of([value - base for value, base in pairs])

    def ratio_of_differences(self, ours: tuple[str, str], theirs: tuple[str, str]) -> Summary:
        """``(ours[0] - ours[1]) / (theirs[0] - theirs[1])``, within each round:
        what one thing adds, compared with what another adds."""
        quotients = []
        for round_ in range(len(self.values[ours[0]])):
            added = self.values[ours[0]][round_] - self.values[ours[1]][round_]
            their_added = self.values[theirs[0]][round_] - self.values[theirs[1]][round_]
            quotients.append(added / their_added if their_added else float("inf"))
        return Summary.of(quotients)


def interleave(
    variants: Sequence[str],
    measure: Callable[[str], float],
    *,
    rounds: int,
    warmup: int,
    progress: Callable[[str], None] | None = None,
    combine: Callable[[list[float]], float] = min,
) -> Samples:
    """Measure each variant ``rounds`` times after ``warmup`` rounds, interleaved
    A B C ... C B A within each round, from a rotating start (see the module
    docstring). ``measure(variant)`` returns one measurement; ``combine`` makes
    a round's value of a variant out of its two."""
    samples = Samples({variant: [] for variant in variants})
    for round_ in range(warmup + rounds):
        start = round_ % len(variants)
        order = [*variants[start:], *variants[:start]]
        measured: dict[str, list[float]] = {variant: [] for variant in variants}
        for variant in [*order, *reversed(order)]:
            measured[variant].append(measure(variant))
        if round_ >= warmup:
            for variant in variants:
                samples.values[variant].append(combine(measured[variant]))
        if progress is not None:
            progress(f"round {round_ + 1}/{warmup + rounds}")
    return samples


def labelled(progress: Callable[[str], None], label: str) -> Callable[[str], None]:
    """A progress callback that says which measurement it is about."""
    return lambda step: progress(f"{label}: {step}")


@contextmanager
def gc_paused() -> Iterator[None]:
    """The garbage collector off for a micro-benchmark's loop, as ``timeit`` does:
    a collection would land on whichever variant happened to be running. (Collect
    once before a series of samples: a full collection here would take longer
    than the sample.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# -- targets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal from issue 11, checked against a measured median."""

    table: str
    what: str
    measured: Summary
    limit: float
    unit: str = "x"
    precise: bool = False  # a noise-free count: four decimals
    # a ratio of two differences, meaningless when noise made either one negative
    positive_only: bool = False

    @property
    def resolved(self) -> bool:
        return not self.positive_only or self.measured.median > 0

    @property
    def met(self) -> bool:
        return self.resolved and self.measured.median <= self.limit

    def verdict(self) -> str:
        if not self.resolved:
            return "unresolved: below this machine's noise"
        if self.met:
            return "met"
        if self.limit <= 0:
            return "MISSED"
        return f"MISSED by {(self.measured.median / self.limit - 1) * 100:.1f}%"

    def row(self) -> list[str]:
        if self.unit == "x":
            measured = (format_precise_ratio if self.precise else format_ratio)(self.measured)
            limit = f"<= {self.limit:g}x"  # 1.005x, not 1.00x
        else:
            measured = format_summary(self.measured, self.unit)
            limit = f"<= {self.limit:g} {self.unit}"
        return [self.table, self.what, measured, limit, self.verdict()]


# -- formatting -------------------------------------------------------------------------------


def format_ratio(summary: Summary) -> str:
    return f"{summary.median:.2f}x [{summary.low:.2f}-{summary.high:.2f}]"


def format_precise_ratio(summary: Summary) -> str:
    """For noise-free counts (instructions), where the third decimal means something."""
    return f"{summary.median:.4f}x [{summary.low:.4f}-{summary.high:.4f}]"


def format_summary(summary: Summary, unit: str, digits: int = 2) -> str:
    return (
        f"{summary.median:.{digits}f} [{summary.low:.{digits}f}-{summary.high:.{digits}f}] {unit}"
    )


def format_duration(seconds: float) -> str:
    """An absolute time, shown next to a ratio, in a unit that keeps it short."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e9:.0f} ns"


def format_bytes(count: float) -> str:
    sign = "-" if count < 0 else ""
    count = abs(count)
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{sign}{count / size:.1f} {unit}"
    return f"{sign}{count:.0f} B"


@dataclass
class Table:
    """A titled table, printed as Markdown so that it pastes into the README."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def render(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.rows:
            widths = [
                max(len(row[i]) for row in [self.columns, *self.rows])
                for i in range(len(self.columns))
            ]

            def line(cells: Sequence[str]) -> str:
                padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
                return "| " + " | ".join(padded) + " |"

            lines.append(line(self.columns))
            lines.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
            lines.extend(line(row) for row in self.rows)
            lines.append("")
        lines.extend(self.notes)
        return "\n".join(lines).rstrip() + "\n"


def targets_table(targets: Sequence[Target]) -> Table:
    table = Table("Targets (issues 11 and 17)", ["table", "target", "measured", "limit", "verdict"])
    for target in targets:
        table.add(*target.row())
    return table


def counted(mapping: Mapping[str, int], key: str) -> int:
    """``mapping[key]``, for reply fields that must be there."""
    return int(mapping[key])
