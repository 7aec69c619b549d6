"""Django's dispatcher, built on blinker.

``Signal`` is a ``blinker.Signal`` (so blinker's tools keep working on it) that
behaves the way ``django.dispatch.Signal`` does, because that is the behaviour our
users' receivers were written against:

* receivers are called as ``receiver(signal=..., sender=..., **named)``, all by
  keyword, and ``send(sender=Model)`` works (blinker makes ``sender`` positional);
* receivers run in the order they were connected (blinker keeps them in sets);
* ``connect`` takes ``dispatch_uid``, refuses receivers that cannot take
  ``**kwargs``, and ``disconnect`` returns whether something was removed;
* ``send_robust`` logs and returns a failing receiver's exception.

Where the two disagree, Django wins: ``disconnect(receiver)`` removes only the
connection made with ``sender=None``, never the receiver's connections to
particular senders, and blinker's ``ANY`` is accepted as another spelling of
``None``. ``connected_to`` is adjusted accordingly, so that it still undoes
exactly what it did.

Nothing in this module knows about SQLAlchemy; model signals build on it in
``sa_signals.signals``.
"""

from __future__ import annotations

import enum
import inspect
import itertools
import logging
import sys
import threading
import weakref
from collections.abc import Callable, Generator, Hashable, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

import blinker

from sa_signals import _muting
from sa_signals._await import run_to_completion

__all__ = ["Signal", "receiver"]

logger = logging.getLogger("sa_signals")

Receiver = Callable[..., Any]
F = TypeVar("F", bound=Receiver)

# Senders seen by send() are remembered with the receivers that match them; a
# program that sends with ever new senders (instances, say) must not grow the
# cache without bound, so past this size it starts afresh.
_CACHE_LIMIT = 1024


class _Delivery(enum.Enum):
    """How a receiver is reached, decided once at connect time, never per send."""

    CALL = "call"  # a plain function
    AWAIT = "await"  # an ``async def``: awaited by asend, run to completion by send
    DEFER = "defer"  # connected with on_commit=True: handed to the transaction


# Module-level names make the comparisons in the send loops plain global lookups.
_CALL, _AWAIT, _DEFER = _Delivery.CALL, _Delivery.AWAIT, _Delivery.DEFER

# What a send needs of a connection, as a plain tuple that unpacks fast:
# (the receiver or a weak reference to it, whether it is weak, how to deliver).
_Route = tuple[Any, bool, _Delivery]


@dataclass(frozen=True, slots=True, eq=False)
class _Connection:
    """What one successful ``connect()`` call recorded.

    ``dispatch_uid`` and ``sender_text`` are there for the listing of receivers
    (``sa_signals.listing``) alone; no send reads them.
    """

    key: tuple[Hashable, Hashable]  # (dispatch_uid or receiver identity, sender identity)
    sender_id: int | None  # None: any sender
    route: _Route
    sender_ref: weakref.ref[Any] | None  # lets a collected sender take its receivers along
    dispatch_uid: Hashable | None  # as given to connect()
    # str() of a sender that cannot be weakly referenced (a string, a number),
    # taken at connect: afterwards only its id() is left to name it by.
    sender_text: str | None

    def receiver(self) -> Receiver | None:
        """The receiver, or ``None`` once a weakly held one has been collected."""
        target, weak, _ = self.route
        return target() if weak else target  # type: ignore[no-any-return]

    def is_alive(self) -> bool:
        sender_gone = self.sender_ref is not None and self.sender_ref() is None
        return not sender_gone and self.receiver() is not None


# Every Signal made, in the order they were made: the registry that the listing
# of receivers reads (sa_signals.listing), so that it never has to search the
# garbage collector's heap for signals. Held weakly: a signal that nobody refers
# to any more (a test's, say) leaves it by itself. The lock is for a signal made
# in one thread (by an import) while another lists: iterating a
# WeakValueDictionary is Python code, which a thread switch can interrupt.
_signals: weakref.WeakValueDictionary[int, Signal] = weakref.WeakValueDictionary()
_signals_made = itertools.count()
_signals_lock = threading.Lock()


def registered_signals() -> list[Signal]:
    """Every live :class:`Signal`, in the order they were made."""
    with _signals_lock:
        return [signal for _, signal in sorted(_signals.items(), key=lambda item: item[0])]


