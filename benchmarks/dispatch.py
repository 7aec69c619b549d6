"""Table 1: what one ``send()`` costs, in nanoseconds, against Django and blinker.

Four dispatchers, in this process, each with the same receivers (plain
functions, held weakly, the default of all four) and the same call,
``send(sender, instance=..., created=True)``:

* ``sa_signals.Signal``;
* ``django.dispatch.Signal``, which walks its receivers at every send;
* Django's ``ModelSignal(use_caching=True)``, which is what ``post_save`` really
  is: receivers looked up per sender once, then cached; the target compares
  with this one;
* ``blinker.Signal``, which sa-signals' ``Signal`` subclasses (receivers called
  as ``receiver(sender, **kwargs)``, no ``signal`` argument).

The cases are those that matter to a model signal: nobody listening, receivers
for the sender being sent or for another one, for any sender, and many
receivers spread over many senders, where only the sender's own should cost.

A fifth column is the floor no dispatcher can go under: a function with the
same signature that calls the matching receivers, known in advance, with the
same keyword arguments. Where the floor is most of a send (no receiver: the
call itself; ten receivers: their calls), every ratio is pulled towards 1, so
the table also gives ours / ModelSignal *above the floor*: what the two
dispatchers add to it, which is what a dispatcher can change.
"""

from __future__ import annotations

import functools
import gc
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import blinker

from benchmarks.context import Context
from benchmarks.harness import (
    Samples,
    Table,
    Target,
    format_ratio,
    gc_paused,
    interleave,
)

__all__ = ["run"]

TITLE = "Table 1: dispatch, ns per send()"

FLOOR, OURS, DJANGO, DJANGO_MODEL, BLINKER = (
    "floor",
    "sa_signals.Signal",
    "django Signal",
    "django ModelSignal(use_caching=True)",
    "blinker.Signal",
)
DISPATCHERS = (OURS, DJANGO, DJANGO_MODEL, BLINKER)
VARIANTS = (FLOOR, *DISPATCHERS)
TARGET = 0.6  # ours <= 0.6x Django's ModelSignal, in every row (issue 11)
ABOVE_FLOOR_TARGET = 0.35  # ours above the floor <= 0.35x ModelSignal above it (issue 17)


@dataclass(frozen=True)
class Case:
    label: str
    receivers: int
    connected_for: str  # "sender", "other" (another sender), "any", "spread" (one per sender)


CASES = (
    Case("0 receivers", 0, "sender"),
    Case("1 receiver, sender matches", 1, "sender"),
    Case("1 receiver, sender does not match", 1, "other"),
    Case("1 receiver for any sender", 1, "any"),
    Case("10 receivers, sender matches", 10, "sender"),
    Case("10 receivers, sender does not match", 10, "other"),
    Case("10 receivers on 10 senders (1 matches)", 10, "spread"),
)


def _make_receiver() -> Callable[..., None]:
    def received(sender: Any = None, **kwargs: Any) -> None:
        return None

    return received


def _new_signal(kind: str) -> Any:
    if kind == OURS:
        from sa_signals import Signal

        return Signal()
    if kind == DJANGO:
        from django.dispatch import Signal as DjangoSignal  # type: ignore[import-untyped]

        return DjangoSignal()
    if kind == DJANGO_MODEL:
        from django.db.models.signals import ModelSignal  # type: ignore[import-untyped]

        return ModelSignal(use_caching=True)
    return blinker.Signal()


class _Setup:
    """One case's signals, receivers and senders, identical for every dispatcher."""

    def __init__(self, case: Case) -> None:
        self.senders = [type(f"Sender{number}", (), {}) for number in range(10)]
        self.other = type("OtherSender", (), {})
        self.receivers = [_make_receiver() for _ in range(case.receivers)]  # kept alive here
        self.signals = {kind: _new_signal(kind) for kind in DISPATCHERS}
        self.signals[FLOOR] = _Floor(self._matching(case))
        sender = self.senders[0]
        for kind in DISPATCHERS:
            signal = self.signals[kind]
            for position, function in enumerate(self.receivers):
                connected_for = {
                    "sender": sender,
                    "other": self.other,
                    "any": None,
                    "spread": self.senders[position],
                }[case.connected_for]
                if connected_for is None and isinstance(signal, blinker.Signal):
                    signal.connect(function)  # blinker's (and ours') default: any sender
                else:
                    signal.connect(function, sender=connected_for)
        self.instance = object()

    def _matching(self, case: Case) -> list[Callable[..., None]]:
        """The receivers a send by ``senders[0]`` reaches."""
        if case.connected_for in ("sender", "any"):
            return list(self.receivers)
        if case.connected_for == "spread":
            return self.receivers[:1]
        return []

    def time_per_send(self, kind: str, loops: int) -> float:
        """Nanoseconds per send, over ``loops`` sends."""
        send = self.signals[kind].send
        sender, instance = self.senders[0], self.instance
        with gc_paused():
            start = time.perf_counter_ns()
            for _ in itertools.repeat(None, loops):
                send(sender, instance=instance, created=True)
            return (time.perf_counter_ns() - start) / loops


class _Floor:
    """The least a send can do: call the receivers it knows, with Django's
    arguments, and return their responses."""

    def __init__(self, receivers: list[Callable[..., None]]) -> None:
        self.receivers = receivers

    def send(self, sender: Any, **named: Any) -> list[tuple[Callable[..., None], Any]]:
        if not self.receivers:
            return []
        responses = []
        for receiver in self.receivers:
            responses.append((receiver, receiver(signal=self, sender=sender, **named)))
        return responses


def _loops_for(setup: _Setup, sample_seconds: float) -> int:
    """Enough sends for the slowest dispatcher's sample to last about ``sample_seconds``."""
    slowest = max(setup.time_per_send(kind, 2000) for kind in VARIANTS)
    return max(2000, int(sample_seconds * 1e9 / slowest))


def run(context: Context) -> tuple[list[Table], list[Target]]:
    from benchmarks.django_yardstick import configure

    options = context.options
    configure()
    table = Table(
        TITLE,
        [
            "case",
            *[f"{kind} (ns)" for kind in VARIANTS],
            "**ours / ModelSignal**",
            "ours / ModelSignal, above the floor",
            "ours / blinker",
        ],
    )
    targets = []
    for case in CASES:
        setup = _Setup(case)
        gc.collect()
        loops = _loops_for(setup, 0.002 if options.quick else 0.02)
        samples: Samples = interleave(
            VARIANTS,
            functools.partial(setup.time_per_send, loops=loops),
            rounds=options.rounds,
            warmup=options.warmup,
        )
        versus_django = samples.ratio(OURS, DJANGO_MODEL)
        above_floor = samples.ratio_of_differences((OURS, FLOOR), (DJANGO_MODEL, FLOOR))
        table.add(
            case.label,
            *[f"{samples.of(kind).median:.0f}" for kind in VARIANTS],
            format_ratio(versus_django),
            format_ratio(above_floor),
            format_ratio(samples.ratio(OURS, BLINKER)),
        )
        targets += [
            Target("1", f"send, {case.label}: ours / ModelSignal", versus_django, TARGET),
            Target(
                "1",
                f"send, {case.label}: ours / ModelSignal, above the floor",
                above_floor,
                ABOVE_FLOOR_TARGET,
            ),
        ]
    table.notes.append(
        f"Median ns per send of {options.rounds} interleaved rounds; ratios are the median "
        "[min-max] of the per-round ratios. Receivers are weakly held plain functions; the "
        "send passes two keyword arguments. Above the floor: (ours - floor) / (ModelSignal - "
        "floor), per round."
    )
    return [table], targets
