"""The demo database, reached through its backend's async driver.

``DATABASE_URL`` names the database as Alembic, the quickstart and the Flask app
take it (``examples.blog.database``: a sync driver, or the SQLite file
``demo.sqlite3`` by default). The FastAPI app talks to the same database through
the async driver of its backend: aiosqlite, asyncpg (what most async PostgreSQL
applications use), aiomysql. A URL that names an async driver already is taken
as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from examples.blog.database import database_url

__all__ = ["ASYNC_DRIVERS", "async_url", "open_async_engine"]

ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mariadb+aiomysql",
}

# How long a request waits for SQLite's write lock, which one transaction at a
# time holds (Python's default is 5 seconds).
SQLITE_LOCK_TIMEOUT = 30.0


def async_url(url: URL) -> URL:
    """``url`` with its backend's async driver, unless it names one already."""
    if url.get_dialect().is_async:
        return url
    backend = url.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(
            f"The FastAPI demo knows no async driver for {backend!r}: use one of "
            f"{', '.join(ASYNC_DRIVERS)}, or name the driver in DATABASE_URL."
        )
    return url.set(drivername=ASYNC_DRIVERS[backend])


def open_async_engine(url: URL | None = None, **engine_options: Any) -> AsyncEngine:
    """An async engine on the demo database (``DATABASE_URL`` when ``url`` is not
    given); on SQLite, with real SAVEPOINTs and one writer at a time."""
    url = async_url(url or database_url())
    if url.get_backend_name() == "sqlite":
        engine_options.setdefault("connect_args", {"timeout": SQLITE_LOCK_TIMEOUT})
    engine = create_async_engine(url, **engine_options)
    if url.get_backend_name() == "sqlite":
        _one_writer_at_a_time(engine)
    return engine


def _one_writer_at_a_time(engine: AsyncEngine) -> None:
    """SQLAlchemy's recipe for aiosqlite (no implicit transactions, our own
    ``BEGIN``, so that SAVEPOINTs are real), with ``BEGIN IMMEDIATE``.

    SQLite lets one transaction write at a time. Under a plain ``BEGIN``, two
    requests that have both read (the slug receiver reads before the INSERT) and
    both want to write deadlock, and SQLite answers "database is locked" at once
    rather than wait. ``BEGIN IMMEDIATE`` takes the write lock first: a second
    request waits for it (``SQLITE_LOCK_TIMEOUT``), and none fails for it.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_immediately(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
