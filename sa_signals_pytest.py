"""pytest fixtures for sa-signals (registered through the ``pytest11`` entry point).

Each fixture undoes what the test left in place, even when it fails:

* ``sa_signals_capture(signal, sender=None)`` starts recording for the rest of
  the test and returns the list of sends (as ``sa_signals.testing.capture``
  yields it);
* ``sa_signals_mute(signal=None, sender=None, receiver=None)`` silences the
  matching receivers for the rest of the test, in its own thread or task only;
* ``sa_signals_capture_on_commit_callbacks`` is
  ``sa_signals.testing.capture_on_commit_callbacks`` itself.

Every name starts with ``sa_signals_``, as pytest-django's start with
``django_``: a plugin loaded in every project must not take, or be shadowed by,
a name such as ``capture`` or ``mute`` that a project's own conftest may use.

pytest loads this plugin in every project where sa-signals is installed, so it
lives beside the ``sa_signals`` package rather than in it (importing a module of
a package runs the package's ``__init__``, which installs the listeners), and
imports ``sa_signals`` only when a fixture is used: a test run that never uses
one gets no listener installed behind its back, and no SQLAlchemy imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sa_signals.dispatch import Signal


@pytest.fixture
def sa_signals_capture() -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """``calls = sa_signals_capture(post_save, sender=Order)``: the rest of the test's sends."""
    from sa_signals import testing

    with ExitStack() as stack:

        def start(signal: Signal, sender: Any = None) -> list[dict[str, Any]]:
            return stack.enter_context(testing.capture(signal, sender))

        yield start


@pytest.fixture
def sa_signals_mute() -> Iterator[Callable[..., None]]:
    """``sa_signals_mute(post_save, receiver=send_email)``: silenced for the rest of the test."""
    from sa_signals import testing

    with ExitStack() as stack:

        def start(signal: Signal | None = None, sender: Any = None, receiver: Any = None) -> None:
            stack.enter_context(testing.mute(signal, sender, receiver))

        yield start


@pytest.fixture
def sa_signals_capture_on_commit_callbacks() -> Callable[..., Any]:
    """``with sa_signals_capture_on_commit_callbacks(session, execute=True) as calls: ...``"""
    from sa_signals import testing

    return testing.capture_on_commit_callbacks
