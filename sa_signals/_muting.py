"""Muting receivers within one thread or asyncio task (``sa_signals.testing.mute``).

blinker's ``muted()`` flips a flag every thread sees, so a test muting a signal
silences it for every other test running at the same time. Here the rules live
in a ``ContextVar``: a thread, or an asyncio task (and the tasks it starts),
sees only its own.

A send must not pay for this where nothing is ever muted (production), so
``in_use`` stays ``False`` until the first mute in the process; until then a send
looks no further. It never goes back: a task or thread started inside a mute
block keeps a copy of its context, and with it the mute, after the block that
started it has ended.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__: list[str] = []


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
in_use = False


def push(rule: MuteRule) -> None:
    """Mute what ``rule`` covers in the current context."""
    global in_use
    in_use = True
    _rules.set((*_rules.get(), rule))


def pop(rule: MuteRule) -> None:
    """Undo the last ``push(rule)`` of the current context. By identity, not with
    a ``Token``: a block may end in another context than the one it began in (a
    pytest fixture set up outside the task running an async test)."""
    rules = _rules.get()
    for position in range(len(rules) - 1, -1, -1):
        if rules[position] is rule:
            _rules.set(rules[:position] + rules[position + 1 :])
            return


def any_muted() -> bool:
    """Whether this context mutes anything now (ask ``in_use`` first: it is cheaper)."""
    return bool(_rules.get())


def without_muted(signal: Any, sender: Any, routes: tuple[Any, ...]) -> tuple[Any, ...]:
    """The routes of a send that this context has not muted."""
    rules = [rule for rule in _rules.get() if rule.covers(signal, sender)]
    if not rules:
        return routes
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
