"""Data never chooses code. Whatever a user typed into a column, and whatever
anyone publishes to the broker or writes into the outbox, a worker imports
nothing and calls nothing but the receiver, and the receiver gets back exactly
the values that were written. Real brokers, a real worker, all three databases.

``tests.celery.canary`` is the module every forgery names: it must never be
imported."""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery
from celery.signals import task_failure, task_retry
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from sa_signals import post_delete, post_save
from sa_signals.celery import RefusedEvent, relay_outbox
from tests.celery.conftest import Deliveries, messages_waiting, pending_events
from tests.celery.proxy import BrokerProxy
from tests.models import (
    Channel,
    Invoice,
    InvoiceState,
    Order,
    Priority,
    Submission,
    outbox,
)

Background = Callable[..., Deliveries]
Worker = Callable[[], AbstractContextManager[Any]]

CANARY = "tests.celery.canary"

# What the first version decoded as "import this path, call it with this value".
CALL_ENVELOPE = {"__sa_signals__": "enum", "class": f"{CANARY}:pwned", "value": "touch pwned"}

# What users may type into a JSON column: shaped like every envelope there is,
# at the top, nested, in lists; and strings that look like import paths.
USER_DATA: list[Any] = [
    CALL_ENVELOPE,
    {"answers": {"address": {"street": CALL_ENVELOPE}}},
    [CALL_ENVELOPE, {"__sa_signals__": "timedelta", "seconds": 5}],
    {"__sa_signals__": "tuple", "value": [1, 2]},
    {"__sa_signals__": "dict", "value": [["a", 1]]},
    {"__sa_signals__": "decimal", "value": "1.5", "and": "more"},
    {"__type__": "decimal", "__value__": "1.5"},  # kombu's envelope, which Celery decodes
    {"__type__": "no such type", "__value__": 1},  # which kombu refuses to decode at all
    f"{CANARY}:pwned",
    "os:system",
]


@pytest.fixture(autouse=True)
def _canary_stays_unimported() -> Iterator[None]:
    assert CANARY not in sys.modules
    yield
    assert CANARY not in sys.modules, "data made the worker import a module it named"


def test_user_data_in_a_json_column_comes_back_unchanged_in_changes(
    session: Session, background: Background, worker: Worker
) -> None:
    submissions = [Submission(form=value) for value in USER_DATA]
    session.add_all(submissions)
    session.commit()
    saved = background(post_save, sender=Submission)

    # Each row gets the next row's value: old and new are both user data.
    written = USER_DATA[1:] + USER_DATA[:1]
    for submission, value in zip(submissions, written, strict=True):
        submission.form = value
    session.commit()

    with worker():
        calls = saved.wait_for(len(USER_DATA))
    received = {call["instance"].id: call for call in calls}
    for submission, old, new in zip(submissions, USER_DATA, written, strict=True):
        call = received[submission.id]
        assert call["changes"] == {"form": (old, new)}
        assert call["instance"].form == new


def test_user_data_in_a_deleted_row_comes_back_unchanged(
    session: Session, background: Background, worker: Worker
) -> None:
    session.add_all([Submission(form=value) for value in USER_DATA])
    session.commit()
    deleted = background(post_delete, sender=Submission)

    for submission in session.scalars(select(Submission)):
        session.delete(submission)
    session.commit()

    with worker():
        calls = deleted.wait_for(len(USER_DATA))
    forms = sorted((json.dumps(call["instance"].form) for call in calls), key=str)
    assert forms == sorted((json.dumps(value) for value in USER_DATA), key=str)
    assert all(call["origin"] is call["instance"] for call in calls)


def test_columns_come_back_as_the_types_their_model_declares(
    session: Session, background: Background, worker: Worker
) -> None:
    submission = Submission(form=None, scan=b"\x00\xff")
    issued, reference = datetime(2026, 12, 1, 9, 30, tzinfo=UTC), uuid.uuid4()
    invoice = Invoice(
        number="F-1",
        amount=Decimal("10.50"),
        due=date(2026, 12, 31),
        issued_at=issued,
        reference=reference,
        state=InvoiceState.SENT,
        terms=timedelta(days=30, seconds=5),
    )
    session.add_all([submission, invoice])
    session.commit()
    saved = background(post_save, sender=Submission)
    deleted = background(post_delete, sender=Invoice)

    submission.priority, submission.channel = Priority.HIGH, Channel.EMAIL
    submission.scan = bytes(range(256))
    session.delete(invoice)
    session.commit()

    with worker():
        (save,) = saved.wait_for(1)
        (delete,) = deleted.wait_for(1)
    changes = save["changes"]
    assert changes == {
        "priority": (Priority.LOW, Priority.HIGH),
        "channel": (Channel.LETTER, Channel.EMAIL),
        "scan": (b"\x00\xff", bytes(range(256))),
    }
    # An IntEnum equals its int and a str-based enum its str: the types count too.
    assert [type(value) for value in changes["priority"]] == [Priority, Priority]
    assert [type(value) for value in changes["channel"]] == [Channel, Channel]
    copy = delete["instance"]
    assert (copy.number, copy.amount, copy.due, copy.issued_at) == (
        "F-1",
        Decimal("10.50"),
        date(2026, 12, 31),
        issued,
    )
    assert (copy.reference, copy.state, copy.terms) == (
        reference,
        InvoiceState.SENT,
        timedelta(days=30, seconds=5),
    )
    assert type(copy.state) is InvoiceState


