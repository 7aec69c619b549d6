"""Receivers connected with on_commit=True: after the commit, once per change,
never for a rolled-back change, reading the instance without SQL."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from sa_signals import Signal, post_delete, post_save, receiver
from tests.conftest import Recorder
from tests.models import Invoice, Order, OrderLine, Submission

Listen = Callable[..., Recorder]


def test_a_deferred_receiver_runs_after_the_commit_with_the_same_arguments(
    session: Session, listen: Listen
) -> None:
    immediate = listen(post_save, sender=Order)
    deferred = listen(post_save, sender=Order, on_commit=True)
    order = Order(reference="A-1")
    session.add(order)
    session.flush()
    assert len(immediate.calls) == 1
    assert deferred.calls == []

    session.commit()
    (call,) = deferred.calls
    assert call.keys() == immediate.calls[0].keys()
    assert call["instance"] is order
    assert call["created"] is True
    assert call["session"] is session


def test_the_receiver_decorator_takes_on_commit(session: Session) -> None:
    calls = []

    @receiver(post_save, sender=Order, on_commit=True)
    def after_commit(instance: Order, **kwargs: Any) -> None:
        calls.append(instance)

    try:
        session.add(Order(reference="A-1"))
        session.flush()
        assert calls == []
        session.commit()
        assert len(calls) == 1
    finally:
        post_save.disconnect(after_commit, sender=Order)


def test_once_per_change_and_never_for_a_rolled_back_one(session: Session, listen: Listen) -> None:
    deferred = listen(post_save, sender=Order, on_commit=True)
    order = Order(reference="A-1")
    session.add(order)
    session.flush()
    order.status = "paid"
    session.flush()
    savepoint = session.begin_nested()
    order.status = "refunded"
    session.flush()
    savepoint.rollback()
    session.commit()

    assert [call["created"] for call in deferred.calls] == [True, False]
    assert deferred.calls[1]["changes"] == {"status": ("new", "paid")}

    order.status = "shipped"
    session.flush()
    session.rollback()
    assert len(deferred.calls) == 2


def test_the_instance_reads_its_values_without_sql_or_a_new_transaction(
    session: Session, listen: Listen, statements: list[str]
) -> None:
    seen = []

    def read(instance: Order, session: Session, **kwargs: Any) -> None:
        executed = len(statements)
        seen.append((instance.reference, instance.status, instance.total, instance.created_at))
        seen.append((len(statements) - executed, session.in_transaction()))

    listen(post_save, sender=Order, on_commit=True).side_effect = read
    order = Order(reference="A-1")
    session.add(order)
    session.commit()

    values, (sql_run, in_transaction) = seen
    assert values[:2] == ("A-1", "new")
    assert values[3] is not None
    assert (sql_run, in_transaction) == (0, False)
    # Afterwards the instance is as SQLAlchemy leaves it after a commit: expired.
    assert "status" in inspect(order).expired_attributes


def test_a_deleted_instance_keeps_its_values_even_those_expired_before(
    session: Session, listen: Listen
) -> None:
    order = Order(reference="A-1", lines=[OrderLine(product="pen")])
    session.add(order)
    session.commit()  # every attribute expired
    seen = []
    listen(post_delete, sender=Order, on_commit=True).side_effect = lambda instance, **kwargs: (
        seen.append((instance.reference, instance.status))
    )
    line_origins = []
    listen(post_delete, sender=OrderLine, on_commit=True).side_effect = (
        lambda instance, origin, **kwargs: line_origins.append((instance.product, origin))
    )

    session.delete(order)
    session.commit()

    assert seen == [("A-1", "new")]
    assert line_origins == [("pen", order)]


def test_deferred_receivers_are_robust(
    session: Session, listen: Listen, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("CRM unreachable")

    listen(post_save, sender=Order, on_commit=True).side_effect = broken
    after = listen(post_save, sender=Order, on_commit=True)
    session.add(Order(reference="A-1"))
    with caplog.at_level(logging.ERROR, logger="sa_signals"):
        session.commit()  # does not raise

    assert len(after.calls) == 1
    assert "CRM unreachable" in caplog.records[0].getMessage()


def test_a_signal_without_a_session_refuses_on_commit() -> None:
    with pytest.raises(TypeError, match="no commit to wait for"):
        Signal().connect(lambda **kwargs: None, on_commit=True, weak=False)


def test_after_the_commit_the_instance_is_as_sqlalchemy_leaves_it(
    session: Session, listen: Listen
) -> None:
    submission = Submission(form={"answers": {"size": 1}})
    session.add(submission)
    session.commit()
    read: list[tuple[Any, bool]] = []
    deferred = listen(post_save, sender=Submission, on_commit=True)
    deferred.side_effect = lambda instance, **_: read.append(
        (instance.form, session.in_transaction())
    )

    submission.form = {"answers": {"size": 2}}
    session.commit()

    # A JSON dict read with no SQL and no new transaction...
    assert read == [({"answers": {"size": 2}}, False)]
    # ...and the instance fully expired afterwards, as commit() leaves it.
    assert inspect(submission).expired


def test_a_set_valued_column_reads_back_as_the_set_it_is(session: Session, listen: Listen) -> None:
    invoice = Invoice(number="F-1", amount=Decimal(1), due=date(2026, 1, 1), notes={"a"})
    session.add(invoice)
    session.commit()
    seen: list[Any] = []
    deferred = listen(post_save, sender=Invoice, on_commit=True)
    deferred.side_effect = lambda instance, **_: seen.append(instance.notes)

    invoice.notes = {"b", "c"}
    session.commit()

    assert seen == [{"b", "c"}]
