"""pre_init and post_init.

``pre_init`` is SQLAlchemy's instance ``init`` event, which fires before the
constructor body with the caller's own ``kwargs`` dict (changing it changes the
construction, as in Django).

``post_init`` has no SQLAlchemy event after a constructor, so the class's
instrumented ``__init__`` is wrapped, and the signal sent once the outermost
constructor call returns (a subclass calling ``super().__init__()`` constructs
one instance, not two). On a load from the database it is the ``load`` event,
which fires once per instance created from a row, and for each new instance
``session.merge()`` makes; an identity-map hit or the refresh of an expired
instance is no new instance, and sends nothing.

Both are installed only for classes with receivers (every mapped class, once a
receiver listens to any sender): a class nobody listens to is constructed and
loaded exactly as without sa-signals.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Mapper, QueryContext, object_session

from sa_signals.internals import existing_mappers
from sa_signals.orm.hooks import MapperHooks
from sa_signals.signals import post_init, pre_init
from sa_signals.switches import signals_enabled

__all__: list[str] = []


def _send_pre_init(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    pre_init.send(type(target), args=args, kwargs=kwargs, session=None)


def _send_post_init_on_load(target: Any, context: QueryContext | None) -> None:
    # session.merge() makes the new instances it merges into without a
    # constructor or a query, and sends them as loaded with no context.
    session = context.session if context is not None else object_session(target)
    if session is not None and not signals_enabled(session):
        return
    post_init.send(type(target), instance=target, session=session)


MapperHooks({"init": _send_pre_init}, signals=[pre_init])
MapperHooks({"load": _send_post_init_on_load}, signals=[post_init], restore_load_context=True)


class _Constructors:
    """Wraps the constructors of the classes ``post_init`` receivers listen to.

    A mapper's instrumented ``__init__`` is wrapped; a class mapped again (after
    ``registry.dispose()`` or ``clear_mappers()``, which restore its plain
    constructor) gets a new mapper, whose constructor is wrapped in turn."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wrapped: weakref.WeakSet[Mapper[Any]] = weakref.WeakSet()
        self._classes: weakref.WeakSet[type] = weakref.WeakSet()  # senders listened to
        self._everywhere = False
        self._hooked = False
        post_init.receiver_connected.connect(self._receiver_connected, weak=False)

    def _receiver_connected(self, _signal: Any, *, sender: Any, **_: Any) -> None:
        with self._lock:
            if not self._hooked:  # mappers made later, before any of their instances
                event.listen(Mapper, "after_mapper_constructed", self._mapper_constructed)
                self._hooked = True
            if sender is not None:
                self._classes.add(sender)
            elif self._everywhere:
                return
            else:
                self._everywhere = True
        for mapper in [inspect(sender)] if sender is not None else existing_mappers():
            self.wrap(mapper)

    def _mapper_constructed(self, mapper: Mapper[Any], cls: type) -> None:
        if self._everywhere or cls in self._classes:
            self.wrap(mapper)

    def wrap(self, mapper: Mapper[Any]) -> None:
        cls = mapper.class_
        with self._lock:
            if mapper in self._wrapped:
                return
            self._wrapped.add(mapper)
            cls.__init__ = _sending_post_init(cls.__init__)


def _sending_post_init(instrumented_init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(instrumented_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        # SQLAlchemy gives an instance its state at the start of the outermost
        # constructor call; a nested one (super().__init__) finds it there.
        outermost = inspect(self, raiseerr=False) is None
        instrumented_init(self, *args, **kwargs)
        if outermost:
            post_init.send(type(self), instance=self, session=None)

    return __init__


_Constructors()
