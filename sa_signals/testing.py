"""Helpers for testing code that reacts to signals.

* ``capture(signal, sender=None)`` records what a signal sends.
* ``mute(signal=None, sender=None, receiver=None)`` silences receivers for the
  current thread or asyncio task only, unlike blinker's ``muted()``, which
  silences a signal for everyone (and unlike factory_boy's ``mute_signals``,
  which forgets what an enclosing block muted).
* ``capture_on_commit_callbacks(session, execute=False)`` is Django's
  ``TestCase.captureOnCommitCallbacks``: test fixtures keep the session inside an
  outer transaction that never commits, so on-commit work never runs by itself.

The pytest plugin (``sa_signals_pytest``, loaded by pytest by itself) offers them as fixtures.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sa_signals import _muting
from sa_signals.dispatch import Signal
from sa_signals.switches import AnySession
from sa_signals.transaction import capturing

__all__ = ["Muting", "capture", "capture_on_commit_callbacks", "mute"]

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def capture(signal: Signal, sender: Any = None) -> Iterator[list[dict[str, Any]]]:
    """Record every send of ``signal`` (by ``sender``, or by anyone) within the
    block, as the keyword arguments receivers got, in order. Real receivers still
    run; the recording is one more receiver, connected last::

        with capture(post_save, sender=Order) as calls:
            session.commit()
        assert calls[0]["created"]
    """
    calls: list[dict[str, Any]] = []

    def record(**kwargs: Any) -> None:
        calls.append(kwargs)

    signal.connect(record, sender=sender, weak=False)
    try:
        yield calls
    finally:
        signal.disconnect(record, sender=sender)


class Muting:
    """Silences the receivers matching a rule while entered; a context manager
    and a decorator (of functions and coroutine functions alike)."""

    def __init__(self, rule: _muting.MuteRule) -> None:
        self.rule = rule

    def __enter__(self) -> Muting:
        _muting.push(self.rule)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _muting.pop(self.rule)

    def __call__(self, function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def muted_coroutine(*args: Any, **kwargs: Any) -> Any:
                with Muting(self.rule):
                    return await function(*args, **kwargs)

            return muted_coroutine  # type: ignore[return-value]

        @functools.wraps(function)
        def muted(*args: Any, **kwargs: Any) -> Any:
            with Muting(self.rule):
                return function(*args, **kwargs)

        return muted  # type: ignore[return-value]


def mute(signal: Signal | None = None, sender: Any = None, receiver: Any = None) -> Muting:
    """Silence the receivers that match, in the current thread or asyncio task
    (and the tasks it starts) only; every argument left out matches anything::

        with mute(post_save, sender=Order, receiver=send_confirmation):
            session.commit()   # every other receiver still runs

    Blocks nest, and leaving one restores what the enclosing one muted; one
    ``Muting`` may be entered by several threads or tasks at once. Works as a
    decorator too. Until something is muted, sends pay nothing for it.
    """
    return Muting(_muting.MuteRule(signal, sender, receiver))


@contextmanager
def capture_on_commit_callbacks(
    session: AnySession, *, execute: bool = False
) -> Iterator[list[Callable[[], Any]]]:
    """Django's ``captureOnCommitCallbacks``, for a session.

    Yields a list that receives, when the block ends, the callbacks registered on
    ``session`` within it (``on_commit`` functions, and deferred receivers as
    ``functools.partial(receiver, **kwargs)``), except those a rolled-back
    SAVEPOINT dropped. With ``execute=True`` they run then, those registered by
    them too, each once: not again if the transaction later commits. This is how
    on-commit work is tested with a session joined to an outer transaction that
    the fixture rolls back (see ``sa_signals.transaction`` for what "the commit"
    means there)::

        with capture_on_commit_callbacks(session, execute=True) as callbacks:
            session.add(Order(reference="A-1"))
            session.commit()   # releases a SAVEPOINT; nothing runs yet
        assert len(callbacks) == 1   # and it ran
    """
    callbacks: list[Callable[[], Any]] = []
    with capturing(session) as captured:
        try:
            yield callbacks
        finally:
            handled = 0
            while handled < len(captured):  # running a callback may register more
                batch, handled = captured[handled:], len(captured)
                for callback in batch:
                    if callback.status == "dropped":
                        continue
                    callbacks.append(callback.func)
                    if execute and callback.status == "pending":
                        callback.run()
