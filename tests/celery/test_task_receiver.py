"""task_receiver: a receiver that runs in a real Celery worker, after the commit,
on RabbitMQ and Redis, for rows of SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from kombu import Queue
from sqlalchemy import Engine, MetaData, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from sa_signals import post_delete, post_save, pre_save
from sa_signals.celery import outbox_table, task_receiver
from tests.celery.conftest import Deliveries, messages_waiting, pending_events
from tests.databases import Database, on_every_async_driver
from tests.models import Invoice, InvoiceState, Order, OrderLine, Stock, Ticket, outbox

Background = Callable[..., Deliveries]
Worker = Callable[[], AbstractContextManager[Any]]


def test_a_post_save_receiver_runs_in_the_worker_after_the_commit(
    session: Session, background: Background, worker: Worker, engine: Engine
) -> None:
    deliveries = background(post_save, sender=Order)
    order = Order(reference="A-1")
    session.add(order)
    session.flush()
    assert pending_events(engine) == 0  # written in the transaction: not visible yet
    session.commit()

    with worker():
        (call,) = deliveries.wait_for(1)

    assert call["sender"] is Order
    assert call["created"] is True
    assert call["instance"] is not order  # loaded again, in the worker's own session
    assert (call["instance"].id, call["instance"].reference) == (order.id, "A-1")
    assert call["session"] is not session
    assert call["instance_in_session"]
    assert uuid.UUID(call["event_id"])
    assert pending_events(engine) == 0  # published, and marked sent


def test_changes_and_update_fields_arrive_with_their_types(
    session: Session, background: Background, worker: Worker
) -> None:
    invoice = Invoice(number="F-2026-001", amount=Decimal("10.00"), due=date(2026, 12, 31))
    session.add(invoice)
    session.commit()
    deliveries = background(post_save, sender=Invoice)

    issued = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    reference = uuid.uuid4()
    invoice.amount, invoice.due = Decimal("12.50"), date(2027, 1, 31)
    invoice.issued_at, invoice.reference = issued, reference
    invoice.state, invoice.terms = InvoiceState.SENT, timedelta(days=30)
    session.commit()

    with worker():
        (call,) = deliveries.wait_for(1)
    assert call["created"] is False
    assert call["update_fields"] == frozenset(
        {"amount", "due", "issued_at", "reference", "state", "terms"}
    )
    assert call["changes"] == {
        "amount": (Decimal("10.00"), Decimal("12.50")),
        "due": (date(2026, 12, 31), date(2027, 1, 31)),
        "issued_at": (None, issued),
        "reference": (None, reference),
        "state": (InvoiceState.DRAFT, InvoiceState.SENT),
        "terms": (None, timedelta(days=30)),
    }
    assert call["instance"].amount == Decimal("12.50")


def test_any_primary_key_finds_its_row_again(
    session: Session, background: Background, worker: Worker
) -> None:
    received = [background(post_save, sender=model) for model in (Invoice, Ticket, Stock)]
    ticket = Ticket(title="printer on fire")
    session.add_all(
        [
            Invoice(number="F-1", amount=Decimal(1), due=date(2026, 1, 1)),
            ticket,
            Stock(warehouse="north", sku="pen", quantity=3),
        ]
    )
    session.commit()

    with worker():
        instances = [deliveries.wait_for(1)[0]["instance"] for deliveries in received]
    assert instances[0].number == "F-1"
    assert instances[1].id == ticket.id
    assert (instances[2].warehouse, instances[2].sku, instances[2].quantity) == ("north", "pen", 3)


def test_a_post_delete_receiver_gets_a_detached_copy_of_the_deleted_row(
    session: Session, background: Background, worker: Worker
) -> None:
    order = Order(reference="A-1", lines=[OrderLine(product="pen")])
    session.add(order)
    session.commit()
    line_id = order.lines[0].id
    lines_gone = background(post_delete, sender=OrderLine)

    session.delete(order)  # the line goes by cascade
    session.commit()

    with worker():
        (call,) = lines_gone.wait_for(1)
    line, origin = call["instance"], call["origin"]
    assert (line.id, line.product) == (line_id, "pen")
    assert (type(origin), origin.reference) == (Order, "A-1")
    assert not call["instance_in_session"]  # a copy: the row is gone


def test_a_bulk_delete_sends_each_row_with_no_origin(
    session: Session, background: Background, worker: Worker
) -> None:
    session.add_all([Order(reference="A-1"), Order(reference="A-2")])
    session.commit()
    gone = background(post_delete, sender=Order)

    session.execute(delete(Order))
    session.commit()

    with worker():
        calls = gone.wait_for(2)
    assert sorted(call["instance"].reference for call in calls) == ["A-1", "A-2"]
    assert [call["origin"] for call in calls] == [None, None]  # a statement does not travel


def test_nothing_is_published_for_a_rollback_or_a_rolled_back_savepoint(
    session: Session, background: Background, celery_app: Celery, engine: Engine
) -> None:
    background(post_save, sender=Order)
    session.add(Order(reference="rolled back"))
    session.flush()
    session.rollback()

    kept = Order(reference="kept")
    session.add(kept)
    with session.begin_nested() as savepoint:
        session.add(Order(reference="in the savepoint"))
        session.flush()
        savepoint.rollback()
    session.commit()

    with Session(engine) as other:
        (payload,) = other.scalars(select(outbox.c.payload)).all()
    assert json.loads(payload)["pk"] == [kept.id]
    assert len(messages_waiting(celery_app)) == 1


def test_celerys_options_pass_through(
    session: Session, background: Background, celery_app: Celery
) -> None:
    special = f"{celery_app.conf.task_default_queue}_special"
    background(post_save, sender=Order, queue=special, countdown=60, max_retries=7)
    session.add(Order(reference="A-1"))
    session.commit()

    (name,) = [t for t in celery_app.tasks if t.startswith("tests.background")]
    assert celery_app.tasks[name].max_retries == 7
    assert messages_waiting(celery_app) == []  # not the default queue
    with celery_app.connection_for_read() as connection:
        channel = connection.default_channel
        message = channel.basic_get(queue=special, no_ack=True)
        channel.queue_delete(special)
    assert message is not None
    assert message.headers["eta"] is not None  # countdown: due a minute later


def test_an_event_id_is_the_celery_task_id(
    session: Session, background: Background, celery_app: Celery, engine: Engine
) -> None:
    background(post_save, sender=Order)
    session.add(Order(reference="A-1"))
    session.commit()

    with Session(engine) as other:
        stored = other.scalars(select(outbox.c.id)).all()
    assert messages_waiting(celery_app) == stored


def test_a_receiver_of_another_signal_is_refused_at_once(
    celery_app: Celery, session_factory: sessionmaker[Session]
) -> None:
    def notify(**kwargs: Any) -> None: ...

    with pytest.raises(TypeError, match="runs receivers of post_save and post_delete"):
        task_receiver(pre_save, Order, app=celery_app, session_factory=session_factory)(notify)


def test_a_change_json_cannot_carry_fails_the_flush_and_names_the_receiver(
    session: Session, background: Background, engine: Engine
) -> None:
    invoice = Invoice(number="F-1", amount=Decimal(1), due=date(2026, 1, 1))
    session.add(invoice)
    session.commit()
    background(post_save, sender=Invoice, name="tests.invoice_sent")

    invoice.notes = {"a set", "is not JSON"}
    with pytest.raises(
        TypeError,
        match=r"Deliveries object .* runs in the background, and Invoice's event cannot be encoded",
    ):
        session.commit()
    session.rollback()

    with Session(engine) as other:
        assert other.scalars(select(Invoice.notes)).all() == [None]
        assert other.scalars(select(outbox.c.id)).all() == []


def test_a_model_without_an_outbox_is_refused_at_once(
    celery_app: Celery, session_factory: sessionmaker[Session]
) -> None:
    class Elsewhere(DeclarativeBase):
        pass

    class Lonely(Elsewhere):
        __tablename__ = "lonely"
        id: Mapped[int] = mapped_column(primary_key=True)

    with pytest.raises(LookupError, match="Lonely's metadata has no outbox table"):
        task_receiver(post_save, Lonely, app=celery_app, session_factory=session_factory)
    Elsewhere.registry.dispose()


def test_a_row_deleted_before_the_worker_ran_is_skipped(
    session: Session, background: Background, worker: Worker, engine: Engine
) -> None:
    deliveries = background(post_save, sender=Order)
    gone = Order(reference="gone before its turn")
    session.add(gone)
    session.flush()
    gone_id = gone.id
    session.commit()
    session.add(Order(reference="next"))
    session.commit()
    with engine.begin() as connection:  # behind the ORM's back: no signal
        connection.execute(delete(Order).where(Order.id == gone_id))

    with worker():  # one worker, one queue: the events come in order
        calls = deliveries.wait_for(1)
    assert [call["instance"].reference for call in calls] == ["next"]


def test_in_eager_mode_the_receiver_runs_at_the_commit_through_the_outbox(
    session: Session, background: Background, celery_app: Celery, engine: Engine
) -> None:
    celery_app.conf.task_always_eager = True  # Celery without a broker, as in the demo
    deliveries = background(post_save, sender=Order)
    failing = background(post_save, sender=Order)

    def fail(**kwargs: Any) -> None:
        raise RuntimeError("the receiver's own failure")

    failing.side_effect = fail
    session.add(Order(reference="A-1"))
    session.commit()

    assert [call["instance"].reference for call in deliveries.calls] == ["A-1"]
    assert pending_events(engine) == 0  # delivered: a failing receiver is not the broker's fault


@on_every_async_driver
def test_an_async_sessions_events_carry_the_values_its_driver_read(
    engine: Engine, database: Database, background: Background, celery_app: Celery
) -> None:
    """From an AsyncSession, on each driver: the events are written in the flush's
    transaction and published at its commit, and the values the driver read back
    (asyncpg's own UUID class among them: an old value fetched during the flush,
    a deleted row's columns) arrive as the types their columns declare."""
    celery_app.conf.task_always_eager = True  # the task runs at the commit: no worker per driver
    saved = background(post_save, sender=Ticket)
    deleted = background(post_delete, sender=Invoice)
    reference = uuid.uuid4()

    async def write() -> uuid.UUID:
        async_engine = database.async_engine()
        try:
            async with AsyncSession(async_engine) as session:
                ticket = Ticket(title="printer on fire")
                invoice = Invoice(number="F-1", amount=Decimal(1), due=date(2026, 1, 1))
                invoice.reference, invoice.terms = reference, timedelta(days=30)
                session.add_all([ticket, invoice])
                await session.flush()
                ticket_id = ticket.id
                await session.commit()
                ticket.title = "printer fixed"  # assigned while expired: the old value is read
                await session.delete(await session.get_one(Invoice, "F-1"))  # read back
                await session.commit()
                return ticket_id
        finally:
            await async_engine.dispose()

    ticket_id = asyncio.run(write())

    assert [call["changes"] for call in saved.calls] == [
        {},
        {"title": ("printer on fire", "printer fixed")},
    ]
    assert saved.calls[1]["instance"].id == ticket_id
    (gone,) = deleted.calls
    assert gone["instance"].reference == reference
    assert type(gone["instance"].reference) is uuid.UUID
    assert gone["instance"].terms == timedelta(days=30)
    assert pending_events(engine) == 0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"bind": True}, "bind= is not an option"),
        ({"queue": Queue("orders")}, "give a queue or exchange by its name"),
    ],
)
def test_options_that_cannot_work_are_refused_at_once(
    celery_app: Celery,
    session_factory: sessionmaker[Session],
    options: dict[str, Any],
    error: str,
) -> None:
    with pytest.raises(TypeError, match=error):
        task_receiver(post_save, Order, app=celery_app, session_factory=session_factory, **options)(
            Deliveries()
        )


