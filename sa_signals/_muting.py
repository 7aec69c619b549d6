"""Muting receivers within one thread or asyncio task (``sa_signals.testing.mute``).

blinker's ``muted()`` flips a flag every thread sees, so a test muting a signal
silences it for every other test running at the same time. Here the rules live
in a ``ContextVar``: a thread, or an asyncio task (and the tasks it starts),
sees only its own.

A send must not pay for this when nothing is muted anywhere, so ``active``
counts the mute scopes open in all threads and tasks: while it is zero, a send
looks no further.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

__all__ = ["MuteRule", "active", "pop", "push", "without_muted"]


@dataclass(frozen=True)
class MuteRule:
    """What to silence; ``None`` matches anything."""

    signal: Any = None
    sender: Any = None
    receiver: Any = None

    def covers(self, signal: Any, sender: Any) -> bool:
        return (self.signal is None or self.signal is signal) and (
            self.sender is None or self.sender is sender
        )


_rules: ContextVar[tuple[MuteRule, ...]] = ContextVar("sa_signals_mute_rules", default=())
_lock = threading.Lock()
active = 0


def push(rule: MuteRule) -> Token[tuple[MuteRule, ...]]:
    global active
    with _lock:
        active += 1
    return _rules.set((*_rules.get(), rule))


def pop(token: Token[tuple[MuteRule, ...]]) -> None:
    global active
    _rules.reset(token)
    with _lock:
        active -= 1


def without_muted(signal: Any, sender: Any, routes: Sequence[Any]) -> tuple[Any, ...]:
    """The routes of a send that this context has not muted."""
    rules = [rule for rule in _rules.get() if rule.covers(signal, sender)]
    if not rules:
        return tuple(routes)
    if any(rule.receiver is None for rule in rules):
        return ()
    muted = [rule.receiver for rule in rules]
    kept = []
    for route in routes:
        target, weak, _ = route
        receiver = target() if weak else target
        if receiver is not None and not any(receiver == m for m in muted):
            kept.append(route)
    return tuple(kept)
