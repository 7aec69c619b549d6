"""The harness itself: every database test really runs on each backend, with
working SAVEPOINTs and empty tables; a server that cannot be reached skips its
tests with the reason, or fails them where it must be there (CI)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.models import Note

REPOSITORY = Path(__file__).resolve().parent.parent


def test_a_rolled_back_savepoint_leaves_nothing_behind(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Note(text="kept"))
        nested = session.begin_nested()
        session.add(Note(text="discarded"))
        session.flush()
        nested.rollback()
        session.commit()

    with Session(engine) as session:
        assert session.scalars(select(Note.text)).all() == ["kept"]


def test_a_released_savepoint_is_still_undone_by_the_outer_rollback(engine: Engine) -> None:
    # SAVEPOINT as the first statement of the transaction is the case where
    # pysqlite, left to itself, sends no BEGIN and RELEASE commits for good.
    with Session(engine) as session:
        with session.begin_nested():
            session.add(Note(text="released, then rolled back with the outer transaction"))
        session.rollback()

    with Session(engine) as session:
        assert session.scalars(select(Note.text)).all() == []


def test_each_test_starts_with_empty_tables(engine: Engine) -> None:
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Note)) == 0
        session.add(Note(text="left behind for the next test to not see"))
        session.commit()


def test_each_test_starts_with_empty_tables_again(engine: Engine) -> None:
    test_each_test_starts_with_empty_tables(engine)


def test_the_engine_is_the_backend_it_claims(engine: Engine, backend: str) -> None:
    expected = {"sqlite": "sqlite", "postgresql": "postgresql", "mariadb": "mysql"}[backend]
    assert engine.dialect.name == expected


# -- an unreachable server -------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port that refuses connections: bound, so nothing else takes it
    meanwhile, but never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def suite_without_postgresql(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> pytest.Pytester:
    """A one-test suite on this project's ``database`` fixture (its conftest, as
    a plugin), to run in a fresh process whose PostgreSQL URL points at nothing:
    ``tests.databases`` reads the URLs when first imported, which this process
    did long ago."""
    monkeypatch.delenv("SA_SIGNALS_BACKENDS", raising=False)  # PostgreSQL is the point
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]')
    pytester.makepyfile(
        test_needs_a_database="""
        def test_on_each_backend(database):
            assert database.backend in ("sqlite", "postgresql")
        """
    )
    monkeypatch.setenv(  # for "tests.conftest" to be importable there
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv(
        "SA_SIGNALS_POSTGRESQL_URL", f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/test"
    )
    return pytester


def run_without_mariadb(pytester: pytest.Pytester) -> pytest.RunResult:
    # MariaDB is left out: this is about the server that is missing.
    return pytester.runpytest_subprocess("-k", "not mariadb", "-rs", "-p", "no:cacheprovider")


def test_an_unreachable_server_skips_its_tests_with_the_reason(
    suite_without_postgresql: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    """On a laptop without PostgreSQL the suite still runs: SQLite's run passes and
    PostgreSQL's is skipped, saying which server at which address."""
    monkeypatch.delenv("SA_SIGNALS_REQUIRE_SERVICES", raising=False)

    result = run_without_mariadb(suite_without_postgresql)

    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] *: postgresql is unreachable at "
            f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/test: *"
        ]
    )


def test_an_unreachable_server_fails_when_services_are_required(
    suite_without_postgresql: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    """In CI (SA_SIGNALS_REQUIRE_SERVICES=1) a missing server must not pass for a
    skip: the tests that need it error, with the same reason and why it is fatal."""
    monkeypatch.setenv("SA_SIGNALS_REQUIRE_SERVICES", "1")

    result = run_without_mariadb(suite_without_postgresql)

    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # The driver's own message may span lines: the reason begins on one, ends on another.
    result.stdout.fnmatch_lines(
        [
            "E *Failed: postgresql is unreachable at "
            f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/test: *",
            "E *(SA_SIGNALS_REQUIRE_SERVICES=1: a missing service is a failure)",
        ]
    )
