"""An AsyncSession's signals on every async driver, asyncpg included.

asyncpg is where most async PostgreSQL applications are, and it is not psycopg:
it hands back UUIDs of its own class (a subclass of ``uuid.UUID``), prepares
every statement, begins its transactions lazily, and cannot count the rows of an
executemany. What sa-signals reads through the driver is checked here on each one:
the old values it fetches during the flush, the values deferred receivers read
after the commit, the keys of bulk statements, and the COMMIT it sends for a
session joined to an outer transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, delete, event, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sa_signals import Signal, on_commit, post_bulk_update, post_delete, post_save
from tests.conftest import Recorder
from tests.databases import Database, on_async_drivers, on_every_async_driver
from tests.models import Invoice, InvoiceState, Order, Priority, Stock, Submission, Ticket

T = TypeVar("T")
Listen = Callable[..., Recorder]


def run(database: Database, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """``work(engine)`` in an event loop of its own, on an async engine of the
    test's driver, disposed of in the same loop."""

    async def main() -> T:
        engine = database.async_engine()
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@pytest.fixture
def connect() -> Iterator[Callable[..., None]]:
    """``connect(signal, receiver, sender=..., on_commit=...)`` for this test only."""
    connected: list[tuple[Signal, Any, Any]] = []

    def connect(signal: Signal, receiver: Any, sender: Any, **options: Any) -> None:
        signal.connect(receiver, sender=sender, weak=False, **options)
        connected.append((signal, receiver, sender))

    yield connect
    for signal, receiver, sender in connected:
        signal.disconnect(receiver, sender=sender)


# -- old values, fetched during the flush ---------------------------------------------------


@on_every_async_driver
def test_changes_after_a_commit_report_the_old_values_the_driver_reads_back(
    engine: Engine, database: Database, listen: Listen
) -> None:
    """A commit expires every attribute, so an attribute assigned afterwards has no
    old value in SQLAlchemy: sa-signals reads it during the flush, through the
    driver, by primary key (a UUID key, on asyncpg, comes back as asyncpg's class)."""
    invoices = listen(post_save, sender=Invoice)
    tickets = listen(post_save, sender=Ticket)
    submissions = listen(post_save, sender=Submission)
    first, second = uuid.uuid4(), uuid.uuid4()

    async def work(engine: AsyncEngine) -> None:
        async with AsyncSession(engine) as session:
            session.add_all(
                [
                    Invoice(number="F-1", amount=Decimal("10.00"), due=date(2026, 12, 31)),
                    Ticket(title="printer on fire"),
                    Submission(form={"answers": [1, 2]}, priority=Priority.HIGH),
                ]
            )
            await session.commit()
            invoice, ticket, submission = [
                await session.scalar(select(model)) for model in (Invoice, Ticket, Submission)
            ]
            await session.commit()  # expires them all: what follows is assigned while expired
            assert invoice is not None
            assert ticket is not None
            assert submission is not None
            invoice.amount, invoice.reference = Decimal("12.50"), first
            invoice.state, invoice.terms = InvoiceState.SENT, timedelta(days=30)
            ticket.title = "printer fixed"
            submission.form, submission.priority = {"answers": []}, Priority.LOW
            await session.commit()
            invoice.reference = second
            await session.commit()

    run(database, work)

    assert [call["changes"] for call in invoices.calls[1:]] == [
        {
            "amount": (Decimal("10.00"), Decimal("12.50")),
            "reference": (None, first),
            "state": (InvoiceState.DRAFT, InvoiceState.SENT),
            "terms": (None, timedelta(days=30)),
        },
        {"reference": (first, second)},
    ]
    assert tickets.calls[1]["changes"] == {"title": ("printer on fire", "printer fixed")}
    assert submissions.calls[1]["changes"] == {
        "form": ({"answers": [1, 2]}, {"answers": []}),
        "priority": (Priority.HIGH, Priority.LOW),
    }


# -- deferred receivers, after the commit ----------------------------------------------------


