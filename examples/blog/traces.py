"""The demo's traces, printed to the console when asked: started with
``SA_SIGNALS_DEMO_TRACES=console``, the apps and the worker print every span
sa-signals makes (``sa_signals.tracing``) as it ends, one JSON document each.

A real application would hand ``enable_tracing()`` the tracer provider it
exports to its collector with; the console is the demo's collector.
"""

from __future__ import annotations

import os

from sa_signals.tracing import enable_tracing

__all__ = ["TRACES_VARIABLE", "trace_if_asked"]

TRACES_VARIABLE = "SA_SIGNALS_DEMO_TRACES"


def trace_if_asked() -> bool:
    """Turn tracing on, into the console, if the environment asks; say whether it did."""
    where = os.environ.get(TRACES_VARIABLE, "")
    if not where:
        return False
    if where != "console":
        raise ValueError(f"{TRACES_VARIABLE}={where!r}: the demo prints traces to 'console' only.")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    enable_tracing(tracer_provider=provider)
    return True
