"""Every kind of session sends the model signals, with no set-up beyond the import."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from sa_signals import post_delete, post_save, pre_delete, pre_save
from tests.conftest import Recorder
from tests.databases import Database, on_every_async_driver
from tests.models import Base, Order

Listen = Callable[..., Recorder]


def save_update_and_delete(session: Session) -> None:
    order = Order(reference="A-1")
    session.add(order)
    session.commit()
    order.status = "paid"
    session.commit()
    session.delete(order)
    session.commit()


def signals_heard(listen: Listen) -> Callable[[], list[tuple[str, Any]]]:
    recorders = {
        name: listen(signal, sender=Order)
        for name, signal in [
            ("pre_save", pre_save),
            ("post_save", post_save),
            ("pre_delete", pre_delete),
            ("post_delete", post_delete),
        ]
    }

    def heard() -> list[tuple[str, Any]]:
        return sorted(
            (name, call.get("created"))
            for name, recorder in recorders.items()
            for call in recorder.calls
        )

    return heard


EVERYTHING = [
    ("post_delete", None),
    ("post_save", False),
    ("post_save", True),
    ("pre_delete", None),
    ("pre_save", None),
    ("pre_save", None),
]


def test_a_plain_session(engine: Engine, listen: Listen) -> None:
    heard = signals_heard(listen)
    with Session(engine) as session:
        save_update_and_delete(session)
    assert heard() == EVERYTHING


def test_a_sessionmaker_session(engine: Engine, listen: Listen) -> None:
    heard = signals_heard(listen)
    with sessionmaker(engine)() as session:
        save_update_and_delete(session)
    assert heard() == EVERYTHING


def test_a_scoped_session(engine: Engine, listen: Listen) -> None:
    heard = signals_heard(listen)
    registry = scoped_session(sessionmaker(engine))
    sessions = listen(post_save, sender=Order)
    save_update_and_delete(registry)  # type: ignore[arg-type]
    assert sessions.calls[0]["session"] is registry()
    registry.remove()
    assert heard() == EVERYTHING


def test_flask_sqlalchemys_db_session(engine: Engine, database: Database, listen: Listen) -> None:
    heard = signals_heard(listen)
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database.url.render_as_string(hide_password=False)
    db = SQLAlchemy(app, model_class=Base)

    with app.app_context():
        save_update_and_delete(db.session)  # type: ignore[arg-type]
        db.engine.dispose()
    assert heard() == EVERYTHING


@on_every_async_driver
def test_an_async_session_sends_with_its_sync_session(
    engine: Engine, database: Database, listen: Listen
) -> None:
    heard = signals_heard(listen)
    sessions = listen(post_save, sender=Order)

    async def main() -> AsyncSession:
        async_engine = database.async_engine()
        try:
            async with async_sessionmaker(async_engine)() as session:
                order = Order(reference="A-1")
                session.add(order)
                await session.commit()
                order.status = "paid"
                await session.commit()
                await session.delete(order)
                await session.commit()
                return session
        finally:
            await async_engine.dispose()

    session = asyncio.run(main())
    assert heard() == EVERYTHING
    assert sessions.calls[0]["session"] is session.sync_session


def test_another_sessions_objects_are_not_reported_twice(engine: Engine, listen: Listen) -> None:
    saved = listen(post_save, sender=Order)
    with Session(engine) as first, Session(engine) as second:
        first.add(Order(reference="first"))
        second.add(Order(reference="second"))
        first.commit()  # one writer at a time: SQLite locks the whole database
        second.commit()
        assert [call["session"] for call in saved.calls] == [first, second]
        assert [call["instance"].reference for call in saved.calls] == ["first", "second"]
    with Session(engine) as session:
        assert sorted(session.scalars(select(Order.reference))) == ["first", "second"]
