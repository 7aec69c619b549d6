"""The three databases every database test runs on, and how to reach them.

SQLite always works. PostgreSQL and MariaDB are servers: each test run creates a
database of its own on them (so that two runs on one machine never meet) and
drops it at the end. An unreachable server skips its tests with the reason, unless
``SA_SIGNALS_REQUIRE_SERVICES=1`` (set by CI), which turns the skip into a failure.

``SA_SIGNALS_BACKENDS=sqlite`` (a comma-separated choice) runs the database tests on
fewer backends: CI's matrix jobs, which prove other Pythons and SQLAlchemy
versions, run on SQLite while the main job runs all three.

Async tests run on each async driver of a backend (``on_every_async_driver``):
PostgreSQL has two, psycopg's async mode and asyncpg.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import URL, Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

ALL_BACKENDS = ("sqlite", "postgresql", "mariadb")


def _chosen_backends() -> tuple[str, ...]:
    chosen = os.environ.get("SA_SIGNALS_BACKENDS")
    if not chosen:
        return ALL_BACKENDS
    backends = tuple(name.strip() for name in chosen.split(","))
    unknown = [name for name in backends if name not in ALL_BACKENDS]
    if unknown or not backends:
        raise pytest.UsageError(
            f"SA_SIGNALS_BACKENDS={chosen!r}: choose among {', '.join(ALL_BACKENDS)}"
        )
    return backends


BACKENDS = _chosen_backends()


def preferring(backend: str) -> list[str]:
    """For a test that needs one database, not each: ``backend`` when the run
    includes it, or else the first backend it does."""
    return [backend if backend in BACKENDS else BACKENDS[0]]


SERVER_URLS = {
    "postgresql": os.environ.get(
        "SA_SIGNALS_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get("SA_SIGNALS_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}

# Each backend's async drivers, the first its default. PostgreSQL has two that
# applications use: psycopg's async mode, and asyncpg, whose types (its own
# UUID class), prepared statements, transactions and row counts (none for an
# executemany) are its own.
ASYNC_DRIVERS: dict[str, tuple[str, ...]] = {
    "sqlite": ("sqlite+aiosqlite",),
    "postgresql": ("postgresql+psycopg", "postgresql+asyncpg"),
    "mariadb": ("mysql+aiomysql",),
}


def _driver_id(backend: str, driver: str) -> str:
    """``postgresql-asyncpg`` where a backend has several drivers, the backend alone
    where it has one (the ids the tests had before)."""
    if len(ASYNC_DRIVERS[backend]) == 1:
        return backend
    return f"{backend}-{driver.partition('+')[2]}"


def on_async_drivers(*drivers: str) -> pytest.MarkDecorator:
    """Run an async test once per async driver (of ``drivers``; every one when
    none is named) of the backends of the run, rather than once per backend: its
    ``database`` (and ``engine``) is the driver's backend's, and
    ``database.async_engine()`` uses that driver. Sync tests keep one run per
    backend, so a second driver costs only the tests that ask for it."""
    targets = [
        pytest.param((backend, driver), id=_driver_id(backend, driver))
        for backend in BACKENDS
        for driver in ASYNC_DRIVERS[backend]
        if not drivers or driver in drivers
    ]
    if not targets:  # SA_SIGNALS_BACKENDS left their backends out: deselected, as asked
        return pytest.mark.outside_the_backends(", ".join(drivers))
    return pytest.mark.parametrize("database", targets, indirect=True)


on_every_async_driver = on_async_drivers()


def services_required() -> bool:
    return os.environ.get("SA_SIGNALS_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip on a laptop without the server; fail in CI, where it must be there."""
    if services_required():
        pytest.fail(f"{reason} (SA_SIGNALS_REQUIRE_SERVICES=1: a missing service is a failure)")
    pytest.skip(reason)


def make_savepoints_real(engine: Engine) -> None:
    """The documented pysqlite recipe: without it Python 3.11's sqlite3 sends no
    BEGIN before a SAVEPOINT, so releasing the outermost SAVEPOINT commits for good
    and ``begin_nested()`` cannot be rolled back."""

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(
        dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry
    ) -> None:
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

    @event.listens_for(engine, "begin")
    def _begin_explicitly(connection: object) -> None:
        connection.exec_driver_sql("BEGIN")  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Database:
    """One backend's database for this test run."""

    backend: str
    url: URL
    async_driver: str | None = None  # None: the backend's first (see ASYNC_DRIVERS)

    def engine(self) -> Engine:
        engine = create_engine(self.url)
        if self.backend == "sqlite":
            make_savepoints_real(engine)
        return engine

    def async_engine(self) -> AsyncEngine:
        """An async engine on the same database. Create and dispose of it inside
        one event loop: its pooled connections belong to the loop that made them."""
        driver = self.async_driver or ASYNC_DRIVERS[self.backend][0]
        engine = create_async_engine(self.url.set(drivername=driver))
        if self.backend == "sqlite":
            make_savepoints_real(engine.sync_engine)
        return engine


@contextmanager
def provisioned(backend: str, tmp_dir: Path) -> Iterator[Database]:
    """A fresh, empty database on ``backend``, removed afterwards."""
    if backend == "sqlite":
        yield Database(backend, make_url(f"sqlite:///{tmp_dir / 'test.sqlite3'}"))
        return

    server_url = make_url(SERVER_URLS[backend])
    name = f"sa_signals_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        server_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except OperationalError as error:
        admin.dispose()
        unavailable(f"{backend} is unreachable at {server_url.render_as_string()}: {error.orig}")
    try:
        yield Database(backend, server_url.set(database=name))
    finally:
        force = " WITH (FORCE)" if backend == "postgresql" else ""  # a leaked connection
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
        admin.dispose()


def empty_all_tables(engine: Engine, backend: str, metadata: MetaData) -> None:
    """Delete every row of ``metadata``'s tables; schemas have tables that point
    at each other, so foreign keys are set aside the way each database allows."""
    tables = list(reversed(metadata.sorted_tables))
    with engine.begin() as connection:
        # A test that leaks an open transaction must fail here, not hang the run.
        if backend == "postgresql":
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            names = ", ".join(engine.dialect.identifier_preparer.format_table(t) for t in tables)
            connection.execute(text(f"TRUNCATE {names} CASCADE"))
            return
        if backend == "mariadb":
            connection.execute(text("SET SESSION innodb_lock_wait_timeout = 10"))
            connection.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
        for table in tables:  # SQLite does not enforce foreign keys unless asked
            connection.execute(table.delete())
        if backend == "mariadb":
            connection.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
