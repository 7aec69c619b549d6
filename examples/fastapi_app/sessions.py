"""One ``AsyncSession`` per request, committed before the response is sent.

The dependency commits when the route returns and rolls back when anything
raised. It is declared with ``scope="function"``: FastAPI then runs the code
after ``yield`` before it sends the response (with the default scope it runs
after, and a commit that fails, because a receiver refused the flush, would come
after a ``200``). So a client is told "done" only once the work is committed,
and a failure at the commit is the response.

What the receivers should know about the request rides on the session
(``session.info``), as state that belongs to a session should: the request's
id (``request_id``: the client's ``X-Request-ID``, or one made here), who is
acting (``actor``, ``user_id``: set by ``accounts.current_user``). A receiver is
handed the session, so each one finds its own request's, never another's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["ACTOR", "REQUEST_ID", "USER_ID", "Session", "request_session"]

# Keys of session.info
REQUEST_ID = "request_id"  # which request the session serves
ACTOR = "actor"  # the username of the user acting, who the audit log names
USER_ID = "user_id"  # and that user's id
# A request id is the client's to choose, within reason: it is logged and audited.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed once the route returned, rolled back if
    anything raised (the route, a receiver at the commit, a validation error)."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        session.info[REQUEST_ID] = _request_id(request)
        # Receivers of the login signals get the request, not the session.
        request.state.session = session
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def _request_id(request: Request) -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _ACCEPTABLE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


Session = Annotated[AsyncSession, Depends(request_session, scope="function")]
