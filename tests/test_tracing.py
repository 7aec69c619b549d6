"""OpenTelemetry tracing of sends (sa_signals.tracing), recorded by the SDK's
in-memory exporter on real sessions: which sends make spans, what the spans say,
and what they never say."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from sa_signals import Signal, post_delete, post_save, pre_save
from sa_signals.testing import capture_on_commit_callbacks
from sa_signals.tracing import disable_tracing, enable_tracing
from tests.databases import Database
from tests.models import Note, Order
from tests.tracing import exporting_to

Connect = Callable[..., Callable[..., Any]]


@pytest.fixture
def connect() -> Iterator[Connect]:
    connected: list[tuple[Signal, Callable[..., Any], Any]] = []

    def connect(signal: Signal, sender: Any = Order, **options: Any) -> Callable[..., Any]:
        def add(receiver: Callable[..., Any]) -> Callable[..., Any]:
            signal.connect(receiver, sender=sender, weak=False, **options)
            connected.append((signal, receiver, sender))
            return receiver

        return add

    yield connect
    for signal, receiver, sender in connected:
        signal.disconnect(receiver, sender=sender)


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def children_of(exporter: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in exporter.get_finished_spans()
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def test_a_save_makes_a_send_span_with_a_child_per_receiver(
    spans: InMemorySpanExporter, session: Session, connect: Connect
) -> None:
    @connect(post_save)
    def audit(**kwargs: Any) -> None: ...

    @connect(post_save)
    def index(**kwargs: Any) -> None: ...

    order = Order(reference="T-1")
    session.add(order)
    session.commit()

    [send] = named(spans, "signal.send")
    assert send.attributes == {
        "sa_signals.signal": "sa_signals.post_save",
        "sa_signals.sender": "tests.models.Order",
        "sa_signals.receivers": 2,
        "sa_signals.instance.primary_key": order.id,
        "sa_signals.created": True,
    }
    receivers = children_of(spans, send)
    assert [span.name for span in receivers] == ["signal.receiver", "signal.receiver"]
    assert [span.attributes["sa_signals.receiver"] for span in receivers if span.attributes] == [
        "test_a_save_makes_a_send_span_with_a_child_per_receiver.<locals>.audit",
        "test_a_save_makes_a_send_span_with_a_child_per_receiver.<locals>.index",
    ]
    assert all(span.status.status_code is StatusCode.UNSET for span in [send, *receivers])


def test_a_send_that_reaches_no_receiver_makes_no_span(
    spans: InMemorySpanExporter, session: Session, connect: Connect
) -> None:
    @connect(post_save, sender=Note)
    def not_for_orders(**kwargs: Any) -> None: ...

    session.add(Order(reference="T-1"))
    session.commit()
    Signal().send(sender=Order)

    assert spans.get_finished_spans() == ()


def test_a_failing_receiver_marks_its_span_and_the_send_as_errors(
    spans: InMemorySpanExporter, session: Session, connect: Connect
) -> None:
    @connect(pre_save)
    def refuse(instance: Order, **kwargs: Any) -> None:
        raise ValueError(f"{instance.reference} refused")

    session.add(Order(reference="T-1"))
    with pytest.raises(ValueError, match="T-1 refused"):
        session.commit()
    session.rollback()

    [send] = named(spans, "signal.send")
    [receiver] = children_of(spans, send)
    assert receiver.status.status_code is StatusCode.ERROR
    assert send.status.status_code is StatusCode.ERROR
    [exception] = [event for event in receiver.events if event.name == "exception"]
    assert exception.attributes is not None
    assert exception.attributes["exception.type"] == "ValueError"


def test_send_robust_records_the_error_and_goes_on(
    spans: InMemorySpanExporter, connect: Connect
) -> None:
    signal = Signal()

    @connect(signal, sender=None)
    def fails(**kwargs: Any) -> None:
        raise RuntimeError("down")

    @connect(signal, sender=None)
    def works(**kwargs: Any) -> str:
        return "done"

    responses = signal.send_robust(sender=None)

    assert [response for _, response in responses][1] == "done"
    [send] = named(spans, "signal.send")
    assert send.status.status_code is StatusCode.UNSET  # the send itself went through
    statuses = [span.status.status_code for span in children_of(spans, send)]
    assert statuses == [StatusCode.ERROR, StatusCode.UNSET]


def test_a_deferred_receiver_is_traced_when_it_runs_after_the_commit(
    spans: InMemorySpanExporter, session: Session, connect: Connect
) -> None:
    ran = []

    @connect(post_save, on_commit=True)
    def email(instance: Order, **kwargs: Any) -> None:
        ran.append(instance.reference)

    session.add(Order(reference="kept"))
    session.flush()
    assert named(spans, "signal.receiver") == []  # deferred: not run yet
    session.commit()
    session.add(Order(reference="rolled back"))
    session.flush()
    session.rollback()

    assert ran == ["kept"]
    sends = named(spans, "signal.send")
    [deferred] = named(spans, "signal.receiver")
    assert deferred.attributes is not None
    assert deferred.attributes["sa_signals.delivery"] == "on_commit"
    assert deferred.parent is None  # it runs after the send's span ended
    assert sends[0].context is not None
    assert [link.context.span_id for link in deferred.links] == [sends[0].context.span_id]


def test_the_deny_list_leaves_out_signals_and_receivers(
    spans: InMemorySpanExporter, session: Session, connect: Connect
) -> None:
    calls = []

    @connect(pre_save)
    def noisy(**kwargs: Any) -> None:
        calls.append("noisy")

    @connect(post_save)
    def quiet(**kwargs: Any) -> None:
        calls.append("quiet")

    @connect(post_save)
    def interesting(**kwargs: Any) -> None:
        calls.append("interesting")

    enable_tracing(tracer_provider=exporting_to(spans), deny=[pre_save, quiet])
    session.add(Order(reference="T-1"))
    session.commit()

    assert calls == ["noisy", "quiet", "interesting"]  # every receiver still runs
    [send] = named(spans, "signal.send")
    assert send.attributes is not None
    assert send.attributes["sa_signals.signal"] == "sa_signals.post_save"
    assert [span.attributes for span in children_of(spans, send) if span.attributes] == [
        {
            "sa_signals.receiver": "test_the_deny_list_leaves_out_signals_and_receivers.<locals>"
            ".interesting",
            "code.function.name": "tests.test_tracing.test_the_deny_list_leaves_out_signals_and"
            "_receivers.<locals>.interesting",
            "sa_signals.delivery": "sync",
        }
    ]


def test_spans_name_an_instance_by_its_key_never_by_its_values(
    spans: InMemorySpanExporter, session: Session, connect: Connect
) -> None:
    @connect(post_save)
    def audit(**kwargs: Any) -> None: ...

    @connect(post_delete)
    def forget(**kwargs: Any) -> None: ...

    order = Order(reference="secret reference", status="secret status")
    session.add(order)
    session.commit()
    order.status = "another secret"
    session.commit()
    session.delete(order)
    session.commit()

    recorded = [
        str(value)
        for span in spans.get_finished_spans()
        for value in (span.attributes or {}).values()
    ]
    assert not [value for value in recorded if "secret" in value]
    keys = [
        span.attributes.get("sa_signals.instance.primary_key")
        for span in named(spans, "signal.send")
        if span.attributes
    ]
    assert keys == [order.id, order.id, order.id]


def test_async_receivers_are_traced_under_an_async_session(
    spans: InMemorySpanExporter, database: Database, engine: Engine, connect: Connect
) -> None:
    @connect(pre_save)
    async def check(instance: Order, **kwargs: Any) -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        async_engine = database.async_engine()
        try:
            async with AsyncSession(async_engine) as session:
                session.add(Order(reference="A-1"))
                await session.commit()
        finally:
            await async_engine.dispose()

    asyncio.run(main())

    [send] = named(spans, "signal.send")
    [receiver] = children_of(spans, send)
    assert receiver.attributes is not None
    assert receiver.attributes["sa_signals.delivery"] == "async"


def test_asend_is_traced(spans: InMemorySpanExporter, connect: Connect) -> None:
    signal = Signal()

    @connect(signal, sender=None)
    async def awaited(**kwargs: Any) -> str:
        return "awaited"

    assert [response for _, response in asyncio.run(signal.asend(None))] == ["awaited"]
    [send] = named(spans, "signal.send")
    assert len(children_of(spans, send)) == 1


def test_a_receiver_that_cannot_be_hashed_is_traced_like_any_other(
    spans: InMemorySpanExporter, session: Session, connect: Connect
) -> None:
    @dataclass
    class Handler:  # a dataclass: unhashable, as connect() allows
        calls: list[str]

        def __call__(self, instance: Order, **kwargs: Any) -> str:
            self.calls.append(instance.reference)
            return "handled"

    handler, later = Handler([]), Handler([])
    connect(post_save)(handler)
    connect(post_save, on_commit=True)(later)
    enable_tracing(tracer_provider=exporting_to(spans), deny=[Handler([])])  # not these two

    session.add(Order(reference="T-1"))
    session.commit()

    assert (handler.calls, later.calls) == (["T-1"], ["T-1"])
    assert len(named(spans, "signal.receiver")) == 2


def test_a_deferred_receiver_is_deferred_as_itself_when_traced(
    spans: InMemorySpanExporter, session: Session, connect: Connect
) -> None:
    @connect(post_save, on_commit=True)
    def email(**kwargs: Any) -> None: ...

    with capture_on_commit_callbacks(session) as callbacks:
        session.add(Order(reference="T-1"))
        session.flush()

    [callback] = callbacks
    assert callback.func is email


def test_a_send_begun_before_tracing_was_turned_off_finishes_untraced(
    session: Session, connect: Connect
) -> None:
    calls = []

    @connect(post_save)
    def audit(**kwargs: Any) -> None:
        calls.append("audit")

    enable_tracing(tracer_provider=TracerProvider())
    send, plain_routes_for = post_save.send, post_save._plain_routes_for  # looked up, traced
    disable_tracing()  # by another thread, say

    send(sender=Order, instance=Order(reference="T-1"))
    assert plain_routes_for(Order) is not None
    assert calls == ["audit"]


# Tests that pin how a send is made rather than what it does: which path the
# flush takes (traced, every send goes through send()), and a precondition on
# id() reuse that the spans' own allocations make unlikely.
_ABOUT_THE_UNTRACED_PATH = (
    "test_the_flush_calls_receivers_itself_only_where_send_would_just_call_them",
    "test_receivers_of_a_collected_sender_are_not_inherited_by_a_new_object",
)


def test_signal_semantics_are_the_same_traced(tmp_path: Path) -> None:
    """The dispatcher's, the transaction's and the testing helpers' own tests, run
    again with tracing on: the traced send methods stand in for the untraced ones,
    so they must behave alike."""
    suites = [
        "tests/test_dispatch.py",
        "tests/test_transaction.py",
        "tests/test_testing.py",
        "tests/orm/test_async_receivers.py",
        "tests/orm/test_switches.py",
    ]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'traced'}",  # not a numbered run, which would prune others
            "-k",
            " and ".join(f"not {name}" for name in _ABOUT_THE_UNTRACED_PATH),
            *suites,
        ],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "SA_SIGNALS_TRACE_TESTS": "1", "SA_SIGNALS_BACKENDS": "sqlite"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert " passed" in run.stdout
    assert " failed" not in run.stdout


def test_turned_off_the_send_methods_are_the_untraced_ones_again() -> None:
    names = ("send", "send_robust", "asend", "asend_robust", "_plain_routes_for")
    untraced = {name: Signal.__dict__[name] for name in names}
    enable_tracing(tracer_provider=TracerProvider())
    assert Signal.__dict__["send"] is not untraced["send"]
    disable_tracing()
    assert {name: Signal.__dict__[name] for name in untraced} == untraced


def test_the_deny_list_refuses_what_is_neither_a_signal_nor_a_receiver() -> None:
    with pytest.raises(TypeError, match="'post_save' is neither"):
        enable_tracing(deny=["post_save"])


def test_opentelemetry_is_imported_only_when_tracing_is_asked_for() -> None:
    program = (
        "import sys, sa_signals, sa_signals.tracing, sa_signals.celery, sa_signals.testing\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True)
