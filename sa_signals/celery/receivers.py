"""``task_receiver``: a model-signal receiver that runs in a Celery worker.

At the flush, a receiver of its own writes the event into the outbox, in the
transaction of the change. After the commit the transaction's events are
published (the rest is left to ``relay_outbox``). In the worker, a Celery task
loads the instance again in a session of its own and calls the receiver there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from celery import Celery, Task
from sqlalchemy import Connection, Table, inspect
from sqlalchemy.orm import Mapper, Session, SessionTransaction

from sa_signals.celery.encoding import dumps
from sa_signals.celery.events import (
    BACKGROUND_SIGNALS,
    RefusedEvent,
    arguments_in_worker,
    encoded_event,
    event_traceparent,
)
from sa_signals.celery.outbox import find_outbox_table, write_event
from sa_signals.celery.relay import (
    PUBLISH_OPTIONS,
    checked_publish_options,
    publish_events,
    register_task,
)
from sa_signals.dispatch import Receiver, Signal, check_receiver, describe
from sa_signals.listing import BackgroundTask
from sa_signals.tracing import background_receiver_span, current_traceparent, tracing_enabled
from sa_signals.transaction import on_commit

__all__ = ["task_receiver"]

logger = logging.getLogger("sa_signals")

F = TypeVar("F", bound=Receiver)


def task_receiver(
    signal: Signal,
    sender: Any = None,
    *,
    app: Celery[Any],
    session_factory: Callable[[], Session],
    **task_options: Any,
) -> Callable[[F], F]:
    """Run the decorated receiver of ``post_save`` or ``post_delete`` in a Celery
    worker, after the commit, with nothing lost on the way::

        @task_receiver(post_save, sender=Order, app=celery_app, session_factory=SessionLocal)
        def send_confirmation(sender, instance, created, session, event_id, **kwargs): ...

    The receiver gets the keyword arguments it would get at the flush, with
    ``instance`` loaded again in a session made by ``session_factory`` (and passed
    as ``session``; it is committed when the receiver returns), and ``event_id``,
    the event's stable id (the Celery task id): a message delivered twice after a
    crash carries the same one. For ``post_delete``, ``instance`` (and ``origin``)
    is a detached copy built from the deleted row's values.

    The sender's metadata must hold the outbox table (``outbox_table(metadata)``).
    ``task_options`` are Celery's: ``queue``, ``routing_key``, ``exchange``,
    ``priority``, ``countdown`` and ``expires`` are used when publishing, the others
    (``name``, ``max_retries``, ``autoretry_for``, ``acks_late``...) go to
    ``app.task()``. The writer connected to the signal has the task's name as
    its ``dispatch_uid``: ``post_save.disconnect(sender=Order, dispatch_uid=name)``.

    :raises TypeError: ``signal`` is not ``post_save`` or ``post_delete``, ``sender``
        is not a mapped class, ``app`` is not a Celery app, ``session_factory`` is
        not callable, or an option cannot be used (``bind``, a publishing option
        that is not JSON).
    :raises LookupError: ``sender``'s metadata has no outbox table.
    :raises ValueError: the task's name is taken by another task of ``app``.
    """
    if signal not in BACKGROUND_SIGNALS:
        raise TypeError(
            f"task_receiver() runs receivers of post_save and post_delete, not {signal!r}: "
            "those are sent once the row is written, with a primary key to load it by."
        )
    if sender is not None:
        mapper = inspect(sender, raiseerr=False)
        if not isinstance(mapper, Mapper):
            raise TypeError(f"task_receiver() needs a mapped class as sender, not {sender!r}.")
        _outbox_of(mapper)  # raises early when it is missing
    if not isinstance(app, Celery):
        raise TypeError(f"task_receiver() needs a Celery app as app=, not {app!r}.")
    if not callable(session_factory):
        raise TypeError(
            f"task_receiver() needs a callable making sessions as session_factory=, "
            f"not {session_factory!r} (a sessionmaker, say)."
        )
    if "bind" in task_options:
        raise TypeError("task_receiver() makes the task itself: bind= is not an option.")

    def connect(receiver: F) -> F:
        check_receiver(receiver)
        BackgroundReceiver(receiver, signal, sender, app, session_factory, task_options)
        return receiver

    return connect


class BackgroundReceiver:
    """The outbox writer connected to the signal, and the Celery task it feeds."""

    def __init__(
        self,
        receiver: Receiver,
        signal: Signal,
        sender: Any,
        app: Celery[Any],
        session_factory: Callable[[], Session],
        task_options: dict[str, Any],
    ) -> None:
        self.receiver = receiver
        self.signal = signal
        self.app = app
        self.session_factory = session_factory
        self.publish_options = _publish_options(task_options)
        self.sender = sender
        options = {k: v for k, v in task_options.items() if k not in PUBLISH_OPTIONS}
        name = options.setdefault("name", _default_name(receiver))
        if name in app.tasks:
            raise ValueError(
                f"{app!r} has a task named {name!r} already: give {describe(receiver)} a "
                "name of its own (name=...)."
            )
        # A message that is not an event of this receiver fails for good, even
        # under autoretry_for=(Exception,): another try would fail the same way.
        options["dont_autoretry_for"] = (*options.get("dont_autoretry_for", ()), RefusedEvent)
        # Options are whatever Celery takes: its typed overloads cannot follow them.
        make_task: Callable[..., Callable[..., Task[Any, None]]] = app.task

        def run_in_worker(*args: Any, **message: Any) -> None:
            self._run_in_worker(args, message)

        # shared=False: the task is this app's, not every app's made from now on.
        self.task = make_task(shared=False, **options)(run_in_worker)
        register_task(app, self.task.name)
        # What list_receivers() shows for the writer: the receiver, run by this task.
        self.background_task = BackgroundTask(receiver, self.task.name)
        signal.connect(self.write, sender=sender, weak=False, dispatch_uid=self.task.name)

    def write(self, **named: Any) -> None:
        """At the flush: the event into the outbox, and its publication after the commit."""
        session: Session = named["session"]
        instance = named["instance"]
        mapper: Mapper[Any] = inspect(type(instance))
        table = _outbox_of(mapper)
        # Tracing on, the event keeps the span it was written under, for the
        # worker's span to link to (current_traceparent() is None when it is off).
        event_id, event = encoded_event(self.signal, named, self.receiver, current_traceparent())
        write_event(session, mapper, table, event_id, self.task.name, event, self.publish_options)
        publication = _publication(session, session.get_bind(mapper), table)
        publication.add(event_id, self.task, self.app)

    def _run_in_worker(self, args: tuple[Any, ...], message: dict[str, Any]) -> None:
        task_id = self.task.request.id
        with self.session_factory() as session:
            arguments = arguments_in_worker(
                args, message, task_id, session, self.signal, self.sender
            )
            if arguments is None:
                logger.warning(
                    "%s skipped: the row of its event was deleted before the worker ran "
                    "(event %s).",
                    describe(self.receiver),
                    task_id,
                )
                return
            written_from = event_traceparent(message) if tracing_enabled() else None
            with background_receiver_span(self.signal, self.receiver, self.task.name, written_from):
                self.receiver(**arguments)
            session.commit()


def _default_name(receiver: Receiver) -> str:
    qualname = getattr(receiver, "__qualname__", type(receiver).__qualname__)
    return f"{receiver.__module__}.{qualname}"


def _publish_options(task_options: dict[str, Any]) -> str:
    options = {k: v for k, v in task_options.items() if k in PUBLISH_OPTIONS}
    try:
        return dumps(checked_publish_options(options))
    except TypeError as error:
        raise TypeError(
            f"task_receiver()'s publishing options are stored with each event, as JSON: "
            f"{error} (give a queue or exchange by its name, times in seconds)."
        ) from error


def _outbox_of(mapper: Mapper[Any]) -> Table:
    local = mapper.local_table
    metadata = local.metadata if isinstance(local, Table) else mapper.registry.metadata
    table = find_outbox_table(metadata)
    if table is None:
        raise LookupError(
            f"{mapper.class_.__name__}'s metadata has no outbox table: declare it with "
            "sa_signals.celery.outbox_table(metadata) (and create it: create_all() or a migration)."
        )
    return table


# -- publishing each transaction's events after its commit --------------------------------


@dataclass(eq=False)
class _Publication:
    """The events one transaction (or SAVEPOINT) wrote to one outbox, published
    after the commit by a single on_commit callback; a rolled-back SAVEPOINT
    drops the callback, as its rows are gone too."""

    bind: Any
    table: Table
    events: list[str] = field(default_factory=list)
    apps: dict[str, Celery[Any]] = field(default_factory=dict)  # by task name

    def add(self, event_id: str, task: Task[Any, None], app: Celery[Any]) -> None:
        self.events.append(event_id)
        self.apps[task.name] = app

    def publish(self) -> None:
        # A session joined to a connection's transaction hands over that
        # connection: the publisher takes one of its own, once it has committed.
        bind = self.bind.engine if isinstance(self.bind, Connection) else self.bind
        publish_events(bind, self.table, self.apps, self.events)


_PUBLICATIONS = "sa_signals.celery.publications"


def _publication(session: Session, bind: Any, table: Table) -> _Publication:
    transaction = session.get_nested_transaction() or session.get_transaction()
    assert transaction is not None  # sent from a flush
    by_transaction: WeakKeyDictionary[SessionTransaction, dict[Any, _Publication]] = (
        session.info.setdefault(_PUBLICATIONS, WeakKeyDictionary())
    )
    publications = by_transaction.setdefault(transaction, {})
    publication = publications.get((bind, table))
    if publication is None:
        publication = publications[(bind, table)] = _Publication(bind, table)
        on_commit(publication.publish, session, robust=True)
    return publication
