"""Which receivers run: every signal's connected receivers, listed.

Signals are decoupled on purpose, and so nothing in the code that saves an
``Order`` says what runs when it is saved. :func:`list_receivers` answers from
the signals' own registries: each :class:`~sa_signals.Signal` enters itself in
one when it is made, and keeps its connections in order. Nothing searches the
garbage collector's heap (django-extensions' ``list_signals`` does, and breaks
with Django's internals). What is listed is what a send would reach: live
receivers only, in the order a send calls them. ``python -m sa_signals
receivers`` prints the same list.

Listing costs nothing until it is asked for: ``connect()`` records only the
``dispatch_uid`` it was given and, for a sender that cannot be referenced weakly
(a string), its ``str()``; ``send()`` is untouched. Everything else is worked
out here, when asked: a signal's name from the modules that bind it, a
receiver's place from its code object.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import blinker

from sa_signals.dispatch import (
    _AWAIT,
    _DEFER,
    Receiver,
    Signal,
    _Connection,
    describe,
    registered_signals,
)

__all__ = ["ConnectedReceiver", "list_receivers"]

Delivery = Literal["sync", "async", "on_commit", "background"]


@dataclass(frozen=True, slots=True)
class ConnectedReceiver:
    """One receiver connected to one signal, as :func:`list_receivers` lists it.

    Every field is plain data (``dispatch_uid`` is whatever was given), so that a
    row prints, compares and turns into JSON as it is, and so that a list of rows
    kept by a test keeps no weakly connected receiver alive.
    """

    #: Where the signal can be imported from: ``"sa_signals.post_save"``,
    #: ``"shop.signals.order_shipped"``.
    signal: str
    #: The sender it was connected for: a class as its dotted path
    #: (``"shop.models.Order"``), anything else as its ``str()`` (an association
    #: table's name, a string sender itself); ``None`` for any sender.
    sender: str | None
    #: The receiver's qualified name, as Django names it in its logs
    #: (``"audit"``, ``"Notifier.on_save"``); for a background receiver, the
    #: function the worker runs.
    receiver: str
    #: The module the receiver was written in, when it says.
    module: str | None
    #: The file of the receiver's code; ``None`` when it has no Python code (a
    #: builtin).
    file: str | None
    #: The first line of the receiver's code in that file: its first
    #: decorator's, for a decorated function.
    line: int | None
    #: Whether the signal holds the receiver by weak reference (``weak=True``).
    weak: bool
    #: The ``dispatch_uid`` given to ``connect()``, or ``None``.
    dispatch_uid: Hashable | None
    #: How a send reaches it: ``"sync"`` (called during the send), ``"async"``
    #: (an ``async def``, awaited), ``"on_commit"`` (``on_commit=True``: called,
    #: or awaited, after the commit), ``"background"`` (``task_receiver``: run by
    #: a Celery worker after the commit).
    delivery: Delivery
    #: The Celery task's name, for a background receiver; ``None`` otherwise.
    task: str | None


@dataclass(frozen=True, slots=True)
class BackgroundTask:
    """What a connected callable that hands each send over to a background task
    says of itself, as its attribute ``background_task`` (on a bound method, on
    its instance): the receiver the task runs, and the task's name.

    ``sa_signals.celery.task_receiver`` connects an outbox writer, which the
    listing shows as the receiver it writes for. The writer has to say so: this
    module must not import ``sa_signals.celery`` to find out, as dependencies run
    from ``celery`` to the dispatcher, never back.
    """

    receiver: Receiver
    name: str


def list_receivers(signal: Signal | None = None, sender: Any = None) -> list[ConnectedReceiver]:
    """The receivers connected to ``signal`` (to every signal when ``None``) that a
    send by ``sender`` would reach: those connected for ``sender`` itself and those
    connected for any sender (``sender=None``, the default, lists every sender's).

    Signals come in the order they were made (``sa_signals``' own first), each
    one's receivers in connection order, which is the order a send calls them.
    A weakly connected receiver that was garbage-collected is not listed, nor
    one connected for a sender that was.

    :raises TypeError: ``signal`` is not a :class:`~sa_signals.Signal`.
    """
    if signal is not None and not isinstance(signal, Signal):
        raise TypeError(
            f"list_receivers() lists the receivers of a sa_signals Signal (such as "
            f"sa_signals.post_save), not of {signal!r}."
        )
    if sender is blinker.ANY:
        sender = None
    signals = [signal] if signal is not None else registered_signals()
    found: list[tuple[Signal, _Connection, Receiver, Any]] = []
    for each in signals:
        # An immutable tuple, replaced whole by connect and disconnect: read as is.
        for connection in each._connections:
            if sender is not None and connection.sender_id not in (None, id(sender)):
                continue
            # Strong references, held while this row is described: the garbage
            # collector may take a weakly held receiver or sender at any moment.
            receiver = connection.receiver()
            connected_for = connection.sender_ref() if connection.sender_ref else None
            if receiver is None or (connection.sender_ref and connected_for is None):
                continue
            found.append((each, connection, receiver, connected_for))
    names = signal_names(each for each, *_ in found)
    return [
        _row(names[each], connection, receiver, connected_for)
        for each, connection, receiver, connected_for in found
    ]


def signal_names(signals: Iterable[Signal]) -> dict[Signal, str]:
    """The name of each signal: where it can be imported from.

    A signal knows no name of its own (Django's do not either); the modules that
    bind it at their top level do, and ``sys.modules`` is their registry. Of the
    names they give it, the one shown is

    * public, by Python's convention: no part of it starts with an underscore, and
      it is in its module's ``__all__``, if the module has one;
    * in the module that made the signal, or in a package above it (a re-export),
      rather than in a module that merely imports it;
    * and of those the shortest:

    ``sa_signals.post_save``, not ``sa_signals.signals.post_save``, nor the
    ``post_save`` that ``shop.receivers`` imports. A signal that no module binds
    (one made inside a function) is named by the module that made it.
    """
    wanted = {id(signal): signal for signal in signals}
    places: dict[int, list[_Place]] = {key: [] for key in wanted}
    # Copies: another thread may import a module, or set a global, meanwhile.
    for module_name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        exported = namespace.get("__all__")
        for attribute, value in list(namespace.items()):
            if value is None or wanted.get(id(value)) is not value:
                continue
            public = not any(part.startswith("_") for part in (*module_name.split("."), attribute))
            if isinstance(exported, list | tuple) and attribute not in exported:
                public = False
            places[id(value)].append(_Place(module_name, attribute, public))
    return {signal: _best_name(signal, places[key]) for key, signal in wanted.items()}


@dataclass(frozen=True, slots=True)
class _Place:
    """A module-level name of a signal."""

    module: str
    attribute: str
    public: bool


def _best_name(signal: Signal, places: list[_Place]) -> str:
    made_in = signal._made_in
    if not places:
        return f"<unnamed signal of {made_in or 'unknown module'} at {id(signal):#x}>"

    def preference(place: _Place) -> tuple[bool, bool, int, str, str]:
        module = place.module
        at_home = made_in is not None and (made_in == module or made_in.startswith(module + "."))
        return (not place.public, not at_home, module.count("."), module, place.attribute)

    best = min(places, key=preference)
    return f"{best.module}.{best.attribute}"


def _row(
    signal_name: str, connection: _Connection, receiver: Receiver, connected_for: Any
) -> ConnectedReceiver:
    _, weak, delivery = connection.route
    runs: Delivery = (
        "on_commit" if delivery is _DEFER else "async" if delivery is _AWAIT else "sync"
    )
    task = None
    holder = receiver.__self__ if inspect.ismethod(receiver) else receiver
    background = getattr(holder, "background_task", None)
    if isinstance(background, BackgroundTask):
        receiver, runs, task = background.receiver, "background", background.name
    if connection.sender_id is None:
        sender = None
    elif connection.sender_ref is None:
        sender = connection.sender_text
    else:
        sender = _dotted_name(connected_for)
    file, line = _source_of(receiver)
    module = getattr(receiver, "__module__", None)
    return ConnectedReceiver(
        signal=signal_name,
        sender=sender,
        receiver=describe(receiver),
        module=module if isinstance(module, str) else None,
        file=file,
        line=line,
        weak=weak,
        dispatch_uid=connection.dispatch_uid,
        delivery=runs,
        task=task,
    )


def _dotted_name(sender: Any) -> str:
    """A class (or function) as ``module.qualname``, anything else as its ``str()``."""
    if not (isinstance(sender, type) or inspect.isroutine(sender)):
        return str(sender)
    qualname: str = sender.__qualname__
    module = getattr(sender, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


def _source_of(receiver: Receiver) -> tuple[str | None, int | None]:
    """Where the receiver's code is: past decorators that say what they wrap
    (``functools.wraps``), a partial's function, a bound method's function, or a
    callable object's ``__call__``."""
    try:
        target: Any = inspect.unwrap(receiver)
    except ValueError:  # a cycle of __wrapped__
        target = receiver
    while isinstance(target, functools.partial):
        target = target.func
    target = getattr(target, "__func__", target)
    code = getattr(target, "__code__", None)
    if code is None:
        call = getattr(type(target), "__call__", None)  # noqa: B004  (the method, not callable())
        code = getattr(call, "__code__", None)
    if code is None:
        return None, None
    return code.co_filename, code.co_firstlineno