def _module_making(signal: Signal) -> str | None:
    """The module whose code called ``Signal(...)`` for ``signal``, found past the
    constructors of its own classes (a ``ModelSignal``'s runs ``Signal``'s), as
    ``typing.TypeVar`` finds its ``__module__``. It tells the listing of receivers
    which of the modules that bind the signal defines it, and which only import it.
    """
    constructors = {
        getattr(vars(klass).get("__init__"), "__code__", None) for klass in type(signal).__mro__
    }
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code in constructors:
        frame = frame.f_back
    name: str | None = None if frame is None else frame.f_globals.get("__name__")
    return name


def _text_of(sender: Any) -> str:
    """A sender's name for the listing, taken at connect: never a reason for
    connect() to fail, whatever the sender's ``__str__`` does."""
    try:
        return str(sender)
    except Exception:
        return f"<{type(sender).__qualname__} object>"


def _identity(target: Any) -> Hashable:
    # A bound method is a new object at every attribute access; two of them are
    # the same receiver when instance and function are the same, as in Django.
    if inspect.ismethod(target):
        return (id(target.__self__), id(target.__func__))
    return id(target)


def _sender_id(sender: Any) -> int | None:
    return None if sender is None else id(sender)


def describe(receiver: Any) -> str:
    """A receiver's name for messages: its qualified name, as Django logs it."""
    return getattr(receiver, "__qualname__", None) or repr(receiver)