@on_every_async_driver
def test_a_deferred_async_receiver_reads_the_committed_values_without_sql(
    engine: Engine, database: Database, connect: Callable[..., None]
) -> None:
    """An ``async def`` receiver connected with ``on_commit=True`` is awaited after
    the commit, on the session's loop. It reads the values the commit expired,
    the database's own (a server default, a UUID) among them, without a query;
    afterwards the instances are expired again, as SQLAlchemy's commit left them."""
    read: list[tuple[Any, ...]] = []
    statements_while_reading: list[str] = []
    reading = False

    async def announce(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        nonlocal reading
        await asyncio.sleep(0)
        reading = True
        if isinstance(instance, Order):
            read.append((created, instance.reference, isinstance(instance.created_at, datetime)))
        else:
            read.append((created, instance.title, instance.id))
        reading = False

    connect(post_save, announce, sender=Order, on_commit=True)
    connect(post_save, announce, sender=Ticket, on_commit=True)

    async def work(engine: AsyncEngine) -> tuple[Any, ...]:
        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if reading:
                statements_while_reading.append(statement)

        async with AsyncSession(engine) as session:
            order, ticket = Order(reference="A-1"), Ticket(title="printer on fire")
            session.add_all([order, ticket])
            await session.flush()
            ticket_id = ticket.id
            assert read == []  # not at the flush
            await session.commit()
            expired = (inspect(order).expired, inspect(ticket).expired)
            ticket.title = "printer fixed"  # assigned while expired: its old value is fetched
            await session.commit()
            return ticket_id, expired

    ticket_id, expired = run(database, work)

    assert read == [
        (True, "A-1", True),
        (True, "printer on fire", ticket_id),
        (False, "printer fixed", ticket_id),
    ]
    assert statements_while_reading == []
    assert expired == (True, True)


# -- bulk statements -------------------------------------------------------------------------


@on_every_async_driver
def test_bulk_statements_report_the_keys_of_their_rows(
    engine: Engine, database: Database, listen: Listen
) -> None:
    """The WHERE form's keys come from sa-signals' SELECT through the driver (UUIDs
    of asyncpg's class there, equal to the program's), the by-primary-key form's
    from its parameters; a bulk DELETE sends each row, loaded through the driver."""
    updated = listen(post_bulk_update, sender=Ticket)
    stock_updated = listen(post_bulk_update, sender=Stock)
    deleted = listen(post_delete, sender=Ticket)

    async def work(engine: AsyncEngine) -> list[uuid.UUID]:
        async with AsyncSession(engine) as session:
            tickets = [Ticket(title="printer on fire"), Ticket(title="printer jammed")]
            session.add_all([*tickets, Ticket(title="coffee"), Stock(warehouse="north", sku="pen")])
            await session.flush()
            ids = [ticket.id for ticket in tickets]
            await session.execute(
                update(Ticket).where(Ticket.title.startswith("printer")).values(title="done")
            )
            await session.execute(
                update(Stock), [{"warehouse": "north", "sku": "pen", "quantity": 5}]
            )
            await session.execute(delete(Ticket).where(Ticket.title == "done"))
            await session.commit()
            return ids

    ids = run(database, work)

    assert sorted(updated.calls[0]["pks"]) == sorted(ids)
    assert stock_updated.calls[0]["pks"] == [("north", "pen")]
    assert sorted((c["instance"].id, c["instance"].title) for c in deleted.calls) == sorted(
        (ticket_id, "done") for ticket_id in ids
    )


@on_async_drivers("postgresql+asyncpg")
def test_asyncpg_counts_no_rows_of_an_executemany_so_the_keys_are_asked_for(
    engine: Engine, database: Database, listen: Listen
) -> None:
    """asyncpg cannot count the rows of an executemany: SQLAlchemy then cannot tell
    that a key of the by-primary-key form had no row (elsewhere it raises), and
    updates the others. sa-signals asks which keys have a row, and reports those."""
    updated = listen(post_bulk_update, sender=Stock)

    async def work(engine: AsyncEngine) -> None:
        assert engine.dialect.supports_sane_multi_rowcount is False  # the premise
        async with AsyncSession(engine) as session:
            session.add(Stock(warehouse="north", sku="pen"))
            await session.flush()
            await session.execute(
                update(Stock),
                [
                    {"warehouse": "north", "sku": "pen", "quantity": 5},
                    {"warehouse": "north", "sku": "no such thing", "quantity": 5},
                ],
            )
            await session.commit()

    run(database, work)

    assert updated.calls[0]["pks"] == [("north", "pen")]


# -- a session joined to an outer transaction: sa-signals sends the COMMIT itself ------------

POSTGRESQL_ASYNC_DRIVERS = on_async_drivers("postgresql+psycopg", "postgresql+asyncpg")
# Checked at COMMIT: the outer transaction's COMMIT can fail after the session's.
CHECKED_AT_COMMIT = (
    "CREATE TEMPORARY TABLE checked_at_commit (n INTEGER UNIQUE DEFERRABLE INITIALLY DEFERRED) "
    "ON COMMIT DROP"
)


def joined_session_work(
    ran: list[str], break_the_commit: bool
) -> Callable[[AsyncEngine], Awaitable[None]]:
    """An AsyncSession joined to a connection's transaction registers a callback
    and commits (releasing its SAVEPOINT), then the connection commits; with
    ``break_the_commit``, a row that the COMMIT's deferred check refuses."""

    async def work(engine: AsyncEngine) -> None:
        async with engine.connect() as connection:
            await connection.begin()
            await connection.execute(text(CHECKED_AT_COMMIT))
            async with AsyncSession(
                bind=connection, join_transaction_mode="create_savepoint"
            ) as session:
                session.add(Order(reference="A-1"))
                on_commit(lambda: ran.append("callback"), session)
                await session.commit()  # a RELEASE SAVEPOINT: the callback waits
            assert ran == []
            if break_the_commit:
                await connection.execute(text("INSERT INTO checked_at_commit VALUES (1), (1)"))
            await connection.commit()

    return work


@POSTGRESQL_ASYNC_DRIVERS
def test_a_joined_sessions_callbacks_run_after_the_connections_commit(
    engine: Engine, database: Database, listen: Listen
) -> None:
    ran: list[str] = []
    deferred = listen(post_save, sender=Order, on_commit=True)
    deferred.side_effect = lambda instance, **kwargs: ran.append(f"deferred {instance.reference}")

    run(database, joined_session_work(ran, break_the_commit=False))

    assert ran == ["callback", "deferred A-1"]  # in the order they were registered


@POSTGRESQL_ASYNC_DRIVERS
def test_a_joined_sessions_callbacks_never_run_when_the_connections_commit_fails(
    engine: Engine, database: Database, listen: Listen
) -> None:
    """sa-signals sends the COMMIT through the driver before running the callbacks,
    so that they follow it: a COMMIT the database refuses raises, and they are dropped."""
    ran: list[str] = []
    deferred = listen(post_save, sender=Order, on_commit=True)
    deferred.side_effect = lambda instance, **kwargs: ran.append(f"deferred {instance.reference}")

    with pytest.raises(IntegrityError):
        run(database, joined_session_work(ran, break_the_commit=True))

    assert ran == []


@on_every_async_driver
def test_an_aware_datetimes_old_value_comes_back_in_utc(
    engine: Engine, database: Database, listen: Listen
) -> None:
    """A UTCDateTime column (the auth module's ``last_login``, the outbox's
    timestamps), read back during the flush by each driver: its own time zone
    handling (asyncpg's UTC, psycopg's session zone, none on SQLite and MariaDB)
    makes no difference to the old value reported."""
    saved = listen(post_save, sender=Invoice)
    issued = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)

    async def work(engine: AsyncEngine) -> None:
        async with AsyncSession(engine) as session:
            invoice = Invoice(number="F-1", amount=Decimal(1), due=date(2026, 1, 1))
            invoice.issued_at = issued
            session.add(invoice)
            await session.commit()
            invoice.issued_at = issued + timedelta(hours=1)
            await session.commit()

    run(database, work)

    assert saved.calls[1]["changes"] == {"issued_at": (issued, issued + timedelta(hours=1))}
