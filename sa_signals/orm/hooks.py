"""Mapper-level listeners, installed only where a receiver can hear them.

A mapper event fires once per object of the flush, so even a listener that
returns at once costs a few percent of a flush. sa-signals therefore listens on a
mapper only once a receiver is connected for its class (or on every mapper, once
a receiver is connected for any sender): an application that connects nothing
pays nothing per object.

Listeners are added when a receiver connects, and removed only where listeners
on every mapper replace them; a listener that finds no receiver returns at once.
SQLAlchemy's ``event.listen()`` and ``event.remove()`` must not run while the
event is being dispatched, in another thread too: connect receivers at import
time, as in Django, before any session flushes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Mapper

from sa_signals.dispatch import Signal

__all__: list[str] = []


class MapperHooks:
    """A set of mapper event listeners (``{event name: listener}``) installed on a
    mapper the first time one of ``signals`` gets a receiver for its class."""

    def __init__(
        self,
        listeners: dict[str, Callable[..., Any]],
        signals: Iterable[Signal],
        **listen_kwargs: Any,
    ) -> None:
        self._listeners = listeners
        self._listen_kwargs = listen_kwargs
        self._lock = threading.Lock()
        self._on_mappers: weakref.WeakSet[Mapper[Any]] = weakref.WeakSet()
        self._on_every_mapper = False
        self._classes: weakref.WeakSet[type] = weakref.WeakSet()  # senders listened to
        self._hooked = False
        for signal in signals:
            signal.receiver_connected.connect(self._receiver_connected, weak=False)

    def _receiver_connected(self, _signal: Signal, *, sender: Any, **_: Any) -> None:
        if sender is not None:
            with self._lock:
                self._classes.add(sender)
                if not self._hooked:
                    # A class mapped again (registry.dispose(), clear_mappers())
                    # gets a new mapper: listen on it too.
                    event.listen(Mapper, "after_mapper_constructed", self._mapper_constructed)
                    self._hooked = True
        self.install(None if sender is None else inspect(sender))

    def _mapper_constructed(self, mapper: Mapper[Any], cls: type) -> None:
        if cls in self._classes:
            self.install(mapper)

    def install(self, mapper: Mapper[Any] | None) -> None:
        """Listen on ``mapper``, or on every mapper (present and future) for ``None``."""
        with self._lock:
            if self._on_every_mapper or mapper in self._on_mappers:
                return
            target: Any = Mapper if mapper is None else mapper
            for name, listener in self._listeners.items():
                event.listen(target, name, listener, **self._listen_kwargs)
            if mapper is None:
                # The listeners on single mappers would now run a second time
                # for each of their objects, and send pre_init twice.
                for single in list(self._on_mappers):
                    for name, listener in self._listeners.items():
                        event.remove(single, name, listener)
                self._on_mappers.clear()
                self._on_every_mapper = True
            else:
                self._on_mappers.add(mapper)
