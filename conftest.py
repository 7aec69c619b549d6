"""Every Python example of README.md and docs/ runs as a test (sybil).

A page's examples run in order in one namespace, as a reader would type them
into one interpreter; a ``>>>`` example checks its printed output, so an example
whose output the page shows cannot drift from it. Examples that need a database
create an SQLite engine of their own, in memory.

A page leaves nothing behind for the next one: its namespace is cleared (its
weakly connected receivers die with it) and every signal is given back the
receivers it had before the page ran, so a receiver connected with
``weak=False`` cannot reach into another page's example.
"""

from __future__ import annotations

import doctest
import gc
from typing import Any

from sybil import Sybil
from sybil.parsers.myst import PythonCodeBlockParser, SkipParser

import sa_signals
import sa_signals.auth
from sa_signals import Signal

SIGNALS = [
    value
    for module in (sa_signals, sa_signals.auth)
    for value in vars(module).values()
    if isinstance(value, Signal)
]


def set_up_page(namespace: dict[str, Any]) -> None:
    # A page runs as a reader's script would: what it defines belongs to __main__.
    namespace["__name__"] = "__main__"
    # The signals' own registry, read and restored whole: a page's test harness
    # may look at it, user code never should.
    namespace["__connections_before__"] = {signal: signal._connections for signal in SIGNALS}


def tear_down_page(namespace: dict[str, Any]) -> None:
    before = namespace["__connections_before__"]
    namespace.clear()
    gc.collect()
    for signal, connections in before.items():
        with signal._lock:
            signal._replace_connections(connections)


examples = Sybil(
    parsers=[
        PythonCodeBlockParser(doctest_optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE),
        SkipParser(),
    ],
    patterns=["README.md", "docs/*.md", "docs/**/*.md"],
    excludes=["docs/_build/*"],
    setup=set_up_page,
    teardown=tear_down_page,
)

pytest_collect_file = examples.pytest()
