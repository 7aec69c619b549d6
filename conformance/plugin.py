"""The pytest plugin loaded into SQLAlchemy's own test run (``-p conformance.plugin``).

It imports nothing at load time: SQLAlchemy's ``test/conftest.py`` must put the
sdist's ``lib/`` first on ``sys.path`` before anything imports ``sqlalchemy``,
or the run would test the installed wheel. At session start it checks that the
SQLAlchemy under test is the sdist's, then, by ``SA_SIGNALS_CONFORMANCE_MODE``:

- ``baseline``: nothing; sa-signals is never imported;
- ``imported``: ``import sa_signals``;
- ``receivers``: a counting receiver, for any sender, on every model signal;
- ``deferred``: those, and a ``post_save`` receiver with ``on_commit=True``.

SQLAlchemy's fixtures wipe every ORM listener between tests
(``RemoveORMEventsGlobally``, ``teardown_events``), sa-signals' included. The
plugin records each listener sa-signals installs and puts back, before every
test, those that are gone, so that no part of the run silently tests nothing of
ours; the receivers' call counts, per test file, are the proof (written to
``SA_SIGNALS_CONFORMANCE_OUT``).
"""

from __future__ import annotations

import json
import os
import weakref
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

MODES = ("baseline", "imported", "receivers", "deferred")

_mode = os.environ.get("SA_SIGNALS_CONFORMANCE_MODE", "baseline")
_calls: Counter[str] = Counter()  # receiver calls, by signal
_calls_by_file: Counter[str] = Counter()
_listeners: list[tuple[Any, str, Any, tuple[Any, ...], dict[str, Any]]] = []
_restored = 0
_restoring = False
_current_test: str | None = None
_tests_with_documented_selects: set[str] = set()
_keep: list[Any] = []  # the receivers, held strongly


def pytest_sessionstart(session: pytest.Session) -> None:
    if _mode not in MODES:
        raise pytest.UsageError(f"SA_SIGNALS_CONFORMANCE_MODE={_mode!r}: one of {MODES}")
    import sqlalchemy

    expected = Path(session.config.rootpath, "lib").resolve()
    if not Path(sqlalchemy.__file__).resolve().is_relative_to(expected):
        raise pytest.UsageError(
            f"the SQLAlchemy under test is {sqlalchemy.__file__}, not the sdist's ({expected}): "
            "something imported it before test/conftest.py (run with -p no:sa_signals)"
        )
    if _mode == "baseline":
        return
    _record_listeners()
    import sa_signals  # noqa: F401  (installs the session-level listeners)

    if _mode in ("receivers", "deferred"):
        _connect_counting_receivers(deferred=_mode == "deferred")
        _leave_documented_selects_out_of_sql_assertions()


def _leave_documented_selects_out_of_sql_assertions() -> None:
    """The SELECTs sa-signals documents (they carry the execution option
    ``sa_signals_select``) are left out of what SQLAlchemy's SQL assertions
    see: a test that then passes differs from the baseline by those SELECTs
    alone, and is reported as such, by name."""
    from sqlalchemy.testing import assertsql

    from sa_signals.columns import SELECT_OPTION

    close = assertsql.SQLAsserter._close

    def close_without_documented_selects(asserter: Any) -> None:
        observed = asserter.accumulated
        kept = [o for o in observed if not o.context.execution_options.get(SELECT_OPTION)]
        if len(kept) < len(observed) and _current_test:
            _tests_with_documented_selects.add(_current_test)
        asserter.accumulated = kept
        close(asserter)  # type: ignore[no-untyped-call]

    assertsql.SQLAsserter._close = close_without_documented_selects  # type: ignore[method-assign]


def _record_listeners() -> None:
    """Remember every listener sa-signals installs, from now on. Every
    ``event.listen()`` goes through ``_EventKey.listen``, SQLAlchemy's private
    registry; this harness, not the library, wraps it, as the only place that
    sees a listener with its target and its options."""
    from sqlalchemy.event.registry import _EventKey

    listen = _EventKey.listen

    def recording_listen(key: _EventKey[Any], *args: Any, **kw: Any) -> None:
        listen(key, *args, **kw)
        if not _restoring and getattr(key.fn, "__module__", "").startswith("sa_signals"):
            target = key.dispatch_target
            try:
                held: Any = weakref.ref(target)
            except TypeError:
                held = lambda target=target: target  # noqa: E731
            _listeners.append((held, key.identifier, key.fn, args, kw))

    _EventKey.listen = recording_listen  # type: ignore[method-assign,assignment]


def _connect_counting_receivers(*, deferred: bool) -> None:
    import sa_signals
    from sa_signals import (
        m2m_changed,
        post_bulk_update,
        post_delete,
        post_init,
        post_save,
        pre_bulk_update,
        pre_delete,
        pre_init,
        pre_save,
    )

    signals = {
        "pre_init": pre_init,
        "post_init": post_init,
        "pre_save": pre_save,
        "post_save": post_save,
        "pre_delete": pre_delete,
        "post_delete": post_delete,
        "m2m_changed": m2m_changed,
        "pre_bulk_update": pre_bulk_update,
        "post_bulk_update": post_bulk_update,
    }
    for name, signal in signals.items():

        def count(name: str = name, **kwargs: Any) -> None:
            _calls[name] += 1

        _keep.append(count)
        signal.connect(count, weak=False)
    if deferred:

        def count_after_commit(**kwargs: Any) -> None:
            _calls["post_save, on_commit=True"] += 1

        _keep.append(count_after_commit)
        sa_signals.post_save.connect(count_after_commit, weak=False, on_commit=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _restore_listeners()


def _restore_listeners() -> None:
    global _restored, _restoring
    if not _listeners:
        return
    from sqlalchemy import event

    _restoring = True
    try:
        for held, identifier, fn, args, kw in _listeners:
            target = held()
            if target is not None and not event.contains(target, identifier, fn):
                event.listen(target, identifier, fn, *args, **kw)
                _restored += 1
    finally:
        _restoring = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    global _current_test
    before = _calls.total()
    _current_test = item.nodeid
    try:
        return (yield)
    finally:
        _current_test = None
        _calls_by_file[item.location[0]] += _calls.total() - before


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("SA_SIGNALS_CONFORMANCE_OUT")
    if not out or _mode == "baseline":
        return
    run = os.environ.get("SA_SIGNALS_CONFORMANCE_RUN", "run")
    worker = f"{run}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    report = {
        "calls": dict(_calls),
        "calls_by_file": dict(_calls_by_file),
        "listeners_restored": _restored,
        "tests_with_documented_selects": sorted(_tests_with_documented_selects),
    }
    Path(out, f"counts-{worker}.json").write_text(json.dumps(report))