def test_arguments_that_cannot_work_are_refused_at_once(
    celery_app: Celery, session_factory: sessionmaker[Session]
) -> None:
    with pytest.raises(TypeError, match="needs a mapped class as sender, not <"):
        task_receiver(post_save, Order(), app=celery_app, session_factory=session_factory)
    with pytest.raises(TypeError, match="needs a Celery app as app=, not None"):
        task_receiver(post_save, Order, app=None, session_factory=session_factory)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable making sessions as session_factory=, not None"):
        task_receiver(post_save, Order, app=celery_app, session_factory=None)  # type: ignore[arg-type]


def test_two_receivers_cannot_share_a_task_name(
    celery_app: Celery, session_factory: sessionmaker[Session]
) -> None:
    for_orders = task_receiver(
        post_save, Order, app=celery_app, session_factory=session_factory, name="tests.same"
    )
    for_orders(Deliveries())
    try:
        with pytest.raises(ValueError, match=r"has a task named 'tests\.same' already"):
            for_orders(Deliveries())
    finally:
        post_save.disconnect(sender=Order, dispatch_uid="tests.same")


def test_an_outbox_in_a_schema_is_found_again() -> None:
    metadata = MetaData(schema="shop")
    table = outbox_table(metadata)
    assert outbox_table(metadata) is table
    assert table.fullname == "shop.sa_signals_outbox"
