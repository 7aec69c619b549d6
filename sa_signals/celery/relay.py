"""Publishing the outbox's events to the broker: right after a commit, and by
``relay_outbox`` for whatever is left (broker down, process killed).

Each batch is claimed in a short transaction of its own (a lease, written with
``FOR UPDATE SKIP LOCKED`` where the database has it, behind SQLite's write
lock elsewhere), so that relays running at once take different rows and no lock
is held while the broker is talked to. Then the events are published, each with
its id as the Celery task id, and the ones the broker took are marked sent.

Delivery is at least once: a relay that dies after publishing and before marking
leaves its rows to be published again when the lease ends, under the same task
id. A broker that does not answer is given up on within ``STALL_TIMEOUT``
seconds without progress, whatever the transport's own timeouts (Redis has none
by default): a commit never hangs on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from celery import Celery
from kombu.utils.json import loads
from sqlalchemy import Connection, Engine, Table, and_, false, or_, select, update

from sa_signals.celery.outbox import standalone_outbox_table

__all__ = ["LEASE", "STALL_TIMEOUT", "publish_events", "relay_outbox"]

logger = logging.getLogger("sa_signals")

LEASE = timedelta(minutes=1)  # how long a claimed event is left to its relay
STALL_TIMEOUT = 5.0  # seconds without a single event published: the broker is out
# A refused connection is retried twice, briefly; a silent one is left to the stall.
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}

AppFor = Callable[[str], Celery]  # the Celery app that publishes a task, by name


def relay_outbox(bind: Engine | Connection, app: Celery, *, batch_size: int = 500) -> int:
    """Publish every pending event of the outbox through ``app``, and return how
    many were published. Stops early, with a warning on logger ``sa_signals``,
    when the broker cannot be reached; the rest stay pending.

    Run it from a Celery beat task, a cron job, or as
    ``python -m sa_signals.celery relay --db URL --app MODULE:APP [--loop]``.
    Several relays may run at once.
    """
    table = standalone_outbox_table()
    total = 0
    while True:
        published, complete = _publish_batch(bind, table, lambda _task: app, batch_size)
        total += published
        if not complete or published < batch_size:
            return total


def publish_events(
    bind: Engine | Connection, table: Table, app_for: AppFor, event_ids: Sequence[str]
) -> int:
    """Publish the given events, those not published (or claimed) yet; return how
    many were. What cannot be published now stays pending for the relay."""
    published = 0
    for start in range(0, len(event_ids), 500):
        batch = event_ids[start : start + 500]
        count, complete = _publish_batch(bind, table, app_for, len(batch), batch)
        published += count
        if not complete:
            break
    return published


def _publish_batch(
    bind: Engine | Connection,
    table: Table,
    app_for: AppFor,
    limit: int,
    only: Sequence[str] | None = None,
) -> tuple[int, bool]:
    """Claim up to ``limit`` events, publish them, mark those the broker took.
    Returns how many were published, and whether every claimed one was."""
    with _transaction(bind) as connection:
        rows = _claim(connection, table, limit, only)
    if not rows:
        return 0, True
    published = _publish(rows, app_for)
    with _transaction(bind) as connection:
        now = datetime.now(UTC)
        if published:
            connection.execute(
                update(table)
                .where(table.c.id.in_(published))
                .values(sent_at=now, claimed_until=None)
            )
        taken = set(published)
        failed = [row.id for row in rows if row.id not in taken]
        if failed:  # free them for the next relay at once
            connection.execute(
                update(table).where(table.c.id.in_(failed)).values(claimed_until=None)
            )
    return len(published), len(published) == len(rows)


@dataclass(frozen=True)
class _Claimed:
    """An event claimed for publishing."""

    id: str
    task: str
    payload: str
    options: str


def _claim(
    connection: Connection, table: Table, limit: int, only: Sequence[str] | None
) -> list[_Claimed]:
    now = datetime.now(UTC)
    if connection.dialect.name == "sqlite":
        # No FOR UPDATE: take the database's write lock before reading, so that
        # two relays never claim the same rows.
        connection.execute(update(table).where(false()).values(attempts=table.c.attempts))
    pending = and_(
        table.c.sent_at.is_(None),
        or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
    )
    query = select(table.c.id, table.c.task, table.c.payload, table.c.options).where(pending)
    if only is not None:
        query = query.where(table.c.id.in_(only))
    query = (
        query.order_by(table.c.created_at, table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = [_Claimed(*row) for row in connection.execute(query)]
    if rows:
        connection.execute(
            update(table)
            .where(table.c.id.in_([row.id for row in rows]))
            .values(claimed_until=now + LEASE, attempts=table.c.attempts + 1)
        )
    return rows


def _publish(rows: list[_Claimed], app_for: AppFor) -> list[str]:
    """Publish the rows in order, on a thread of its own, and return the ids the
    broker took before the first failure, or before it stalled."""
    published: list[str] = []
    last_progress = [time.monotonic()]
    failure: list[BaseException] = []

    def publish_all() -> None:
        try:
            for row in rows:
                _publish_one(app_for(row.task), row)
                published.append(row.id)
                last_progress[0] = time.monotonic()
        except Exception as error:
            failure.append(error)

    worker = threading.Thread(target=publish_all, name="sa_signals-publish", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.05)
        if time.monotonic() - last_progress[0] > STALL_TIMEOUT:
            logger.warning(
                "The broker took no event for %s s; %d event(s) stay pending for the relay.",
                STALL_TIMEOUT,
                len(rows) - len(published),
            )
            return list(published)
    if failure:
        logger.warning(
            "Could not publish to the broker (%s); %d event(s) stay pending for the relay.",
            failure[0],
            len(rows) - len(published),
        )
    return published


def _publish_one(app: Celery, row: _Claimed) -> None:
    kwargs, options = loads(row.payload), loads(row.options)
    options.update(task_id=row.id, retry=True, retry_policy=_RETRY_POLICY)
    task = app.tasks.get(row.task)
    if task is not None:  # known here: apply_async, which honours task_always_eager
        task.apply_async(kwargs=kwargs, **options)
    else:
        app.send_task(row.task, kwargs=kwargs, **options)


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            yield connection
    elif bind.in_transaction():
        with bind.begin_nested():
            yield bind
    else:
        with bind.begin():
            yield bind
