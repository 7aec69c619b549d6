"""Per-session switches: raw mode for fixture loading, and model signals off.

Both are scoped to one session and one block, nest, and live in ``session.info``
(never in a global), so other sessions and threads are unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session
from sqlalchemy.orm import Session, scoped_session

__all__ = ["raw_mode", "signals_disabled"]

# Every kind of session a program holds; scoped sessions are invariant in the
# session class, and Flask-SQLAlchemy's db.session scopes a Session subclass.
AnySession = Session | AsyncSession | scoped_session[Any] | async_scoped_session[Any]

_RAW = "sa_signals.raw"
_DISABLED = "sa_signals.disabled"


def sync_session_of(session: AnySession) -> Session:
    """The ``Session`` whose events carry the work: a scoped session's current one
    (Flask-SQLAlchemy's ``db.session``), an ``AsyncSession``'s ``sync_session``."""
    current = session() if isinstance(session, scoped_session | async_scoped_session) else session
    current = current.sync_session if isinstance(current, AsyncSession) else current
    if not isinstance(current, Session):
        raise TypeError(
            f"Expected a Session, a scoped_session, an AsyncSession or an "
            f"async_scoped_session, not {session!r}."
        )
    return current


@contextmanager
def _counting(session: AnySession, key: str) -> Iterator[None]:
    info = sync_session_of(session).info
    info[key] = info.get(key, 0) + 1
    try:
        yield
    finally:
        info[key] -= 1


def raw_mode(session: AnySession) -> AbstractContextManager[None]:
    """Within the block, the session's save signals carry ``raw=True``.

    This is Django's fixture-loading mode: instances are saved exactly as
    presented, and receivers that look up related rows or fill in derived values
    should leave them alone (``if raw: return``)::

        with raw_mode(session):
            session.add_all(load_fixture("orders.json"))
            session.commit()
    """
    return _counting(session, _RAW)


def signals_disabled(session: AnySession) -> AbstractContextManager[None]:
    """Within the block, the session sends no model signals at all: no receiver
    runs and nothing is deferred. For bulk loads and data migrations, where the
    receivers' side effects are unwanted and their cost shows::

        with signals_disabled(session):
            session.add_all(million_rows)
            session.commit()
    """
    return _counting(session, _DISABLED)


def is_raw(session: Session) -> bool:
    return bool(session.info.get(_RAW))


def signals_enabled(session: Session) -> bool:
    return not session.info.get(_DISABLED)
