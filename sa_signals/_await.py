"""Awaiting a coroutine from synchronous code, wherever that code happens to run.

Model signals are sent from inside SQLAlchemy's flush, which is synchronous even
under an ``AsyncSession``. An ``async def`` receiver therefore has to be driven to
completion from sync code, and the right way depends on where we are:

* inside an ``AsyncSession`` operation the sync code runs in SQLAlchemy's greenlet
  bridge, so the coroutine is awaited on the session's own event loop;
* with no running event loop (a plain ``Session`` in a script or a WSGI worker), a
  fresh loop runs it, as ``asyncio.run`` does;
* with a running loop but no greenlet bridge (a sync ``Session`` used from async
  code), the loop cannot be re-entered, so the coroutine runs on a loop of its own
  in a worker thread while the caller waits, as Django's ``async_to_sync`` does.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sa_signals.internals import await_in_greenlet, in_greenlet

__all__: list[str] = []

T = TypeVar("T")


def run_to_completion(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end from synchronous code and return its result."""
    if in_greenlet():
        return await_in_greenlet(coroutine)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # The worker thread runs in a copy of the caller's context, as asyncio.run
    # would have: context variables (a test's mute(), say) reach the coroutine.
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sa_signals-await") as pool:
        return pool.submit(context.run, asyncio.run, coroutine).result()
