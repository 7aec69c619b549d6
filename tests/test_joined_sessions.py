"""A session joined to an outer connection-level transaction (the usual test
fixture) commits nothing itself: its on_commit callbacks wait for the
connection's transaction, run when it commits, and are dropped when it (or an
enclosing SAVEPOINT of the connection) rolls back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from sa_signals import on_commit, post_save
from tests.conftest import Recorder
from tests.models import Note

Listen = Callable[..., Recorder]

JOINING_MODES = ["create_savepoint", "rollback_only", "conditional_savepoint"]


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        yield connection


def write_and_commit(connection: Connection, mode: str, calls: list[str]) -> None:
    with Session(bind=connection, join_transaction_mode=mode) as session:  # type: ignore[arg-type]
        session.add(Note(text="hello"))
        on_commit(lambda: calls.append("callback"), session)
        session.commit()


@pytest.mark.parametrize("mode", JOINING_MODES)
def test_callbacks_wait_for_the_connections_commit(connection: Connection, mode: str) -> None:
    calls: list[str] = []
    outer = connection.begin()
    write_and_commit(connection, mode, calls)
    assert calls == []
    outer.commit()
    assert calls == ["callback"]


@pytest.mark.parametrize("mode", JOINING_MODES)
def test_a_rolled_back_outer_transaction_drops_them(connection: Connection, mode: str) -> None:
    calls: list[str] = []
    outer = connection.begin()
    write_and_commit(connection, mode, calls)
    outer.rollback()
    assert calls == []
    connection.begin().commit()
    assert calls == []


@pytest.mark.parametrize("mode", JOINING_MODES)
def test_a_failing_callback_propagates_from_the_connections_commit_with_the_data_committed(
    connection: Connection, engine: Engine, mode: str
) -> None:
    calls: list[str] = []

    def fail() -> None:
        raise ConnectionError("the mail server is down")

    outer = connection.begin()
    with Session(bind=connection, join_transaction_mode=mode) as session:  # type: ignore[arg-type]
        session.add(Note(text="kept"))
        on_commit(lambda: calls.append("first"), session)
        on_commit(fail, session)
        on_commit(lambda: calls.append("after the failure"), session)
        session.commit()
    with pytest.raises(ConnectionError):
        outer.commit()

    assert calls == ["first"]  # as Django: the ones after a failure are dropped
    with Session(engine) as other:
        assert other.scalars(select(Note.text)).all() == ["kept"]


@pytest.mark.parametrize("mode", JOINING_MODES)
def test_a_callback_registered_before_the_session_began_waits_too(
    connection: Connection, mode: str
) -> None:
    calls: list[str] = []
    outer = connection.begin()
    with Session(bind=connection, join_transaction_mode=mode) as session:  # type: ignore[arg-type]
        on_commit(lambda: calls.append("callback"), session)
    assert calls == []
    outer.rollback()
    connection.begin().commit()
    assert calls == []


def test_a_rolled_back_savepoint_of_the_connection_drops_what_it_encloses(
    connection: Connection,
) -> None:
    calls: list[str] = []
    outer = connection.begin()
    write_and_commit(connection, "create_savepoint", calls)  # kept
    per_test = connection.begin_nested()
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        session.add(Note(text="inside the connection's savepoint"))
        on_commit(lambda: calls.append("dropped"), session)
        session.commit()
    per_test.rollback()
    outer.commit()
    assert calls == ["callback"]


def test_a_released_savepoint_of_the_connection_keeps_them(connection: Connection) -> None:
    calls: list[str] = []
    outer = connection.begin()
    per_test = connection.begin_nested()
    write_and_commit(connection, "create_savepoint", calls)
    per_test.commit()
    assert calls == []
    outer.commit()
    assert calls == ["callback"]


def test_control_fully_makes_the_sessions_commit_the_real_one(connection: Connection) -> None:
    calls: list[str] = []
    connection.begin()
    write_and_commit(connection, "control_fully", calls)
    assert calls == ["callback"]
    assert not connection.in_transaction()


def test_a_session_on_a_connection_without_a_transaction_commits_for_real(
    connection: Connection,
) -> None:
    calls: list[str] = []
    write_and_commit(connection, "create_savepoint", calls)
    assert calls == ["callback"]


def test_deferred_receivers_follow_the_same_rule(connection: Connection, listen: Listen) -> None:
    deferred = listen(post_save, sender=Note, on_commit=True)
    seen: list[Any] = []
    deferred.side_effect = lambda instance, **kwargs: seen.append(instance.text)
    outer = connection.begin()
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        session.add(Note(text="hello"))
        session.commit()
        assert seen == []
        outer.commit()
    assert seen == ["hello"]
