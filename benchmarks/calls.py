"""Table 1b: one call, in instructions under callgrind.

What the flush pays per object to reach a receiver, call by call: the bare call
of a function, the hand-written listener's call of a receiver with two keyword
arguments, the same receiver called with the six that ``post_delete`` gives it
(as the flush now calls plain receivers), and ``post_delete.send()`` delivering
them: untraced, after tracing was turned on and off again, and traced. The
receiver is Django's shape, ``receiver(sender, **kwargs)``.

Each case runs in a fresh interpreter under callgrind, N and then 2N times;
the difference over N is the cost of one call, start-up and imports cancelled.
Instruction counts do not depend on the machine's load.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.context import Context
from benchmarks.flush import _instructions
from benchmarks.harness import Table, Target

__all__ = ["CASES", "run"]

CALLS = 20_000

# label -> the statement measured, in the namespace of _SET_UP.
CASES = {
    "an empty function": "nothing()",
    "the listener's call: receiver(sender=, instance=)": "receiver(sender=Item, instance=item)",
    "the receiver, called with post_delete's six arguments": (
        "receiver(instance=item, using=bind, origin=item, session=session,"
        " signal=post_delete, sender=Item)"
    ),
    "post_delete.send(...) delivering them": (
        "post_delete.send(Item, instance=item, using=bind, origin=item, session=session)"
    ),
}
# The same send again, after tracing was turned on and off (it must cost what it
# did: turning it off puts the untraced methods back), and with tracing on.
_SEND = CASES["post_delete.send(...) delivering them"]
CASES["post_delete.send(...), tracing turned on and off again"] = _SEND
CASES["post_delete.send(...), traced (spans made, not exported)"] = _SEND
_EXTRA_SET_UP = {
    "post_delete.send(...), tracing turned on and off again": (
        "enable_tracing(tracer_provider=TracerProvider())\ndisable_tracing()"
    ),
    "post_delete.send(...), traced (spans made, not exported)": (
        "enable_tracing(tracer_provider=TracerProvider())"
    ),
}

# The model every flush benchmark writes (the interpreter starts in the repository root).
_SET_UP = """
from benchmarks.models import Item
from sa_signals import post_delete

def receiver(sender, **kwargs):
    pass

def nothing():
    pass

post_delete.connect(receiver, sender=Item)
item, bind, session = Item(), object(), object()

from opentelemetry.sdk.trace import TracerProvider
from sa_signals.tracing import disable_tracing, enable_tracing
"""


def run(context: Context) -> tuple[list[Table], list[Target]]:
    table = Table(
        f"Table 1b: one call, instructions under callgrind ({CALLS:,} calls)",
        ["call", "instructions per call"],
    )
    if not context.options.callgrind:
        return [], []
    if shutil.which("valgrind") is None:
        table.notes.append("Not measured: valgrind is not installed.")
        return [table], []
    directory = context.options.workdir / "calls"
    directory.mkdir(exist_ok=True)
    context.progress("table 1b: callgrind, a minute")
    with ThreadPoolExecutor(max_workers=2) as executor:
        costs = list(executor.map(lambda case: _per_call(case, directory), CASES))
    for label, cost in zip(CASES, costs, strict=True):
        table.rows.append([label, f"{cost / 1000:.1f} k"])
    table.notes.append(
        "Each: (instructions of 2N calls - instructions of N calls) / N, in a fresh "
        "interpreter under `valgrind --tool=callgrind`. The flush calls plain receivers "
        "as in the third row; deferred, async and muted ones go through send()."
    )
    return [table], []


def _per_call(label: str, directory: Path) -> float:
    first, second = (_total(label, calls, directory) for calls in (CALLS, 2 * CALLS))
    return (second - first) / CALLS


def _total(label: str, calls: int, directory: Path) -> float:
    number = list(CASES).index(label)
    output = directory / f"case{number}-{calls}.out"
    set_up = f"{_SET_UP}\n{_EXTRA_SET_UP.get(label, '')}"
    script = f"{set_up}\nfor _ in range({calls}):\n    {CASES[label]}\n"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "-q",
            f"--callgrind-out-file={output}",
            sys.executable,
            "-c",
            script,
        ],
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    return _instructions(output)
