"""Where the demo database is, and how to open it.

One variable, ``DATABASE_URL``, chooses the database for Alembic, the
quickstart and the Flask app alike; without it, a SQLite file ``demo.sqlite3``
in the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url

__all__ = ["DEFAULT_URL", "database_url", "make_savepoints_real", "open_engine"]

DEFAULT_URL = "sqlite:///demo.sqlite3"


def database_url() -> URL:
    """``DATABASE_URL``, or the default SQLite file.

    A relative SQLite path is made absolute here, against the current directory:
    Flask-SQLAlchemy would otherwise resolve it against the app's instance folder,
    and Alembic and the app would each work on a database of its own.
    """
    url = make_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).resolve()))
    return url


def open_engine(url: URL | None = None, **engine_options: Any) -> Engine:
    """An engine on the demo database, with SAVEPOINTs that work on SQLite too."""
    engine = create_engine(url or database_url(), **engine_options)
    make_savepoints_real(engine)
    return engine


def make_savepoints_real(engine: Engine) -> None:
    """SQLAlchemy's documented recipe for pysqlite; nothing on other databases.

    Python 3.11's ``sqlite3`` sends no ``BEGIN`` before a ``SAVEPOINT``, so
    releasing a ``begin_nested()`` would commit for good, and ``on_commit``
    callbacks could not tell a SAVEPOINT from the real commit.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_explicitly(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")
