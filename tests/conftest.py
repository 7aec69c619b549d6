"""Fixtures shared by the whole suite.

``engine`` runs a test once per database (SQLite, PostgreSQL, MariaDB) on the
tables of ``tests.models``, emptied after every test; ``session`` is a ``Session``
on it. An async test opens ``database.async_engine()`` inside its own event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from sa_signals import Signal
from tests.databases import BACKENDS, Database, empty_all_tables, provisioned
from tests.models import Base

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A database of this test run on each backend, with the test tables created."""
    with provisioned(request.param, tmp_path_factory.mktemp(request.param)) as database:
        engine = database.engine()
        Base.metadata.create_all(engine)
        engine.dispose()
        yield database


@pytest.fixture(scope="session")
def _engines(database: Database) -> Iterator[Engine]:
    engine = database.engine()
    yield engine
    engine.dispose()


@pytest.fixture
def engine(_engines: Engine, database: Database) -> Iterator[Engine]:
    """An engine on each backend in turn; the tables are empty again afterwards."""
    yield _engines
    empty_all_tables(_engines, database.backend, Base.metadata)


@pytest.fixture
def backend(database: Database) -> str:
    return database.backend


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements the engine executes during the test, whitespace folded
    (leaving out the BEGIN of the SQLite SAVEPOINT recipe)."""
    executed: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement != "BEGIN":
            executed.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    yield executed
    event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


class Recorder:
    """A receiver that keeps the keyword arguments of every call, in order."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.side_effect: Callable[..., Any] | None = None

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if self.side_effect is not None:
            self.side_effect(**kwargs)

    @property
    def instances(self) -> list[Any]:
        return [call["instance"] for call in self.calls]


@pytest.fixture
def listen() -> Iterator[Callable[..., Recorder]]:
    """``listen(post_save, sender=Order)`` connects a fresh Recorder for this test."""
    connected: list[tuple[Signal, Recorder, Any]] = []

    def connect(signal: Signal, sender: Any = None, **connect_kwargs: Any) -> Recorder:
        recorder = Recorder()
        signal.connect(recorder, sender=sender, weak=False, **connect_kwargs)
        connected.append((signal, recorder, sender))
        return recorder

    yield connect
    for signal, recorder, sender in connected:
        signal.disconnect(recorder, sender=sender)
