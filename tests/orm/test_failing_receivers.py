"""A receiver that raises aborts the flush: nothing of it stays in the database,
whether the flush came from flush() or commit(), and rollback() makes the session
usable again. Inside a SAVEPOINT, only the SAVEPOINT is lost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sa_signals import ModelSignal, post_delete, post_save, pre_delete, pre_save
from sa_signals.testing import mute
from tests.conftest import Recorder
from tests.models import AuditEntry, Note, Order

Listen = Callable[..., Recorder]


class ReceiverFailed(Exception):
    pass


def fail(**kwargs: Any) -> None:
    raise ReceiverFailed("the receiver says no")


def references(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.scalars(select(Order.reference)))


SAVE_SIGNALS = [pytest.param(pre_save, id="pre_save"), pytest.param(post_save, id="post_save")]
DELETE_SIGNALS = [
    pytest.param(pre_delete, id="pre_delete"),
    pytest.param(post_delete, id="post_delete"),
]
WAYS_TO_FLUSH = [
    pytest.param(lambda session: session.flush(), id="flush"),
    pytest.param(lambda session: session.commit(), id="commit"),
]


@pytest.mark.parametrize("signal", SAVE_SIGNALS)
@pytest.mark.parametrize("write", WAYS_TO_FLUSH)
def test_a_failing_save_receiver_leaves_nothing_of_the_transaction(
    session: Session,
    engine: Engine,
    listen: Listen,
    signal: ModelSignal,
    write: Callable[[Session], None],
) -> None:
    session.add(Order(reference="flushed earlier in the transaction"))
    session.add(Note(text="a class without receivers, written before Order"))
    session.flush()
    listen(signal, sender=Order).side_effect = fail

    session.add(Order(reference="refused"))
    with pytest.raises(ReceiverFailed):
        write(session)
    assert not session.is_active  # SQLAlchemy rolled the transaction back itself
    session.rollback()

    assert references(engine) == []


@pytest.mark.parametrize("signal", SAVE_SIGNALS)
@pytest.mark.parametrize("write", WAYS_TO_FLUSH)
def test_the_session_is_usable_after_rollback(
    session: Session,
    engine: Engine,
    listen: Listen,
    signal: ModelSignal,
    write: Callable[[Session], None],
) -> None:
    refuse = listen(signal, sender=Order)
    refuse.side_effect = fail
    session.add(Order(reference="refused"))
    with pytest.raises(ReceiverFailed):
        write(session)
    session.rollback()

    with mute(signal, receiver=refuse):
        session.add(Order(reference="accepted"))
        session.commit()
    assert references(engine) == ["accepted"]


@pytest.mark.parametrize("signal", DELETE_SIGNALS)
@pytest.mark.parametrize("write", WAYS_TO_FLUSH)
def test_a_failing_delete_receiver_keeps_the_row(
    session: Session,
    engine: Engine,
    listen: Listen,
    signal: ModelSignal,
    write: Callable[[Session], None],
) -> None:
    order = Order(reference="kept")
    session.add(order)
    session.commit()
    listen(signal, sender=Order).side_effect = fail

    session.delete(order)
    with pytest.raises(ReceiverFailed):
        write(session)
    session.rollback()
    assert references(engine) == ["kept"]


@pytest.mark.parametrize("signal", SAVE_SIGNALS)
def test_inside_a_savepoint_only_the_savepoint_is_rolled_back(
    session: Session, engine: Engine, listen: Listen, signal: ModelSignal
) -> None:
    session.add(Order(reference="outer"))
    session.flush()
    listen(signal, sender=AuditEntry).side_effect = fail

    def write_in_a_savepoint() -> None:
        with session.begin_nested():
            session.add(Order(reference="inner"))
            session.add(AuditEntry(action="refused"))

    with pytest.raises(ReceiverFailed):
        write_in_a_savepoint()
    session.commit()

    assert references(engine) == ["outer"]
    with Session(engine) as other:
        assert other.scalars(select(AuditEntry)).all() == []


@pytest.mark.parametrize("signal", DELETE_SIGNALS)
def test_inside_a_savepoint_a_failing_delete_receiver_loses_only_the_savepoint(
    session: Session, engine: Engine, listen: Listen, signal: ModelSignal
) -> None:
    entry = AuditEntry(action="kept")
    session.add(entry)
    session.commit()
    session.add(Order(reference="outer"))
    session.flush()
    listen(signal, sender=AuditEntry).side_effect = fail

    def delete_in_a_savepoint() -> None:
        with session.begin_nested():
            session.add(Order(reference="inner"))
            session.delete(entry)

    with pytest.raises(ReceiverFailed):
        delete_in_a_savepoint()
    session.commit()

    assert references(engine) == ["outer"]
    with Session(engine) as other:
        assert other.scalars(select(AuditEntry.action)).all() == ["kept"]


def test_a_pre_save_failure_is_raised_before_any_row_of_its_class_is_written(
    session: Session, engine: Engine, listen: Listen
) -> None:
    # A receiver validating data must not be masked by the database refusing it:
    # the reference column has room for 50 characters, which this exceeds.
    def validate(instance: Order, **kwargs: Any) -> None:
        if len(instance.reference) > 50:
            raise ReceiverFailed("reference too long")

    listen(pre_save, sender=Order).side_effect = validate
    session.add(Order(reference="x" * 60))
    with pytest.raises(ReceiverFailed, match="reference too long"):
        session.commit()
    session.rollback()


def test_the_receivers_traceback_is_kept(session: Session, listen: Listen) -> None:
    listen(pre_save, sender=Order).side_effect = fail
    session.add(Order(reference="refused"))
    with pytest.raises(ReceiverFailed) as raised:
        session.flush()
    assert "fail" in [entry.name for entry in raised.traceback]
    session.rollback()


def test_a_failed_flush_leaves_nothing_behind_in_the_session(
    session: Session, listen: Listen
) -> None:
    listen(pre_save, sender=Order).side_effect = fail
    session.add(Order(reference="refused"))
    with pytest.raises(ReceiverFailed):
        session.flush()
    session.rollback()
    assert not session.info.get("sa_signals.flushes")
