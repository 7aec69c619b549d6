"""Registering, logging in, and knowing who is acting.

Logging in (``sa_signals.auth``: ``authenticate``, then ``login``) gives a
bearer token, signed with the app's secret key and valid for
``TOKEN_LIFETIME``; the user is loaded again for every request, so that a
deactivated account is out at once. A token cannot be revoked before it expires
(the price of a stateless token, as of Flask's signed cookie).

Password hashing is deliberately slow: registering hashes in a worker thread,
off the event loop. ``authenticate()`` needs a sync session, so it runs through
``AsyncSession.run_sync``, on the event loop: a login holds the loop for the
time of one hash check.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from examples.blog.models import User
from examples.fastapi_app.schemas import Credentials, NewUser, Token, UserOut
from examples.fastapi_app.sessions import ACTOR, USER_ID, Session
from sa_signals.auth import authenticate, login

__all__ = ["CurrentUser", "current_user", "router"]

router = APIRouter(tags=["accounts"])

TOKEN_LIFETIME = timedelta(hours=12)
_TOKEN_SALT = "examples.fastapi_app access token"
_bearer = HTTPBearer(auto_error=False)


def _tokens(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.secret_key, salt=_TOKEN_SALT)


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def register(new: NewUser, request: Request, session: Session) -> UserOut:
    """A new account; its welcome e-mail is sent after the commit."""
    if await session.scalar(select(User.id).where(User.username == new.username)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "That username is taken.")
    user = User(username=new.username, email=new.email)
    await asyncio.to_thread(user.set_password, new.password)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # taken meanwhile, by a request next door
        raise HTTPException(status.HTTP_409_CONFLICT, "That username is taken.") from None
    return UserOut(id=user.id, username=user.username)


@router.post("/login")
async def log_in(credentials: Credentials, request: Request, session: Session) -> Token:
    user = await session.run_sync(
        authenticate,
        request,
        user_model=User,
        username=credentials.username,
        password=credentials.password,
    )
    if user is None:
        await session.commit()  # the audit line that user_login_failed added
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Wrong username or password.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    login(session, user, request)  # sets last_login, written by the commit; audited
    return Token(access_token=_tokens(request).dumps(user.id))


async def current_user(
    request: Request,
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The user of the request's bearer token, made known to the receivers
    through the session (``session.info``)."""
    user_id = None
    if credentials is not None:
        try:
            user_id = _tokens(request).loads(
                credentials.credentials, max_age=int(TOKEN_LIFETIME.total_seconds())
            )
        except BadData:  # forged, damaged or expired
            user_id = None
    user = await session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not user.is_active:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Log in first (POST /login), and send the token as a bearer token.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    session.info[ACTOR] = user.username
    session.info[USER_ID] = user.id
    return user


CurrentUser = Annotated[User, Depends(current_user)]