# -- what a party who can publish to the broker can make a worker do ----------------------------


def forged_save(model: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "signal": "post_save",
        "model": model,
        "pk": [1],
        "created": True,
        "raw": False,
        "update_fields": None,
        "changes": {},
    }


def as_message(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The task id and arguments sa-signals would publish ``event`` with."""
    return event["event_id"], {"event": json.dumps(event)}


FORGED_SAVES: dict[str, tuple[str, dict[str, Any]]] = {
    "a module": as_message(forged_save(CANARY)),
    "a function": as_message(forged_save(f"{CANARY}:pwned")),
    "an unmapped class": as_message(forged_save(f"{CANARY}:Plain")),
    "a class no registry maps": as_message(forged_save("tests.models:Nowhere")),
    "a shell command": as_message(forged_save("os:system")),
    "the fields as arguments": (str(uuid.uuid4()), forged_save(f"{CANARY}:pwned")),
    "another event's id": (str(uuid.uuid4()), as_message(forged_save("tests.models:Order"))[1]),
    "a key of another type": as_message({**forged_save("tests.models:Order"), "pk": ["abc"]}),
    "a key out of range": as_message({**forged_save("tests.models:Order"), "pk": [10**30]}),
    "nesting past any limit": (str(uuid.uuid4()), {"event": "[" * 100_000}),
}


class TaskOutcomes:
    """Celery's own reports from the worker: each failed task's exception, and
    each retry."""

    def __init__(self) -> None:
        self.failures: dict[str, BaseException] = {}
        self.retries: list[str] = []
        self._reported = threading.Condition()

    def failed(self, task_id: str, exception: BaseException, **_: Any) -> None:
        with self._reported:
            self.failures[task_id] = exception
            self._reported.notify_all()

    def wait_for_failures(self, count: int) -> None:
        """Messages published on another connection than the commit's may
        reach the queue after its event: wait for their reports too."""
        with self._reported:
            if not self._reported.wait_for(lambda: len(self.failures) >= count, 30):
                pytest.fail(f"{len(self.failures)} of {count} task failures were reported")

    def retried(self, request: Any, **_: Any) -> None:
        self.retries.append(request.id)


@pytest.fixture
def outcomes() -> Iterator[TaskOutcomes]:
    outcomes = TaskOutcomes()
    task_failure.connect(outcomes.failed)
    task_retry.connect(outcomes.retried)
    yield outcomes
    task_failure.disconnect(outcomes.failed)
    task_retry.disconnect(outcomes.retried)


def test_a_forged_event_is_refused_without_importing_what_it_names(
    backend: str,
    session: Session,
    background: Background,
    worker: Worker,
    celery_app: Celery,
    outcomes: TaskOutcomes,
) -> None:
    # A receiver of any sender, retried on any error, forever: a refusal must
    # still be final.
    saves, deletes = f"tests.saves_{uuid.uuid4().hex}", f"tests.deletes_{uuid.uuid4().hex}"
    retried_forever = {
        "autoretry_for": (Exception,),
        "retry_kwargs": {"countdown": 0},
        "max_retries": None,
    }
    saved = background(post_save, name=saves, **retried_forever)
    background(post_delete, name=deletes, **retried_forever)
    forged_delete = {
        **forged_save("tests.models:Order"),
        "signal": "post_delete",
        "values": {"reference": "forged"},
        "origin": {"model": f"{CANARY}:pwned", "pk": [1], "values": {}},
    }
    forgeries = {
        **{what: (saves, *message) for what, message in FORGED_SAVES.items()},
        "an origin naming a function": (deletes, *as_message(forged_delete)),
    }
    task_ids = {what: task_id for what, (_, task_id, _) in forgeries.items()}
    for task, task_id, arguments in forgeries.values():
        celery_app.send_task(task, kwargs=arguments, task_id=task_id)
    celery_app.send_task(saves, args=["positional"], kwargs={}, task_id=str(uuid.uuid4()))

    session.add(Order(reference="after the forgeries"))
    session.commit()

    with worker():
        (call,) = saved.wait_for(1)
        # Every forgery fails, bar a key out of range on MariaDB (no row: skipped).
        outcomes.wait_for_failures(len(forgeries) + 1 - (backend == "mariadb"))
    assert call["instance"].reference == "after the forgeries"
    refused = {what: outcomes.failures.pop(task_id, None) for what, task_id in task_ids.items()}
    # A key out of range: the database refuses it, or finds no row (MariaDB),
    # and the event is skipped; never retried either way.
    out_of_range = refused.pop("a key out of range")
    assert out_of_range is None or isinstance(out_of_range, RefusedEvent)
    assert all(isinstance(error, RefusedEvent) for error in refused.values()), refused
    assert f"'{CANARY}:pwned'" in str(refused["a function"])
    assert "tests.models:Nowhere" in str(refused["a class no registry maps"])
    assert "takes one argument, event=" in str(refused["the fields as arguments"])
    assert "came as task" in str(refused["another event's id"])
    assert "the primary key id is 'abc'" in str(refused["a key of another type"])
    assert "nested deeper" in str(refused["nesting past any limit"])
    (positional,) = outcomes.failures.values()
    assert "1 positional" in str(positional)
    assert outcomes.retries == []


def test_a_forged_event_for_a_receiver_of_one_model_is_refused(
    session: Session,
    background: Background,
    worker: Worker,
    celery_app: Celery,
    outcomes: TaskOutcomes,
) -> None:
    name = f"tests.orders_{uuid.uuid4().hex}"
    saved = background(post_save, sender=Order, name=name)
    other_model = {**forged_save("tests.models:Invoice"), "pk": ["F-1"]}
    unknown_column = {**forged_save("tests.models:Order"), "changes": {"__class__": [1, 2]}}
    forged_tag = {**forged_save("tests.models:Order"), "changes": {"total": [None, CALL_ENVELOPE]}}
    task_ids = []
    for forged in (other_model, unknown_column, forged_tag):
        task_id, arguments = as_message(forged)
        celery_app.send_task(name, kwargs=arguments, task_id=task_id)
        task_ids.append(task_id)
    session.add(Order(reference="real"))
    session.commit()

    with worker():
        (call,) = saved.wait_for(1)
        outcomes.wait_for_failures(len(task_ids))
    assert call["instance"].reference == "real"
    errors = [str(outcomes.failures[task_id]) for task_id in task_ids]
    assert "names 'tests.models:Invoice', and the receiver is connected for" in errors[0]
    assert "'__class__'" in errors[1]
    assert "the change of 'total'" in errors[2]


# -- what a party who can write the outbox can make the relay publish -----------------------------


def test_the_relay_publishes_only_background_receivers_with_publishing_options(
    session: Session,
    engine: Engine,
    background: Background,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"tests.receiver_{uuid.uuid4().hex}"
    background(post_save, sender=Order, name=name)

    @celery_app.task(name=f"tests.ordinary_{uuid.uuid4().hex}", shared=False)
    def ordinary(**kwargs: Any) -> None: ...

    broker_proxy.down()
    session.add(Order(reference="real"))
    session.commit()  # its event stays pending
    broker_proxy.up()
    with engine.connect() as connection:
        (real,) = connection.scalars(select(outbox.c.id)).all()
    forged = {
        "another task": (ordinary.name, "{}"),
        "a serializer": (name, '{"serializer": "pickle"}'),
        "a callback": (name, '{"link": {"task": "celery.backend_cleanup"}}'),
        "not an object": (name, '["queue"]'),
    }
    with engine.begin() as connection:  # older than the real one: claimed first
        for n, (task, options) in enumerate(forged.values()):
            connection.execute(
                insert(outbox).values(
                    id=f"forged-{n}",
                    task=task,
                    payload=json.dumps(forged_save(f"{CANARY}:pwned")),
                    options=options,
                    created_at=datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
                    attempts=0,
                )
            )

    # One event a batch: the refused ones, set aside, never stand in the way.
    assert relay_outbox(engine, celery_app, batch_size=1) == 1
    assert messages_waiting(celery_app) == [real]
    assert pending_events(engine) == len(forged)
    for n in range(len(forged)):
        assert f"Could not publish event forged-{n}" in caplog.text
    assert "is not the task of a background receiver" in caplog.text
    assert "'serializer' is not an option events are published with" in caplog.text
