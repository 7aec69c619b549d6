"""raw_mode and signals_disabled: per session, per block, nesting."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from sa_signals import (
    m2m_changed,
    post_delete,
    post_init,
    post_save,
    pre_save,
    raw_mode,
    signals_disabled,
)
from sa_signals.testing import capture
from tests.models import Order, Tag, order_tag


def test_raw_mode_marks_the_saves_of_the_block(session: Session) -> None:
    with capture(pre_save, sender=Order) as before, capture(post_save, sender=Order) as after:
        with raw_mode(session):
            with raw_mode(session):
                session.add(Order(reference="fixture"))
                session.flush()
            session.add(Order(reference="still in the outer block"))
            session.flush()
        session.add(Order(reference="after the block"))
        session.flush()

    assert [call["raw"] for call in before] == [True, True, False]
    assert [call["raw"] for call in after] == [True, True, False]


def test_signals_disabled_sends_nothing_for_that_session_only(
    engine: Engine, session: Session
) -> None:
    with (
        capture(post_save, sender=Order) as saved,
        capture(post_delete, sender=Order) as deleted,
        Session(engine) as other,
    ):
        with signals_disabled(session):
            order = Order(reference="bulk load")
            session.add(order)
            session.commit()
            session.delete(order)
            session.commit()
            other.add(Order(reference="another session"))
            other.commit()
        session.add(Order(reference="after the block"))
        session.commit()

    assert [call["session"] for call in saved] == [other, session]
    assert deleted == []


def test_signals_disabled_silences_loads_and_collections_too(session: Session) -> None:
    order = Order(reference="loaded later", tags=[Tag(name="red")])
    session.add(order)
    session.commit()
    order_id = order.id
    session.expunge_all()

    with (
        capture(post_init, sender=Order) as loaded,
        capture(m2m_changed, sender=order_tag) as collections,
        signals_disabled(session),
    ):
        order = session.get_one(Order, order_id)
        order.tags.append(Tag(name="blue"))
        session.commit()

    assert loaded == []
    assert collections == []


def test_the_switches_take_an_async_session() -> None:
    session = AsyncSession()  # no I/O here: the switches only mark the session
    with raw_mode(session), signals_disabled(session):
        assert session.sync_session.info["sa_signals.raw"] == 1
        assert session.sync_session.info["sa_signals.disabled"] == 1
    assert session.sync_session.info["sa_signals.raw"] == 0
