"""Tracing across a real Celery worker: the background receiver's span, made in
the worker when it really runs, links to the span that wrote its event into the
outbox at the flush, through the context stored with the event."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from celery import Celery
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import get_tracer
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sa_signals import post_save
from tests.celery.conftest import Deliveries
from tests.models import Order, outbox
from tests.tracing import tracing_into

Background = Callable[..., Deliveries]
Worker = Callable[[], AbstractContextManager[Any]]


def receiver_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == "signal.receiver"]


def test_the_worker_span_links_to_the_span_that_wrote_the_event(
    spans: InMemorySpanExporter,
    session: Session,
    background: Background,
    worker: Worker,
    engine: Engine,
) -> None:
    deliveries = background(post_save, sender=Order, name="tests.traced_background")
    with get_tracer("tests").start_as_current_span("POST /orders"):  # the request's own span
        session.add(Order(reference="A-1"))
        session.commit()

    with worker():
        deliveries.wait_for(1)

    written, ran = receiver_spans(spans)
    assert written.attributes is not None
    assert ran.attributes is not None
    assert (written.attributes["sa_signals.delivery"], ran.attributes["sa_signals.delivery"]) == (
        "outbox",
        "background",
    )
    assert written.attributes["sa_signals.task"] == "tests.traced_background"
    assert ran.attributes["sa_signals.task"] == "tests.traced_background"
    assert written.attributes["sa_signals.receiver"] == ran.attributes["sa_signals.receiver"]
    # In the worker: a trace of its own, linked to the span of the flush that wrote it.
    assert written.context is not None
    assert ran.context is not None
    assert ran.context.trace_id != written.context.trace_id
    assert [link.context.span_id for link in ran.links] == [written.context.span_id]
    assert [link.context.trace_id for link in ran.links] == [written.context.trace_id]
    with Session(engine) as reading:
        [payload] = reading.scalars(select(outbox.c.payload)).all()
    assert json.loads(payload)["traceparent"].split("-")[2] == f"{written.context.span_id:016x}"


def test_an_event_written_untraced_carries_no_trace_and_its_worker_span_no_link(
    session: Session, background: Background, worker: Worker, engine: Engine
) -> None:
    deliveries = background(post_save, sender=Order)
    session.add(Order(reference="A-1"))
    session.commit()  # tracing off: the event is written without a traceparent
    with Session(engine) as reading:
        [payload] = reading.scalars(select(outbox.c.payload)).all()
    assert "traceparent" not in json.loads(payload)

    exporter = InMemorySpanExporter()
    with tracing_into(exporter), worker():  # tracing on, for the worker only
        deliveries.wait_for(1)

    [ran] = receiver_spans(exporter)
    assert ran.links == ()


def test_a_forged_traceparent_makes_no_link_and_runs_nothing_else(
    spans: InMemorySpanExporter,
    session: Session,
    background: Background,
    worker: Worker,
    engine: Engine,
    celery_app: Celery,
) -> None:
    """From anyone who can publish to the broker: the event of a real row, under a
    new id, with a traceparent that is code rather than a trace context."""
    deliveries = background(post_save, sender=Order, name="tests.forged_trace")
    session.add(Order(reference="A-1"))
    session.commit()
    with Session(engine) as reading:
        [payload] = reading.scalars(select(outbox.c.payload)).all()
    forged_id = str(uuid.uuid4())
    forged = {
        **json.loads(payload),
        "event_id": forged_id,
        "traceparent": "__import__('os').system('touch /tmp/sa-signals-forged')",
    }
    celery_app.send_task(
        "tests.forged_trace", kwargs={"event": json.dumps(forged)}, task_id=forged_id
    )

    with worker():
        calls = deliveries.wait_for(2)

    assert sorted(call["event_id"] == forged_id for call in calls) == [False, True]
    written, *ran = receiver_spans(spans)
    assert written.context is not None
    links = sorted(([link.context.span_id for link in span.links] for span in ran), key=len)
    assert links == [[], [written.context.span_id]]


def test_a_denied_signal_is_not_traced_in_the_worker_either(
    session: Session, background: Background, worker: Worker
) -> None:
    deliveries = background(post_save, sender=Order)
    exporter = InMemorySpanExporter()
    with tracing_into(exporter, deny=[post_save]):
        session.add(Order(reference="A-1"))
        session.commit()
        with worker():
            deliveries.wait_for(1)

    assert exporter.get_finished_spans() == ()