def _is_async(receiver: Receiver) -> bool:
    call = receiver if inspect.isroutine(receiver) else getattr(receiver, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(receiver) or inspect.iscoroutinefunction(call)


def check_receiver(receiver: Any) -> None:
    """Refuse at connect time what would otherwise fail at the first send."""
    if not callable(receiver):
        raise TypeError(f"Signal receivers must be callable; {receiver!r} is not.")
    try:
        parameters = inspect.signature(receiver).parameters.values()
    except (TypeError, ValueError):  # no introspectable signature (some builtins)
        return
    if not any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        raise ValueError(
            f"Signal receiver {describe(receiver)} must accept keyword arguments (**kwargs)."
        )


def _refuse_signal_argument(signal: Signal) -> None:
    # Django raises too, when the first receiver is called with two ``signal``s.
    raise TypeError(
        f"{signal!r}.send() got a keyword argument 'signal': receivers get the signal "
        "as 'signal' already; name the argument otherwise."
    )


def _log_robust_failure(receiver: Receiver, error: Exception) -> None:
    logger.error(
        "Error calling %s in Signal.send_robust() (%s)",
        describe(receiver),
        error,
        exc_info=error,
    )


class Signal(blinker.Signal):
    """A signal with Django's dispatch semantics; see the module docstring.

    :param doc: the signal's docstring.
    :param use_caching: accepted for Django compatibility. Receivers are always
        looked up per sender from a cache that connect and disconnect invalidate.

    Thread safety: connect and disconnect replace an immutable tuple of
    connections under a lock; send reads whatever tuple is current without
    locking, so a send sees every receiver connected before it started and none
    disconnected before it started.
    """

    # Whether connect(on_commit=True) makes sense: only for signals whose sends
    # carry the session whose commit they wait for (see sa_signals.signals).
    can_defer: bool = False

    def __init__(self, doc: str | None = None, *, use_caching: bool = False) -> None:
        super().__init__(doc)
        self.use_caching = use_caching
        self._lock = threading.Lock()
        self._connections: tuple[_Connection, ...] = ()
        self._routes_by_sender: dict[int, tuple[_Route, ...]] = {}
        # Set from weak reference callbacks, which may run inside a locked section
        # (the garbage collector runs anywhere) and so must never take the lock;
        # the next connect, disconnect or cache fill prunes.
        self._has_dead = False
        self._made_in = _module_making(self)
        with _signals_lock:
            _signals[next(_signals_made)] = self

    # -- connecting ---------------------------------------------------------

    def connect(
        self,
        receiver: F,
        sender: Any = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
        *,
        on_commit: bool = False,
    ) -> F:
        """Connect ``receiver`` to signals sent by ``sender`` (``None``: any sender).

        A receiver connected again for the same sender, or another receiver with
        the same ``dispatch_uid``, is kept once. With ``weak=True`` the signal
        holds the receiver (or a bound method's instance) by weak reference, so it
        disappears when garbage-collected: a lambda or a closure connected weakly
        is gone as soon as nothing else refers to it, exactly as in Django.

        ``on_commit=True`` defers the call until the session's transaction commits;
        only signals that carry a session (model signals) support it.

        :raises TypeError: ``receiver`` is not callable, cannot be referenced
            weakly, or ``on_commit`` is asked of a signal without a session.
        :raises ValueError: ``receiver`` cannot take keyword arguments.
        :returns: ``receiver``, unchanged.
        """
        check_receiver(receiver)
        if on_commit and not self.can_defer:
            raise TypeError(
                f"Cannot connect {describe(receiver)} with on_commit=True: {self!r} is not "
                "sent with a session, so there is no commit to wait for."
            )
        if sender is blinker.ANY:
            sender = None
        sender_id = _sender_id(sender)
        key = (dispatch_uid if dispatch_uid else _identity(receiver), sender_id)
        if on_commit:
            delivery = _DEFER
        elif _is_async(receiver):
            delivery = _AWAIT
        else:
            delivery = _CALL
        target = self._weak_reference(receiver) if weak else receiver
        sender_ref = self._sender_reference(sender)
        connection = _Connection(
            key=key,
            sender_id=sender_id,
            route=(target, weak, delivery),
            sender_ref=sender_ref,
            dispatch_uid=dispatch_uid,
            sender_text=_text_of(sender) if sender is not None and sender_ref is None else None,
        )
        with self._lock:
            # Prune first: a new function may reuse the id() of a collected one,
            # and must not be mistaken for it by the duplicate check.
            self._drop_dead_connections()
            if any(existing.key == key for existing in self._connections):
                return receiver
            self._replace_connections((*self._connections, connection))

        if "receiver_connected" in self.__dict__ and self.receiver_connected.receivers:
            try:
                self.receiver_connected.send(self, receiver=receiver, sender=sender, weak=weak)
            except TypeError:
                self.disconnect(receiver, sender, dispatch_uid)
                raise
        return receiver

    def disconnect(  # type: ignore[override]
        self,
        receiver: Receiver | None = None,
        sender: Any = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Undo the ``connect`` made with the same receiver (or ``dispatch_uid``)
        and the same sender, and say whether there was one.

        As in Django, ``disconnect(receiver)`` removes the connection made with
        ``sender=None`` only; a connection to a particular sender needs that sender.
        """
        if sender is blinker.ANY:
            sender = None
        key = (dispatch_uid if dispatch_uid else _identity(receiver), _sender_id(sender))
        with self._lock:
            self._drop_dead_connections()
            remaining = tuple(c for c in self._connections if c.key != key)
            disconnected = len(remaining) != len(self._connections)
            if disconnected:
                self._replace_connections(remaining)

        if "receiver_disconnected" in self.__dict__ and self.receiver_disconnected.receivers:
            self.receiver_disconnected.send(self, receiver=receiver, sender=sender)
        return disconnected

    @contextmanager
    def connected_to(
        self, receiver: Receiver, sender: Any = blinker.ANY
    ) -> Generator[None, None, None]:
        """blinker's context manager, undoing exactly the connection it made."""
        self.connect(receiver, sender=sender, weak=False)
        try:
            yield None
        finally:
            self.disconnect(receiver, sender=sender)

    # -- looking receivers up -----------------------------------------------

    def has_listeners(self, sender: Any = None) -> bool:
        """Whether a send by ``sender`` would reach at least one live receiver."""
        return any(True for _ in self.receivers_for(sender))

    def has_receivers_for(self, sender: Any) -> bool:
        """blinker's name for :meth:`has_listeners`."""
        return self.has_listeners(sender)

    def receivers_for(self, sender: Any) -> Generator[Receiver, None, None]:
        """Yield the live receivers a send by ``sender`` would call, in order."""
        if sender is blinker.ANY:
            sender = None
        routes = self._routes_for(sender)
        if _muting.in_use:
            routes = _muting.without_muted(self, sender, routes)
        for target, weak, _ in routes:
            receiver = target() if weak else target
            if receiver is not None:
                yield receiver

    def is_listened_for(self, sender: Any) -> bool:
        """A cheap, cached form of :meth:`has_listeners` for hot paths deciding
        whether to prepare a send at all. It may still count a weakly held
        receiver that was just collected, never miss a live one."""
        return bool(self._connections) and bool(self._routes_for(sender))

    def _plain_routes_for(self, sender: Any) -> tuple[_Route, ...] | None:
        """The routes of a send by ``sender`` if each one is a plain call, for the
        flush, which calls the receivers itself once per object with the keyword
        arguments written out: ``send(**named)`` makes CPython build a dict and
        unpack it again into each receiver's, which costs twice what all the rest
        of a send does. ``None`` where ``send()`` must do it: a receiver is
        deferred or async, or something is muted. The caller resolves weak routes
        and skips dead ones, and passes ``signal`` and ``sender`` last, as
        ``send()`` does. Private to the package: a route is not API."""
        if not self._connections:
            return ()
        routes = self._routes_by_sender.get(id(sender))
        if routes is None:
            routes = self._remember_routes_for(sender)
        if not routes:
            return routes
        if self.is_muted or (_muting.in_use and _muting.any_muted()):
            return None
        for _, _, delivery in routes:
            if delivery is not _CALL:
                return None
        return routes

    def _routes_for(self, sender: Any) -> tuple[_Route, ...]:
        routes = self._routes_by_sender.get(id(sender))
        if routes is None:
            routes = self._remember_routes_for(sender)
        return routes

    def _remember_routes_for(self, sender: Any) -> tuple[_Route, ...]:
        sender_id = id(sender)
        with self._lock:
            self._drop_dead_connections()
            routes = tuple(
                c.route
                for c in self._connections
                if c.sender_id is None or c.sender_id == sender_id
            )
            if len(self._routes_by_sender) >= _CACHE_LIMIT:
                self._routes_by_sender = {}
            self._routes_by_sender[sender_id] = routes
        return routes

    # -- sending ------------------------------------------------------------
    # The four send methods share one shape; they are written out in full
    # because they are the hot path, where a helper call per receiver shows.
    # ``named`` is this call's own dict, so it doubles as the receivers' kwargs.

    def send(self, sender: Any = None, **named: Any) -> list[tuple[Receiver, Any]]:
        """Call every live receiver connected for ``sender`` (or for any sender),
        in connection order, as ``receiver(signal=self, sender=sender, **named)``.

        An ``async def`` receiver is run to completion (on the session's event loop
        when sent from inside an ``AsyncSession``). The first exception propagates
        and stops the send.

        :returns: ``[(receiver, response), ...]``; deferred receivers are not in it.
        """
        if not self._connections:
            return []
        routes = self._routes_by_sender.get(id(sender))
        if routes is None:
            routes = self._remember_routes_for(sender)
        if not routes:  # nobody listens to this sender: the most common send of all
            return []
        if self.is_muted:
            return []
        if _muting.in_use:
            routes = _muting.without_muted(self, sender, routes)
            if not routes:
                return []
        if "signal" in named:
            _refuse_signal_argument(self)
        named["signal"] = self
        named["sender"] = sender
        responses = []
        for target, weak, delivery in routes:
            receiver = target() if weak else target
            if receiver is None:
                continue
            if delivery is _CALL:
                responses.append((receiver, receiver(**named)))
            elif delivery is _AWAIT:
                responses.append((receiver, run_to_completion(receiver(**named))))
            else:
                self._defer(receiver, named)
        return responses

    def send_robust(self, sender: Any = None, **named: Any) -> list[tuple[Receiver, Any]]:
        """Like :meth:`send`, but an ``Exception`` raised by a receiver is logged on
        logger ``sa_signals`` and returned as that receiver's response; the next
        receivers are still called."""
        if not self._connections:
            return []
        routes = self._routes_by_sender.get(id(sender))
        if routes is None:
            routes = self._remember_routes_for(sender)
        if not routes:  # nobody listens to this sender: the most common send of all
            return []
        if self.is_muted:
            return []
        if _muting.in_use:
            routes = _muting.without_muted(self, sender, routes)
            if not routes:
                return []
        if "signal" in named:
            _refuse_signal_argument(self)
        named["signal"] = self
        named["sender"] = sender
        responses = []
        for target, weak, delivery in routes:
            receiver = target() if weak else target
            if receiver is None:
                continue
            if delivery is _DEFER:
                self._defer(receiver, named)
                continue
            try:
                response = receiver(**named)
                if delivery is _AWAIT:
                    response = run_to_completion(response)
            except Exception as error:
                _log_robust_failure(receiver, error)
                response = error
            responses.append((receiver, response))
        return responses

    async def asend(self, sender: Any = None, **named: Any) -> list[tuple[Receiver, Any]]:
        """Like :meth:`send`, from async code: ``async def`` receivers are awaited,
        the others called, one after the other in connection order."""
        if not self._connections:
            return []
        routes = self._routes_by_sender.get(id(sender))
        if routes is None:
            routes = self._remember_routes_for(sender)
        if not routes:  # nobody listens to this sender: the most common send of all
            return []
        if self.is_muted:
            return []
        if _muting.in_use:
            routes = _muting.without_muted(self, sender, routes)
            if not routes:
                return []
        if "signal" in named:
            _refuse_signal_argument(self)
        named["signal"] = self
        named["sender"] = sender
        responses = []
        for target, weak, delivery in routes:
            receiver = target() if weak else target
            if receiver is None:
                continue
            if delivery is _DEFER:
                self._defer(receiver, named)
                continue
            response = receiver(**named)
            if delivery is _AWAIT:
                response = await response
            responses.append((receiver, response))
        return responses

    async def asend_robust(self, sender: Any = None, **named: Any) -> list[tuple[Receiver, Any]]:
        """:meth:`asend` with the error handling of :meth:`send_robust`."""
        if not self._connections:
            return []
        routes = self._routes_by_sender.get(id(sender))
        if routes is None:
            routes = self._remember_routes_for(sender)
        if not routes:  # nobody listens to this sender: the most common send of all
            return []
        if self.is_muted:
            return []
        if _muting.in_use:
            routes = _muting.without_muted(self, sender, routes)
            if not routes:
                return []
        if "signal" in named:
            _refuse_signal_argument(self)
        named["signal"] = self
        named["sender"] = sender
        responses = []
        for target, weak, delivery in routes:
            receiver = target() if weak else target
            if receiver is None:
                continue
            if delivery is _DEFER:
                self._defer(receiver, named)
                continue
            try:
                response = receiver(**named)
                if delivery is _AWAIT:
                    response = await response
            except Exception as error:
                _log_robust_failure(receiver, error)
                response = error
            responses.append((receiver, response))
        return responses

    async def send_async(self, sender: Any = None, /, **named: Any) -> list[tuple[Receiver, Any]]:
        """blinker's name for :meth:`asend`."""
        named.pop("_sync_wrapper", None)
        return await self.asend(sender, **named)

    def _defer(
        self,
        receiver: Receiver,
        kwargs: dict[str, Any],
        around: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        """Hand a receiver connected with ``on_commit=True`` over to the transaction,
        with the keyword arguments (``signal`` and ``sender`` included) it is owed,
        to be called inside ``around()`` when given (a tracing span)."""
        raise NotImplementedError  # unreachable: connect refuses on_commit unless can_defer

    # -- bookkeeping ----------------------------------------------------------

    def _weak_reference(self, receiver: Receiver) -> weakref.ref[Any]:
        try:
            if inspect.ismethod(receiver):
                return weakref.WeakMethod(receiver, self._note_death)
            return weakref.ref(receiver, self._note_death)
        except TypeError as error:
            raise TypeError(
                f"Signal receiver {describe(receiver)} cannot be held by weak reference; "
                "connect it with weak=False."
            ) from error

    def _sender_reference(self, sender: Any) -> weakref.ref[Any] | None:
        if sender is None:
            return None
        try:
            return weakref.ref(sender, self._note_death)
        except TypeError:  # strings, numbers: identified by id() alone, as in Django
            return None

    def _note_death(self, _reference: weakref.ref[Any]) -> None:
        # A collected sender's id() may be reused by a new object, which must not
        # inherit its receivers: forget every cached lookup. Plain assignments,
        # no lock (see __init__); the next lookup prunes under the lock.
        self._has_dead = True
        self._routes_by_sender = {}

    def _drop_dead_connections(self) -> None:
        """Forget collected receivers and senders. Call with the lock held."""
        if not self._has_dead:
            return
        self._has_dead = False
        alive = tuple(c for c in self._connections if c.is_alive())
        if len(alive) != len(self._connections):
            self._replace_connections(alive)

    def _replace_connections(self, connections: tuple[_Connection, ...]) -> None:
        """Install a new tuple of connections. Call with the lock held."""
        self._connections = connections
        self._routes_by_sender = {}
        self.receivers = {c.key: c.route[0] for c in connections}

    def _clear_state(self) -> None:
        """Disconnect everything (blinker's helper for tests)."""
        with self._lock:
            self._replace_connections(())
        super()._clear_state()


def receiver(
    signal: Signal | Sequence[Signal],
    *,
    sender: Any = None,
    weak: bool = True,
    dispatch_uid: Hashable | None = None,
    on_commit: bool = False,
) -> Callable[[F], F]:
    """Connect the decorated function to ``signal`` (or to each of a list of
    signals), as :meth:`Signal.connect` does, and return it unchanged::

        @receiver(post_save, sender=Order)
        def notify(sender, instance, created, **kwargs): ...

    The keywords are ``connect()``'s, spelled out so that a type checker catches
    a misspelt one before the code runs; Django's ``**kwargs`` leaves
    ``sendr=Order`` to the ``TypeError`` its ``connect()`` raises at import.
    """

    def connect(function: F) -> F:
        signals = signal if isinstance(signal, list | tuple) else (signal,)
        for each in signals:
            each.connect(
                function, sender=sender, weak=weak, dispatch_uid=dispatch_uid, on_commit=on_commit
            )
        return function

    return connect
