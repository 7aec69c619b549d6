"""on_commit, with Django's semantics, on every database."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from sa_signals import on_commit
from tests.databases import Database, on_every_async_driver
from tests.models import Base, Note


class Calls(list[str]):
    """Records which callbacks ran, in order."""

    def callback(self, name: str) -> Any:
        def record() -> None:
            self.append(name)

        record.__qualname__ = name
        return record


@pytest.fixture
def calls() -> Calls:
    return Calls()


def test_a_callback_runs_once_after_the_commit(session: Session, calls: Calls) -> None:
    session.add(Note(text="hello"))
    on_commit(calls.callback("welcome e-mail"), session)
    session.flush()
    assert calls == []
    session.commit()
    assert calls == ["welcome e-mail"]
    session.commit()
    assert calls == ["welcome e-mail"]


def test_a_callback_never_runs_after_a_rollback(session: Session, calls: Calls) -> None:
    session.add(Note(text="hello"))
    on_commit(calls.callback("welcome e-mail"), session)
    session.rollback()
    session.commit()
    assert calls == []


def test_callbacks_run_in_registration_order(session: Session, calls: Calls) -> None:
    session.add(Note(text="hello"))
    for name in ["first", "second", "third"]:
        on_commit(calls.callback(name), session)
    session.commit()
    assert calls == ["first", "second", "third"]


def test_with_no_transaction_open_it_runs_at_once(session: Session, calls: Calls) -> None:
    assert not session.in_transaction()
    on_commit(calls.callback("now"), session)
    assert calls == ["now"]


def test_a_rolled_back_savepoint_drops_only_its_own_callbacks(
    session: Session, calls: Calls
) -> None:
    session.add(Note(text="outer"))
    on_commit(calls.callback("before the savepoint"), session)
    savepoint = session.begin_nested()
    on_commit(calls.callback("inside the rolled-back savepoint"), session)
    savepoint.rollback()
    on_commit(calls.callback("after the savepoint"), session)
    session.commit()
    assert calls == ["before the savepoint", "after the savepoint"]


def test_a_released_savepoint_waits_for_the_outer_commit(session: Session, calls: Calls) -> None:
    session.add(Note(text="outer"))
    with session.begin_nested():
        on_commit(calls.callback("inside"), session)
        with session.begin_nested():
            on_commit(calls.callback("deeper"), session)
    assert calls == []  # RELEASE SAVEPOINT is no commit
    session.commit()
    assert calls == ["inside", "deeper"]


def test_a_released_savepoint_inside_a_rolled_back_one_is_dropped_with_it(
    session: Session, calls: Calls
) -> None:
    session.add(Note(text="outer"))
    outer_savepoint = session.begin_nested()
    with session.begin_nested():
        on_commit(calls.callback("released, then rolled back with its parent"), session)
    outer_savepoint.rollback()
    session.commit()
    assert calls == []


def test_a_robust_callback_is_logged_and_the_next_ones_run(
    session: Session, calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_mailer() -> None:
        raise ConnectionError("SMTP down")

    session.add(Note(text="hello"))
    on_commit(broken_mailer, session, robust=True)
    on_commit(calls.callback("next"), session)
    with caplog.at_level(logging.ERROR, logger="sa_signals"):
        session.commit()

    assert calls == ["next"]
    (record,) = caplog.records
    assert record.getMessage().startswith("Error calling ")
    assert "broken_mailer in on_commit() (SMTP down)." in record.getMessage()
    assert record.exc_info is not None


def test_a_failing_callback_propagates_with_the_data_committed(
    session: Session, engine: Engine, calls: Calls
) -> None:
    def broken_mailer() -> None:
        raise ConnectionError("SMTP down")

    session.add(Note(text="committed anyway"))
    on_commit(broken_mailer, session)
    on_commit(calls.callback("dropped, as in Django"), session)
    with pytest.raises(ConnectionError):
        session.commit()

    with Session(engine) as other:
        assert other.scalars(select(Note.text)).all() == ["committed anyway"]
    session.add(Note(text="the session is usable"))
    session.commit()
    assert calls == []


def test_a_callback_may_use_the_session(session: Session, engine: Engine) -> None:
    def write_more() -> None:
        session.add(Note(text="written by the callback"))
        session.commit()

    session.add(Note(text="first"))
    on_commit(write_more, session)
    session.commit()
    with Session(engine) as other:
        assert sorted(other.scalars(select(Note.text))) == ["first", "written by the callback"]


def test_something_not_callable_is_refused(session: Session) -> None:
    with pytest.raises(TypeError, match="on_commit"):
        on_commit("send e-mail", session)  # type: ignore[arg-type]


def test_something_that_is_not_a_session_is_refused_naming_it(engine: Engine) -> None:
    # A callback queued on a Connection, or on nothing, would never run.
    with engine.connect() as connection, pytest.raises(TypeError, match="not <sqlalchemy"):
        on_commit(lambda: None, connection)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Expected a Session.*not None"):
        on_commit(lambda: None, None)  # type: ignore[arg-type]


@on_every_async_driver
def test_an_async_session_awaits_async_callbacks_on_its_loop(
    engine: Engine, database: Database
) -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def notify() -> None:
        await asyncio.sleep(0)
        seen.append(asyncio.get_running_loop())

    async def main() -> asyncio.AbstractEventLoop:
        async_engine = database.async_engine()
        try:
            async with AsyncSession(async_engine) as session:
                session.add(Note(text="hello"))
                on_commit(notify, session)
                await session.flush()
                assert seen == []
                await session.commit()
        finally:
            await async_engine.dispose()
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert seen == [loop]


@on_every_async_driver
def test_an_async_session_drops_callbacks_on_rollback(engine: Engine, database: Database) -> None:
    calls = Calls()

    async def main() -> None:
        async_engine = database.async_engine()
        try:
            async with AsyncSession(async_engine) as session:
                session.add(Note(text="hello"))
                on_commit(calls.callback("never"), session)
                await session.rollback()
        finally:
            await async_engine.dispose()

    asyncio.run(main())
    assert calls == []


def test_a_scoped_session_and_flask_sqlalchemys_db_session_take_callbacks(
    engine: Engine, database: Database, calls: Calls
) -> None:
    registry = scoped_session(sessionmaker(engine))
    registry.add(Note(text="scoped"))
    on_commit(calls.callback("scoped"), registry)
    registry.commit()
    registry.remove()

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database.url.render_as_string(hide_password=False)
    db = SQLAlchemy(app, model_class=Base)
    with app.app_context():
        db.session.add(Note(text="flask"))
        on_commit(calls.callback("flask"), db.session)
        assert calls == ["scoped"]
        db.session.commit()
        db.engine.dispose()

    assert calls == ["scoped", "flask"]
