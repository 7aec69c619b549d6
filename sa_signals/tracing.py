"""OpenTelemetry spans for signal sends, turned on by one call: ``enable_tracing()``.

Once on, a send that reaches at least one receiver makes a span, ``signal.send``,
and each receiver a child span, ``signal.receiver``, which records its exception
and error status when it raises. A receiver connected with ``on_commit=True`` gets
its span when it really runs, after the commit, linked to the send that deferred
it; a background receiver gets its span in the Celery worker, linked to the span
that wrote its event into the outbox (``sa_signals.celery`` stores that span's
context with the event). A send that reaches no receiver makes no span, and a
deny-list leaves out whole signals or single receivers, for the noisy ones.

Off, which is the default, it costs nothing: this module imports OpenTelemetry
only when asked, and turning tracing on replaces the send methods of
:class:`~sa_signals.Signal` with traced ones, which turning it off puts back. An
untraced send runs exactly the code it runs without this module.

What spans never hold: the values of columns. An instance is named by its class
and its primary key, and receivers' arguments are not recorded.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy import inspect as inspect_sqlalchemy
from sqlalchemy.orm import InstanceState

from sa_signals import _muting
from sa_signals._await import run_to_completion
from sa_signals._version import __version__
from sa_signals.dispatch import Receiver, Signal, describe
from sa_signals.listing import BackgroundTask, signal_names

# Tracing stands in for the send methods, so it works with what they work with:
# the routes, their deliveries, and the send's own checks and messages.
from sa_signals.dispatch import _AWAIT, _DEFER, _Delivery, _identity  # isort: skip
from sa_signals.dispatch import _log_robust_failure, _refuse_signal_argument  # isort: skip

if TYPE_CHECKING:
    from opentelemetry.trace import Span, SpanContext, Tracer, TracerProvider

__all__ = ["disable_tracing", "enable_tracing"]

SEND_SPAN = "signal.send"
RECEIVER_SPAN = "signal.receiver"

# The methods tracing replaces on Signal while it is on.
_TRACED = ("send", "send_robust", "asend", "asend_robust", "_plain_routes_for")


@dataclass(eq=False)
class _Tracing:
    """What ``enable_tracing()`` was asked for, and what it replaced."""

    tracer: Tracer
    # The deny-list, by identity as connect() knows receivers (a bound method by
    # its instance and function), so that a receiver need not be hashable; the
    # entries themselves are kept so that their ids stay theirs.
    deny: list[Any] = field(default_factory=list)
    denied: frozenset[Hashable] = frozenset()

    def __post_init__(self) -> None:
        self.denied = frozenset(_identity(entry) for entry in self.deny)

    def traces(self, signal: Signal) -> bool:
        return _identity(signal) not in self.denied

    def ignores(self, receiver: Receiver) -> bool:
        return _identity(receiver) in self.denied

    def send_span(
        self, signal: Signal, sender: Any, named: dict[str, Any], receivers: int
    ) -> AbstractContextManager[Span]:
        attributes: dict[str, Any] = {
            "sa_signals.signal": _signal_name(signal),
            "sa_signals.sender": _sender_name(sender),
            "sa_signals.receivers": receivers,
        }
        instance = named.get("instance")
        if instance is not None:
            key = _primary_key(instance)
            if key is not None:
                attributes["sa_signals.instance.primary_key"] = key
        created = named.get("created")
        if isinstance(created, bool):
            attributes["sa_signals.created"] = created
        return self.tracer.start_as_current_span(SEND_SPAN, attributes=attributes)

    def receiver_span(
        self,
        receiver: Receiver,
        delivery: str,
        links: Iterable[SpanContext] = (),
        task: str | None = None,
    ) -> AbstractContextManager[Any]:
        """The receiver's span: an exception escaping it is recorded and marks it
        as an error (OpenTelemetry's default), then goes on its way."""
        background = _background_task_of(receiver)
        if background is not None:
            # At the flush, a background receiver is its outbox writer: the span
            # names the receiver the event is written for, and its task.
            receiver, delivery, task = background.receiver, "outbox", background.name
        if self.ignores(receiver):
            return nullcontext()
        from opentelemetry.trace import Link

        attributes = {
            "sa_signals.receiver": describe(receiver),
            "code.function.name": _function_name(receiver),
            "sa_signals.delivery": delivery,
        }
        if task is not None:
            attributes["sa_signals.task"] = task
        return self.tracer.start_as_current_span(
            RECEIVER_SPAN,
            attributes=attributes,
            links=[Link(context) for context in links if context.is_valid],
        )

    def deferred_span(self, receiver: Receiver) -> Callable[[], AbstractContextManager[Any]]:
        """What a deferred receiver runs inside, after the commit: its span, linked
        to the span current now, the send's. The receiver itself is deferred as
        it is, so that what the transaction holds (and
        ``capture_on_commit_callbacks`` shows) is the user's own function."""
        from opentelemetry.trace import get_current_span

        sent_from = get_current_span().get_span_context()
        return functools.partial(self.receiver_span, receiver, "on_commit", [sent_from])


_active: _Tracing | None = None
_switching = threading.Lock()


def enable_tracing(
    *, tracer_provider: TracerProvider | None = None, deny: Iterable[Any] = ()
) -> None:
    """Make a span for every send that reaches a receiver, and one for each receiver.

    :param tracer_provider: the provider to take the tracer from; OpenTelemetry's
        global one by default.
    :param deny: signals whose sends make no span at all, and receivers that get
        no span of their own (their signal's sends still do).
    :raises ImportError: OpenTelemetry is not installed (``pip install
        sa-signals[opentelemetry]``).
    :raises TypeError: an entry of ``deny`` is neither a signal nor a callable.

    Calling it again replaces the settings of the previous call.
    """
    try:
        from opentelemetry import trace
    except ImportError as error:
        raise ImportError(
            "enable_tracing() needs OpenTelemetry: pip install 'sa-signals[opentelemetry]'."
        ) from error
    denied = list(deny)
    for entry in denied:
        if not isinstance(entry, Signal) and not callable(entry):
            raise TypeError(
                f"enable_tracing(deny=...) takes signals and receivers; {entry!r} is neither."
            )
    tracer = trace.get_tracer("sa_signals", __version__, tracer_provider=tracer_provider)
    global _active
    with _switching:
        _active = _Tracing(tracer, denied)
        for name, method in _TRACED_METHODS.items():
            setattr(Signal, name, method)


def disable_tracing() -> None:
    """Stop tracing: sends run untraced again, at no cost. Deferred receivers
    already waiting for their commit still make their span when they run."""
    global _active
    with _switching:
        for name, method in _UNTRACED.items():
            setattr(Signal, name, method)
        _active = None


def tracing_enabled() -> bool:
    return _active is not None


@contextmanager
def background_receiver_span(
    signal: Signal, receiver: Receiver, task: str, written_from: str | None
) -> Iterator[None]:
    """The span of a background receiver running in the worker, linked to the span
    that wrote its event (``written_from``, a W3C ``traceparent`` read from the
    event: at worst a forged one makes a wrong link, never a call)."""
    tracing = _active
    if tracing is None or not tracing.traces(signal):
        yield
        return
    links = _links_from(written_from)
    with tracing.receiver_span(receiver, "background", links, task=task):
        yield


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the span current now, to be stored with an event
    written to the outbox; ``None`` when tracing is off or there is no valid span."""
    if _active is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def _links_from(traceparent: str | None) -> list[SpanContext]:
    if not isinstance(traceparent, str):
        return []
    from opentelemetry.trace import get_current_span
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    return [get_current_span(context).get_span_context()]


# -- the traced methods ----------------------------------------------------------------------


_DELIVERY_NAMES = {_Delivery.CALL: "sync", _AWAIT: "async", _DEFER: "on_commit"}


def _traced_routes(
    tracing: _Tracing | None, signal: Signal, sender: Any
) -> list[tuple[Receiver, _Delivery]]:
    """The live receivers a send by ``sender`` reaches, with their delivery, as
    ``send()`` finds them; empty when the send makes no span."""
    if tracing is None or not signal._connections or not tracing.traces(signal):
        return []
    routes = signal._routes_for(sender)
    if not routes or signal.is_muted:
        return []
    if _muting.in_use:
        routes = _muting.without_muted(signal, sender, routes)
    live = []
    for target, weak, delivery in routes:
        receiver = target() if weak else target
        if receiver is not None:
            live.append((receiver, delivery))
    return live


def _traced_plain_routes_for(self: Signal, sender: Any) -> Any:
    # The flush calls plain receivers itself, past send(): while a signal is
    # traced, its sends must go through send() to make their spans.
    tracing = _active
    routes = _UNTRACED["_plain_routes_for"](self, sender)
    if routes and tracing is not None and tracing.traces(self):
        return None
    return routes


def _sync_send(robust: bool) -> Callable[..., list[tuple[Receiver, Any]]]:
    untraced_name = "send_robust" if robust else "send"

    def send(self: Signal, sender: Any = None, **named: Any) -> list[tuple[Receiver, Any]]:
        # _active is read once: tracing may be turned off meanwhile, by another thread.
        tracing = _active
        receivers = _traced_routes(tracing, self, sender)
        if tracing is None or not receivers:
            return _UNTRACED[untraced_name](self, sender, **named)  # type: ignore[no-any-return]
        if "signal" in named:
            _refuse_signal_argument(self)
        named["signal"] = self
        named["sender"] = sender
        responses = []
        with tracing.send_span(self, sender, named, len(receivers)):
            for receiver, delivery in receivers:
                if delivery is _DEFER:
                    around = None if tracing.ignores(receiver) else tracing.deferred_span(receiver)
                    self._defer(receiver, named, around)
                    continue
                try:
                    with tracing.receiver_span(receiver, _DELIVERY_NAMES[delivery]):
                        response = receiver(**named)
                        if delivery is _AWAIT:
                            response = run_to_completion(response)
                except Exception as error:
                    if not robust:
                        raise
                    _log_robust_failure(receiver, error)
                    response = error
                responses.append((receiver, response))
        return responses

    send.__name__ = send.__qualname__ = untraced_name
    return send


def _async_send(robust: bool) -> Callable[..., Any]:
    untraced_name = "asend_robust" if robust else "asend"

    async def asend(self: Signal, sender: Any = None, **named: Any) -> list[tuple[Receiver, Any]]:
        tracing = _active
        receivers = _traced_routes(tracing, self, sender)
        if tracing is None or not receivers:
            return await _UNTRACED[untraced_name](self, sender, **named)  # type: ignore[no-any-return]
        if "signal" in named:
            _refuse_signal_argument(self)
        named["signal"] = self
        named["sender"] = sender
        responses = []
        with tracing.send_span(self, sender, named, len(receivers)):
            for receiver, delivery in receivers:
                if delivery is _DEFER:
                    around = None if tracing.ignores(receiver) else tracing.deferred_span(receiver)
                    self._defer(receiver, named, around)
                    continue
                try:
                    with tracing.receiver_span(receiver, _DELIVERY_NAMES[delivery]):
                        response = receiver(**named)
                        if delivery is _AWAIT:
                            response = await response
                except Exception as error:
                    if not robust:
                        raise
                    _log_robust_failure(receiver, error)
                    response = error
                responses.append((receiver, response))
        return responses

    asend.__name__ = asend.__qualname__ = untraced_name
    return asend


# Signal's own methods, taken when this module is imported, before any are replaced.
_UNTRACED: dict[str, Any] = {name: Signal.__dict__[name] for name in _TRACED}

_TRACED_METHODS: dict[str, Any] = {
    "send": _sync_send(robust=False),
    "send_robust": _sync_send(robust=True),
    "asend": _async_send(robust=False),
    "asend_robust": _async_send(robust=True),
    "_plain_routes_for": _traced_plain_routes_for,
}


# -- naming things in spans, without their values ------------------------------------------


def _signal_name(signal: Signal) -> str:
    """The signal's name, as the listing of receivers gives it; looked up once per
    signal, since it means reading the namespaces of the loaded modules."""
    name = _signal_names.get(signal)
    if name is None:
        name = signal_names([signal])[signal]
        if not name.startswith("<"):  # unnamed yet: its module may still bind it
            _signal_names[signal] = name
    return name


_signal_names: weakref.WeakKeyDictionary[Signal, str] = weakref.WeakKeyDictionary()


def _sender_name(sender: Any) -> str:
    if isinstance(sender, type):
        return f"{sender.__module__}.{sender.__qualname__}"
    if isinstance(sender, Table):
        return f"table {sender.fullname}"
    if sender is None:
        return "None"
    return type(sender).__qualname__


def _background_task_of(receiver: Receiver) -> BackgroundTask | None:
    holder = getattr(receiver, "__self__", receiver)
    task = getattr(holder, "background_task", None)
    return task if isinstance(task, BackgroundTask) else None


def _function_name(receiver: Receiver) -> str:
    module = getattr(receiver, "__module__", None)
    return f"{module}.{describe(receiver)}" if module else describe(receiver)


def _primary_key(instance: Any) -> Any:
    """The instance's primary key as far as it is known without SQL: its
    identity, or the key columns' values already in memory (a new row's, once
    its INSERT ran). ``None`` when it is not known, or the object is not mapped."""
    state = inspect_sqlalchemy(instance, raiseerr=False)
    if not isinstance(state, InstanceState):
        return None
    key = state.identity
    if key is None:
        mapper = state.mapper
        values = [state.dict.get(mapper.get_property_by_column(c).key) for c in mapper.primary_key]
        if any(value is None for value in values):
            return None
        key = tuple(values)
    if len(key) == 1:
        value = key[0]
        return value if isinstance(value, int | str) else str(value)
    return [str(value) for value in key]
