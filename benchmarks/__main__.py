"""``python -m benchmarks``: every table, in one run, then the targets.

Run it from the repository root. ``--quick`` is a smoke run of seconds (tiny N,
two rounds, no callgrind), which CI runs so that the benchmarks never rot; its
numbers mean nothing. Tables print as they finish, on stdout, as Markdown;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from benchmarks import bulk, calls, databases, dispatch, flush, memory, outbox
from benchmarks.context import Context
from benchmarks.harness import DATABASE_LABELS, Options, Table, Target, targets_table
from benchmarks.pool import workers

TableRun = Callable[[Context], tuple[list[Table], list[Target]]]

TABLES: dict[str, TableRun] = {
    "dispatch": dispatch.run,
    "calls": calls.run,
    "flush": flush.run,
    "instructions": flush.run_instructions,
    "memory": memory.run,
    "bulk": bulk.run,
    "outbox": outbox.run,
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="sa-signals' cost, side by side with plain SQLAlchemy, a hand-written "
        "listener, blinker and Django (see benchmarks/README.md).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run of seconds (CI); numbers mean nothing"
    )
    parser.add_argument(
        "--tables",
        default=",".join(TABLES),
        help=f"comma-separated, among {', '.join(TABLES)} (default: all)",
    )
    parser.add_argument(
        "--databases",
        default=",".join(DATABASE_LABELS),
        help=f"comma-separated, among {', '.join(DATABASE_LABELS)} (default: all)",
    )
    parser.add_argument("--rounds", type=int, help="measured rounds (default 9; --quick 2)")
    parser.add_argument(
        "--warmup", type=int, help="rounds thrown away first (default 1; --quick 0)"
    )
    parser.add_argument(
        "--objects", type=int, help="rows per flush, tables 2 and 4 (default 10,000)"
    )
    parser.add_argument(
        "--memory-objects",
        type=int,
        help="rows, receivers and instances of table 3 (default 100,000)",
    )
    parser.add_argument(
        "--outbox-objects",
        type=int,
        help="events per commit of table 5 (default 1,000: Celery publishes ~500 a second)",
    )
    parser.add_argument(
        "--no-callgrind", action="store_true", help="skip the instruction counts (table 2b)"
    )
    parser.add_argument(
        "--callgrind-objects",
        type=int,
        default=2_000,
        help="rows per flush under callgrind, ~50x slower (default 2,000)",
    )
    parser.add_argument(
        "--postgresql-url",
        default=os.environ.get(
            "SA_SIGNALS_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="a server where a database sa_signals_bench_<pid> may be created and dropped",
    )
    parser.add_argument(
        "--broker-url",
        default="redis://127.0.0.1:6379/15",
        help="the Celery broker of table 5, where a queue sa_signals_bench may be emptied "
        "(default: redis://127.0.0.1:6379/15)",
    )
    return parser.parse_args(argv)


def _options(arguments: argparse.Namespace, workdir: Path) -> Options:
    quick = arguments.quick
    databases = tuple(name for name in arguments.databases.split(",") if name)
    unknown = set(databases) - set(DATABASE_LABELS)
    if unknown:
        raise SystemExit(f"unknown database(s): {', '.join(sorted(unknown))}")
    return Options(
        quick=quick,
        rounds=arguments.rounds or (2 if quick else 9),
        warmup=arguments.warmup if arguments.warmup is not None else (0 if quick else 1),
        objects=arguments.objects or (20 if quick else 10_000),
        memory_objects=arguments.memory_objects or (500 if quick else 100_000),
        outbox_objects=arguments.outbox_objects or (20 if quick else 1_000),
        callgrind_objects=arguments.callgrind_objects,
        databases=databases,
        postgresql_url=arguments.postgresql_url,
        broker_url=arguments.broker_url,
        callgrind=not (quick or arguments.no_callgrind),
        workdir=workdir,
    )


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _header(options: Options) -> str:
    """The machine and versions, so that a table pasted elsewhere says where it
    was measured."""
    import sqlite3

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("sa-signals", "SQLAlchemy", "blinker", "Django")
    )
    spec = importlib.util.find_spec("sa_signals")  # which copy: a patched one measures itself
    location = Path(spec.origin).parent if spec is not None and spec.origin else "not found"
    lines = [
        f"## sa-signals benchmarks, {datetime.date.today().isoformat()}"
        + (" (--quick: smoke run, numbers mean nothing)" if options.quick else ""),
        "",
        f"- Machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, {versions}, SQLite {sqlite3.sqlite_version}",
        f"- sa_signals from {location}",
        f"- {options.rounds} measured rounds after {options.warmup} warm-up, N = "
        f"{options.objects:,} (table 2b: {options.callgrind_objects:,}; table 3: "
        f"{options.memory_objects:,}; table 5: {options.outbox_objects:,})",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    chosen = [name for name in arguments.tables.split(",") if name]
    unknown = set(chosen) - set(TABLES)
    if unknown:
        raise SystemExit(f"unknown table(s): {', '.join(sorted(unknown))}")
    workdir = Path(tempfile.mkdtemp(prefix="sa-signals-bench-"))
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f}s] {message}", file=sys.stderr, flush=True)

    try:
        options = _options(arguments, workdir)
        print(_header(options), flush=True)
        targets: list[Target] = []
        if not set(chosen) & {"flush", "memory", "bulk", "outbox"}:  # no database to set up
            options = dataclasses.replace(options, databases=())
        with (
            databases.prepared(options) as available,
            workers(available.urls_for) as pool,
        ):
            context = Context(options, available, pool, progress)
            for name in chosen:
                progress(f"table {name}")
                tables, found = TABLES[name](context)
                for table in tables:
                    print(table.render(), flush=True)
                targets.extend(found)
        if targets:
            print(targets_table(targets).render(), flush=True)
        progress("done")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
