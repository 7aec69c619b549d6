"""Fixtures shared by the whole suite.

``engine`` runs a test once per database (SQLite, PostgreSQL, MariaDB) on the
tables of ``tests.models``, emptied after every test; ``session`` is a ``Session``
on it. An async test opens ``database.async_engine()`` inside its own event loop;
marked ``on_every_async_driver`` (``tests.databases``), it runs once per async
driver instead, on the same databases.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from sa_signals import Signal
from tests.databases import BACKENDS, Database, empty_all_tables, provisioned
from tests.models import Base
from tests.tracing import tracing_into

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "outside_the_backends(drivers): runs only on drivers whose backends "
        "SA_SIGNALS_BACKENDS left out of this run; deselected",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test for drivers of backends this run leaves out (SA_SIGNALS_BACKENDS) is
    deselected, as ``-k`` would: not run is what was asked, not a skip."""
    outside = [item for item in items if item.get_closest_marker("outside_the_backends")]
    if outside:
        config.hook.pytest_deselected(items=outside)
        items[:] = [item for item in items if item not in outside]


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Database]]:
    """``databases(backend)``: this run's database on that backend, with the test
    tables, made on first use and dropped at the end of the run. Made once
    however many drivers reach it (an async test on asyncpg uses PostgreSQL's)."""
    made: dict[str, Database] = {}
    with ExitStack() as stack:

        def database_on(backend: str) -> Database:
            if backend not in made:
                database = stack.enter_context(
                    provisioned(backend, tmp_path_factory.mktemp(backend))
                )
                engine = database.engine()
                Base.metadata.create_all(engine)
                engine.dispose()
                made[backend] = database
            return made[backend]

        yield database_on


@pytest.fixture(scope="session", params=BACKENDS)
def database(request: pytest.FixtureRequest, databases: Callable[[str], Database]) -> Database:
    """A database of this test run on each backend, with the test tables created;
    for a test marked ``on_every_async_driver``, on each backend's async drivers."""
    if isinstance(request.param, tuple):
        backend, async_driver = request.param
        return replace(databases(backend), async_driver=async_driver)
    return databases(request.param)


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


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on (sa_signals.tracing), into OpenTelemetry's in-memory exporter;
    off again afterwards."""
    exporter = InMemorySpanExporter()
    with tracing_into(exporter):
        yield exporter


@pytest.fixture(autouse=True, scope="session")
def _traced_when_asked() -> Iterator[None]:
    """SA_SIGNALS_TRACE_TESTS=1 runs the tests with tracing on, to show that the
    traced send methods behave as the untraced ones (see tests/test_tracing.py)."""
    if os.environ.get("SA_SIGNALS_TRACE_TESTS") != "1":
        yield
        return
    with tracing_into(InMemorySpanExporter()):
        yield
