"""Where the flush benchmarks write: in-memory SQLite, a SQLite file, PostgreSQL.

SQLite databases belong to one worker each (a file in the run's scratch
directory, or the worker's own memory). PostgreSQL gets a database of its own
for the run, ``sa_signals_bench_<pid>``, created with the tables before the
workers start and dropped at the end; the workers share it, one sample at a
time, each sample starting with a ``TRUNCATE``.

A PostgreSQL server that cannot be reached is left out with the reason, unless
``SA_SIGNALS_REQUIRE_SERVICES=1`` (as CI sets it), which makes it an error, as
in the test suite.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from benchmarks.harness import Options
from benchmarks.models import Base

__all__ = ["Databases", "prepared"]


@dataclass
class Databases:
    """The databases of one table's run, and why any asked for is missing."""

    names: list[str]
    urls_for: Callable[[str], dict[str, str]]  # variant -> {database: URL}
    notes: list[str] = field(default_factory=list)


@contextmanager
def prepared(options: Options) -> Iterator[Databases]:
    names = [name for name in options.databases if name != "postgresql"]
    notes = []
    postgresql_url: str | None = None
    if "postgresql" in options.databases:
        try:
            postgresql_url = _create_postgresql_database(options.postgresql_url)
        except OperationalError as error:
            reason = f"PostgreSQL left out: {options.postgresql_url} unreachable ({error.orig})"
            if os.environ.get("SA_SIGNALS_REQUIRE_SERVICES") == "1":
                raise RuntimeError(f"{reason}; SA_SIGNALS_REQUIRE_SERVICES=1") from error
            notes.append(reason)
        else:
            names.append("postgresql")

    def urls_for(variant: str) -> dict[str, str]:
        urls = {"sqlite-memory": "sqlite://"}
        if "sqlite-file" in names:
            path = options.workdir / f"{variant}.sqlite3"
            path.unlink(missing_ok=True)
            urls["sqlite-file"] = f"sqlite:///{path}"
        if postgresql_url is not None:
            urls["postgresql"] = postgresql_url
        return urls

    order = [name for name in options.databases if name in names]
    try:
        yield Databases(order, urls_for, notes)
    finally:
        if postgresql_url is not None:
            _drop_postgresql_database(options.postgresql_url, postgresql_url)


def _bench_database_name() -> str:
    return f"sa_signals_bench_{os.getpid()}"


def _create_postgresql_database(server_url: str) -> str:
    name = _bench_database_name()
    engine = create_engine(
        server_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            connection.execute(text(f"CREATE DATABASE {name}"))
    finally:
        engine.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    bench = create_engine(url)
    try:
        Base.metadata.create_all(bench)
    finally:
        bench.dispose()
    return url


def _drop_postgresql_database(server_url: str, url: str) -> None:
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            database = make_url(url).database
            connection.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
    finally:
        engine.dispose()
