"""The demo's signals, traced: one request of the Flask app, recorded by
OpenTelemetry's in-memory exporter, shows which receivers ran for which send,
and names the rows it touched by their keys only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine

from examples.tests.conftest import Blog, Visitor, audit_log
from tests.tracing import tracing_into


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    with tracing_into(exporter):
        yield exporter


def test_editing_a_post_traces_each_send_and_the_receivers_it_reached(
    spans: InMemorySpanExporter, visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    visitor.log_in("alice", "alice's password")
    spans.clear()  # the log-in's own sends are not this test's subject

    edited = visitor.submit(
        f"/posts/{blog.post_id}/edit", title="A secret title", body="A secret body.", tags="news"
    )

    assert edited.status_code == 302
    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished if span.context is not None}
    reached = sorted(
        (
            str(by_id[span.parent.span_id].attributes["sa_signals.signal"]),  # type: ignore[index]
            str(span.attributes["sa_signals.receiver"]),  # type: ignore[index]
        )
        for span in finished
        if span.name == "signal.receiver" and span.parent is not None
    )
    assert reached == [
        ("sa_signals.m2m_changed", "audit_tags"),
        ("sa_signals.m2m_changed", "audit_tags"),
        ("sa_signals.post_save", "audit_save"),
        ("sa_signals.pre_save", "give_new_posts_a_slug"),
    ]
    saves = [
        span
        for span in finished
        if span.attributes and span.attributes.get("sa_signals.signal") == "sa_signals.post_save"
    ]
    assert [span.attributes["sa_signals.instance.primary_key"] for span in saves] == [  # type: ignore[index]
        blog.post_id
    ]
    assert [span.attributes["sa_signals.created"] for span in saves] == [False]  # type: ignore[index]
    # The audit log holds the title; the spans never do.
    assert any("A secret title" in str(entry) for entry in audit_log(engine))
    recorded = [str(value) for span in finished for value in (span.attributes or {}).values()]
    assert not [value for value in recorded if "secret" in value]
