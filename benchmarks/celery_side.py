"""Table 5's side of a worker process: Celery, in the two ways of running a
receiver in the background after the commit.

* ``delay_on_commit``: what everyone writes, an ``on_commit=True`` receiver
  calling ``task.delay()`` (through Celery's own producer pool), which loses
  the event if the broker is down at that moment or the process dies first;
* ``outbox``: ``@task_receiver``, which writes each event into the outbox in the
  transaction of the change, publishes it after the commit and marks it sent.

A sample is one ``session.commit()`` of N new items, timed up to the moment the
events are with the broker. Each sample then checks that the broker holds
exactly N messages (it empties the queue to count them): a variant that
published nothing would fail, not look fast.

The relay's throughput is measured on the outbox's own rows: after a commit,
they are made pending again, and ``relay_outbox()`` publishes them; its
yardstick is a bare loop of ``app.send_task()`` publishing the same events.

Nothing is consumed: no Celery worker runs, the broker is the end of the line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery
from sqlalchemy import Engine, Table, delete, func, select, update
from sqlalchemy.orm import Session

from benchmarks.models import Base, Item, new_items, reset

__all__ = ["QUEUE", "CeleryBench"]

QUEUE = "sa_signals_bench"
OUTBOX_TASK = "benchmarks.outbox_receiver"
DELAY_TASK = "benchmarks.delayed_receiver"


class CeleryBench:
    """One variant's Celery app and receiver, set up once per process."""

    def __init__(self, variant: str, broker_url: str) -> None:
        import sa_signals
        from sa_signals.celery import outbox_table, task_receiver

        self.variant = variant
        self.app = Celery("sa_signals_bench", broker=broker_url, set_as_current=False)
        self.app.conf.task_default_queue = QUEUE
        self.app.conf.broker_connection_retry_on_startup = False
        self.outbox: Table = outbox_table(Base.metadata)
        self.enqueued = 0
        self._prepared: set[Engine] = set()

        if variant == "outbox":

            @task_receiver(
                sa_signals.post_save,
                sender=Item,
                app=self.app,
                session_factory=Session,
                name=OUTBOX_TASK,
            )
            def outbox_receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
                """Runs in a Celery worker; none runs here."""

        elif variant == "delay_on_commit":
            delayed = self.app.task(name=DELAY_TASK, shared=False)(_delayed_receiver)

            def enqueue(sender: Any, instance: Item, created: bool, **kwargs: Any) -> None:
                delayed.delay(pk=instance.id, created=created)
                self.enqueued += 1

            self._enqueue = enqueue  # held: the signal holds it weakly
            sa_signals.post_save.connect(enqueue, sender=Item, on_commit=True)
        else:
            raise ValueError(f"no Celery set-up for variant {variant!r}")

    def prepare(self, engine: Engine) -> None:
        """Create the outbox table, once per database of the run."""
        if engine not in self._prepared:
            self.outbox.create(engine, checkfirst=True)
            self._prepared.add(engine)

    def commit(
        self, engine: Engine, objects: int, timed: Callable[[Callable[[], None]], float]
    ) -> dict[str, Any]:
        """One timed commit of ``objects`` new items; the broker must then hold
        one message per item."""
        self._start_empty(engine)
        with Session(engine) as session:
            session.add_all(new_items(objects))
            seconds = timed(session.commit)
        if self.variant == "outbox":
            published = self._sent(engine)
        else:
            published, self.enqueued = self.enqueued, 0
        return {"seconds": seconds, "published": published, "queued": self._purge()}

    def relay(
        self, engine: Engine, objects: int, timed: Callable[[Callable[[], None]], float]
    ) -> dict[str, Any]:
        """``relay_outbox()`` over a backlog of ``objects`` pending events."""
        from sa_signals.celery import relay_outbox

        self._backlog(engine, objects)
        published: list[int] = []
        seconds = timed(lambda: published.append(relay_outbox(engine, self.app)))
        return {"seconds": seconds, "published": published[0], "queued": self._purge()}

    def send_task_loop(
        self, engine: Engine, objects: int, timed: Callable[[Callable[[], None]], float]
    ) -> dict[str, Any]:
        """The yardstick of the relay: the same events, published by a bare loop
        of ``app.send_task()`` that neither claims nor marks anything."""
        self._backlog(engine, objects)
        with engine.connect() as connection:
            events = connection.execute(
                select(self.outbox.c.id, self.outbox.c.task, self.outbox.c.payload)
            ).all()
        # As the relay publishes them: the payload, untouched, as the one argument.
        prepared = [(event.id, event.task, {"event": event.payload}) for event in events]

        def publish() -> None:
            for event_id, task, kwargs in prepared:
                self.app.send_task(task, kwargs=kwargs, task_id=event_id)

        seconds = timed(publish)
        return {"seconds": seconds, "published": len(prepared), "queued": self._purge()}

    # -- helpers ---------------------------------------------------------------------------

    def _start_empty(self, engine: Engine) -> None:
        reset(engine)
        with engine.begin() as connection:
            connection.execute(delete(self.outbox))
        self._purge()

    def _backlog(self, engine: Engine, objects: int) -> None:
        """``objects`` pending events: committed through the outbox, then made
        pending again, as if the broker had been down at the commit."""
        self.commit(engine, objects, _untimed)
        with engine.begin() as connection:
            connection.execute(update(self.outbox).values(sent_at=None, claimed_until=None))

    def _sent(self, engine: Engine) -> int:
        with engine.connect() as connection:
            query = select(func.count()).where(self.outbox.c.sent_at.is_not(None))
            return int(connection.execute(query).scalar_one())

    def _purge(self) -> int:
        """Empty the queue (the app's only one), and say how many messages it held."""
        return self.app.control.purge()


def _delayed_receiver(pk: int, created: bool) -> None:
    """Runs in a Celery worker; none runs here."""


def _untimed(action: Callable[[], None]) -> float:
    """For a commit whose time nobody reads (setting up a backlog)."""
    action()
    return 0.0
