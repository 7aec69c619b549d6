"""Publishing the outbox's events to the broker: right after a commit, and by
``relay_outbox`` for whatever is left (broker down, process killed).

Each batch is claimed in a short transaction of its own (a lease, written with
``FOR UPDATE SKIP LOCKED`` where the database has it, behind SQLite's write
lock there), so that relays running at once take different rows and no lock is
held while the broker is talked to. Then the events are published, each with
its id as the Celery task id, and those the broker confirmed are marked sent.

Publishing goes through a connection of sa-signals' own per Celery app, not the
app's producer pool: with publisher confirms (on AMQP, a message is "sent" once
the broker said it has it, not once it left the socket) and with socket
timeouts (a broker that does not answer is given up on within
``PUBLISH_TIMEOUT`` seconds, whatever the transport: Redis's client has no
timeout by default). After a broker failure, publishing at commit time pauses
for ``PAUSE_AFTER_FAILURE`` seconds, leaving the events to the relay, so that a
long outage does not slow every commit down.

Delivery is at least once: a relay that dies after publishing and before marking
leaves its rows to be published again when the lease ends, under the same task
id. An event that cannot be published for itself (an option the broker does not
take) is logged with its id and set aside until its lease ends; the others go on.

The outbox is read as data, never as code: an event is published only to a
task that ``task_receiver`` made in the relay's Celery app (``register_task``),
with its options checked against the few that publishing takes, and its payload
passed on as one opaque string; an event naming anything else is refused.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from celery import Celery
from kombu import Connection, Producer
from kombu.exceptions import OperationalError
from sqlalchemy import ColumnElement, Engine, Table, and_, false, or_, select, update
from sqlalchemy import Connection as DatabaseConnection

from sa_signals.celery.outbox import standalone_outbox_table

__all__ = ["relay_outbox"]

logger = logging.getLogger("sa_signals")

LEASE = timedelta(minutes=1)  # how long a claimed event is left to its relay
PUBLISH_TIMEOUT = 2.0  # seconds to connect, or to hear back from the broker
PAUSE_AFTER_FAILURE = 10.0  # seconds commits leave their events to the relay
BATCH_SIZE = 500

# The options of Celery's apply_async() that an event is published with, stored
# with it in the outbox, and the JSON types each takes.
PUBLISH_OPTIONS: dict[str, tuple[type, ...]] = {
    "queue": (str,),
    "routing_key": (str,),
    "exchange": (str,),
    "priority": (int,),
    "countdown": (int, float),
    "expires": (int, float),
}

# The Celery app that publishes a task, by name. Quoted: Celery is generic only to
# the type checker (celery-types); Celery 5.4 cannot be subscripted at run time.
AppFor = Callable[[str], "Celery[Any]"]
Bind = Engine | DatabaseConnection


def relay_outbox(
    bind: Bind, app: Celery[Any], *, batch_size: int = BATCH_SIZE, schema: str | None = None
) -> int:
    """Publish every pending event of the outbox through ``app``, and return how
    many were published. Stops early, with a warning on logger ``sa_signals``,
    when the broker cannot be reached; the rest stay pending.

    Run it from a Celery beat task, a cron job, or as
    ``python -m sa_signals.celery relay --db URL --app MODULE:APP [--loop]``.
    Several relays may run at once.

    :param bind: an ``Engine``, or a ``Connection`` outside any transaction: each
        batch is claimed and marked in a transaction of its own.
    :param schema: the outbox's schema, when its metadata has one.
    """
    _check_bind(bind)
    if batch_size < 1:
        raise ValueError(f"relay_outbox() needs a batch_size of 1 or more, not {batch_size}.")
    table = standalone_outbox_table(schema)
    total = 0
    claimed: set[str] = set()
    while True:
        batch = _publish_batch(bind, table, lambda _task: app, batch_size)
        total += batch.published
        # Done when nothing more is pending, or every event claimed was seen
        # before (refused ones come back once set aside long enough).
        if batch.broker_out or len(batch.claimed) < batch_size or claimed >= batch.claimed:
            return total
        claimed |= batch.claimed


def publish_events(
    bind: Bind, table: Table, apps: dict[str, Celery[Any]], event_ids: Sequence[str]
) -> None:
    """After a commit: publish the given events (those not published or claimed
    meanwhile) through the apps of their tasks (``apps``, by task name). What
    cannot be published now stays pending for the relay."""
    if any(_link(app).paused() for app in apps.values()):
        return  # the broker failed moments ago: the relay will see to them
    for start in range(0, len(event_ids), BATCH_SIZE):
        batch = event_ids[start : start + BATCH_SIZE]
        if _publish_batch(bind, table, apps.__getitem__, len(batch), batch).broker_out:
            return


@dataclass(frozen=True)
class _Batch:
    claimed: set[str]
    published: int
    broker_out: bool


def _publish_batch(
    bind: Bind, table: Table, app_for: AppFor, limit: int, only: Sequence[str] | None = None
) -> _Batch:
    """Claim up to ``limit`` events, publish them, mark those the broker took."""
    with _transaction(bind) as connection:
        claimed = _claim(connection, table, limit, only)
    if not claimed:
        return _Batch(claimed=set(), published=0, broker_out=False)
    published, untried = _publish(claimed, app_for)
    with _transaction(bind) as connection:
        if published:
            connection.execute(
                update(table)
                .where(table.c.id.in_(published))
                .values(sent_at=datetime.now(UTC), claimed_until=None)
            )
        if untried:  # the broker is out: free them for the next relay at once
            connection.execute(
                update(table).where(table.c.id.in_(untried)).values(claimed_until=None)
            )
        # The refused ones are set aside, longer after each try: they never
        # stand in the way of the events behind them, nor flood the log.
        done = {*published, *untried}
        for event in claimed:
            if event.id not in done:
                connection.execute(
                    update(table)
                    .where(table.c.id == event.id)
                    .values(claimed_until=datetime.now(UTC) + set_aside(event.attempts + 1))
                )
    return _Batch(
        claimed={event.id for event in claimed},
        published=len(published),
        broker_out=bool(untried),
    )


# -- claiming ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    """An event claimed for publishing."""

    id: str
    task: str
    payload: str
    options: str
    attempts: int


def set_aside(attempts: int) -> timedelta:
    """How long an event that could not be published is left alone after its
    ``attempts``-th try: one lease, doubling up to about 17 hours."""
    return LEASE * (1 << min(max(attempts - 1, 0), 10))


def claimable(table: Table, now: datetime) -> ColumnElement[bool]:
    """Events waiting for a relay: not sent, and held by none (or its lease is over)."""
    return and_(
        table.c.sent_at.is_(None),
        or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
    )


def _claim(
    connection: DatabaseConnection, table: Table, limit: int, only: Sequence[str] | None
) -> list[_Claimed]:
    now = datetime.now(UTC)
    if connection.dialect.name == "sqlite":
        # No FOR UPDATE: take the database's write lock before reading, so that
        # two relays never claim the same rows.
        connection.execute(update(table).where(false()).values(attempts=table.c.attempts))
    columns = (table.c.id, table.c.task, table.c.payload, table.c.options, table.c.attempts)
    query = select(*columns).where(claimable(table, now))
    if only is not None:
        # By primary key alone: with an ORDER BY and LIMIT, InnoDB would lock
        # every pending row it scans, and a commit next door would skip its own.
        query = query.where(table.c.id.in_(only))
    else:
        query = query.order_by(table.c.created_at, table.c.id).limit(limit)
    claimed = [
        _Claimed(*row) for row in connection.execute(query.with_for_update(skip_locked=True))
    ]
    if claimed:
        connection.execute(
            update(table)
            .where(table.c.id.in_([event.id for event in claimed]))
            .values(claimed_until=now + LEASE, attempts=table.c.attempts + 1)
        )
    return claimed


@contextmanager
def _transaction(bind: Bind) -> Iterator[DatabaseConnection]:
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            yield connection
    else:
        with bind.begin():
            yield bind


def _check_bind(bind: object) -> None:
    if not isinstance(bind, Engine | DatabaseConnection):
        raise TypeError(
            f"relay_outbox() takes a SQLAlchemy Engine or Connection, not {bind!r} "
            "(for an AsyncEngine, pass its sync_engine)."
        )
    if isinstance(bind, DatabaseConnection) and bind.in_transaction():
        raise ValueError(
            "relay_outbox() was given a Connection inside a transaction: it claims and "
            "marks events in transactions of its own, and would publish uncommitted ones."
        )


# -- publishing ----------------------------------------------------------------------------------


def _publish(claimed: list[_Claimed], app_for: AppFor) -> tuple[list[str], list[str]]:
    """Publish the events in order; return the ids the broker confirmed, and
    those not tried because it was out."""
    published: list[str] = []
    for position, event in enumerate(claimed):
        try:
            _link(app_for(event.task)).publish(event)
        except OperationalError as error:  # the broker, or the way to it
            untried = [event.id for event in claimed[position:]]
            logger.warning(
                "Could not publish to the broker (%s); %d event(s) stay pending for the relay.",
                error,
                len(untried),
            )
            return published, untried
        except Exception as error:  # this event alone: leave it, go on with the others
            logger.error("Could not publish event %s (task %s): %s", event.id, event.task, error)
            continue
        published.append(event.id)
    return published, []


def register_task(app: Celery[Any], name: str) -> None:
    """Let the relay publish events of ``app``'s task ``name``: a task that
    ``task_receiver`` made, and no other."""
    with _links_lock:
        _background_tasks.setdefault(app, set()).add(name)


def checked_publish_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` if each is one of ``PUBLISH_OPTIONS``, of its JSON type.

    :raises TypeError: naming the first option that is not.
    """
    for name, value in options.items():
        kinds = PUBLISH_OPTIONS.get(name)
        if kinds is None:
            raise TypeError(f"{name!r} is not an option events are published with")
        if not isinstance(value, kinds) or isinstance(value, bool):
            expected = " or ".join(kind.__name__ for kind in kinds)
            raise TypeError(f"the {name} option takes a {expected}, not {value!r:.100}")
        if name in _RANGES and not _in_range(value, *_RANGES[name]):
            low, high = _RANGES[name]
            raise TypeError(f"the {name} option takes {low} to {high}, not {value}")
    return dict(options)


