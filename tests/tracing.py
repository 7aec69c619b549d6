"""Tracing (sa_signals.tracing) into OpenTelemetry's in-memory exporter, as the
tests of tracing, the worker's and the demo's turn it on."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sa_signals.tracing import disable_tracing, enable_tracing


def exporting_to(exporter: InMemorySpanExporter) -> TracerProvider:
    """A tracer provider that hands each span to ``exporter`` as it ends."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@contextmanager
def tracing_into(exporter: InMemorySpanExporter, deny: Iterable[Any] = ()) -> Iterator[None]:
    """Tracing on, into ``exporter``, within the block."""
    enable_tracing(tracer_provider=exporting_to(exporter), deny=deny)
    try:
        yield
    finally:
        disable_tracing()