_RANGES = {"priority": (0, 255), "countdown": (0, 1e9), "expires": (0, 1e9)}  # 1e9 s: 31 years


def _in_range(value: Any, low: float, high: float) -> bool:
    return bool(low <= value <= high)  # NaN is in no range


@dataclass(eq=False)
class _Link:
    """sa-signals' own connection to one app's broker (see the module docstring)."""

    app: Celery[Any]
    lock: threading.Lock = field(default_factory=threading.Lock)
    connection: Connection | None = None
    producer: Producer | None = None
    paused_until: float = 0.0

    def paused(self) -> bool:
        return time.monotonic() < self.paused_until

    def publish(self, event: _Claimed) -> None:
        """Publish ``event``: its payload, untouched, as the task's one argument.

        :raises LookupError: the event names a task that is not a background
            receiver's task of this app.
        :raises TypeError, ValueError: its stored options are not publishing options.
        """
        with _links_lock:
            known = event.task in _background_tasks.get(self.app, ())
        if not known:
            raise LookupError(
                f"{event.task!r} is not the task of a background receiver of {self.app.main!r} "
                "(the relay's app must declare or import the application's task_receivers)"
            )
        task = self.app.tasks[event.task]
        stored = json.loads(event.options)
        if not isinstance(stored, dict):
            raise TypeError(f"its options are {stored!r:.200}, not a JSON object")
        options = checked_publish_options(stored)
        kwargs = {"event": event.payload}
        if self.app.conf.task_always_eager:
            self._run_eagerly(task, kwargs, event.id)
            return
        with self.lock:
            try:
                producer = self._producer()
                options.update(task_id=event.id, producer=producer, retry=False)
                task.apply_async(kwargs=kwargs, **options)
            except OperationalError:
                self._close(graceful=False)
                self.paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
                raise
            except Exception:
                self._close()  # the channel may be broken: start afresh
                raise

    def _producer(self) -> Producer:
        if self.producer is None:
            self.connection = self.app.connection_for_write(
                connect_timeout=PUBLISH_TIMEOUT,
                transport_options={
                    "confirm_publish": True,  # AMQP: wait for the broker's ack
                    "read_timeout": PUBLISH_TIMEOUT,  # AMQP
                    "write_timeout": PUBLISH_TIMEOUT,  # AMQP
                    "socket_timeout": PUBLISH_TIMEOUT,  # Redis
                    "socket_connect_timeout": PUBLISH_TIMEOUT,  # Redis
                },
            )
            self.producer = self.app.amqp.Producer(self.connection)
        return self.producer

    def _close(self, graceful: bool = True) -> None:
        connection, self.connection, self.producer = self.connection, None, None
        if connection is not None:
            try:
                if graceful:
                    connection.close()
                else:
                    # The broker is out: an AMQP close would wait for its answer,
                    # PUBLISH_TIMEOUT per channel and again for the connection.
                    connection.collect()  # drops the sockets, says nothing
            except Exception as error:  # already broken: nothing more to do
                logger.debug("Closing the broker connection: %s", error)

    @staticmethod
    def _run_eagerly(task: Any, kwargs: dict[str, Any], event_id: str) -> None:
        """task_always_eager: the task runs here and now, and that is its
        delivery; a failure of the receiver is its own, not the broker's."""
        try:
            task.apply(kwargs=kwargs, task_id=event_id, throw=True)
        except Exception as error:
            logger.error(
                "Background receiver %s failed on event %s: %s", task.name, event_id, error
            )


_links: WeakKeyDictionary[Celery[Any], _Link] = WeakKeyDictionary()
_background_tasks: WeakKeyDictionary[Celery[Any], set[str]] = (
    WeakKeyDictionary()
)  # by register_task
_links_lock = threading.Lock()  # for both


def _link(app: Celery[Any]) -> _Link:
    with _links_lock:
        link = _links.get(app)
        if link is None:
            link = _links[app] = _Link(app)
        return link
