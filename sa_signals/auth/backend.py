"""The verbs: ``authenticate``, ``login``, ``logout``, as in ``django.contrib.auth``.

``authenticate`` is the door through which untrusted input reaches the
database and the hasher, so it never raises because of a credential's value:
whatever was sent, the answer is a user or ``None`` (and ``user_login_failed``).
Its errors are for the programmer: a wrong session or user model.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeGuard, TypeVar, overload

from sqlalchemy import Column, inspect, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session
from sqlalchemy.orm import Mapper, Session, scoped_session

from sa_signals.auth import hashers
from sa_signals.auth.credentials import cleanse_credentials
from sa_signals.auth.mixins import UserMixin
from sa_signals.auth.signals import user_logged_in, user_logged_out, user_login_failed

__all__ = ["authenticate", "login", "logout", "update_last_login"]

U = TypeVar("U", bound=UserMixin)

# The sender of user_login_failed, as Django sends its package's name.
FAILED_LOGIN_SENDER = "sa_signals.auth"

# scoped_session[Any]: scoped_session is invariant, and Flask-SQLAlchemy's
# db.session is a scoped_session of its own Session subclass.
SyncSession = Session | scoped_session[Any]
AnySession = SyncSession | AsyncSession | async_scoped_session[Any]


@overload
def authenticate(
    session: SyncSession, request: Any = None, *, user_model: type[U], **credentials: Any
) -> U | None: ...
@overload
def authenticate(
    session: SyncSession, request: Any = None, *, user_model: None = None, **credentials: Any
) -> UserMixin | None: ...
def authenticate(
    session: SyncSession,
    request: Any = None,
    *,
    user_model: type[UserMixin] | None = None,
    **credentials: Any,
) -> UserMixin | None:
    """The user whose ``username`` and ``password`` are ``credentials``, or ``None``.

    ``None`` for an unknown username, a wrong password, an inactive user, a user
    without a usable password, and for credentials that cannot be right (missing,
    not strings, empty, too long); each time ``user_login_failed`` is sent with
    the credentials cleansed. An unknown username runs the hasher once, on a
    dummy hash, so that it takes as long as a wrong password; credentials that
    cannot be right are refused before any query or hashing.

    The username is matched exactly (see ``UserMixin``), through a bound
    parameter. A successful check may rehash the password, and a ``login()``
    sets ``last_login``: the caller's next flush or commit writes both.

    :param session: a ``Session`` (or ``scoped_session``, such as
        Flask-SQLAlchemy's ``db.session``). With an ``AsyncSession``, use
        ``await session.run_sync(authenticate, request, username=..., password=...)``.
    :param user_model: the mapped class to look users up in; by default the one
        mapped class that uses ``UserMixin``.
    :raises TypeError: ``session`` is not a session, or ``user_model`` is not a
        mapped class using ``UserMixin``.
    :raises LookupError: no ``user_model`` was given, and there is no mapped
        class using ``UserMixin``, or several (they are named).
    """
    if isinstance(session, AsyncSession | async_scoped_session):
        raise TypeError(
            "authenticate() needs a synchronous Session, not an AsyncSession: use "
            "`await session.run_sync(authenticate, request, username=..., password=...)`."
        )
    _check_session(session, "authenticate")
    model = resolve_user_model(user_model)
    user = _user_for(session, model, credentials)
    if user is None:
        user_login_failed.send(
            sender=FAILED_LOGIN_SENDER,
            credentials=cleanse_credentials(credentials),
            request=request,
        )
    return user


def _user_for(
    session: SyncSession, model: type[UserMixin], credentials: dict[str, Any]
) -> UserMixin | None:
    username = credentials.get("username")
    if not _could_be_a_username(username, model):
        return None
    try:
        password = hashers.validate_password(credentials.get("password"))
    except (TypeError, ValueError):
        return None

    user = _find_user(session, model, username)
    if user is None:
        hashers.verify_against_dummy(password)
        return None
    # Password first, as Django: an inactive user costs what anyone else costs.
    if user.check_password(password) and user.is_active:
        return user
    return None


def _could_be_a_username(username: object, model: type[UserMixin]) -> TypeGuard[str]:
    """Whether ``username`` is worth a query: a non-empty ``str`` that fits the
    column and that the database driver can send. No account can have any
    other, so refusing it early reveals nothing, and keeps NUL characters
    (refused by PostgreSQL) and lone surrogates (refused by every driver) from
    becoming errors deep in the driver."""
    if not isinstance(username, str) or not username:
        return False
    max_length = getattr(_username_column(model).type, "length", None)
    if max_length is not None and len(username) > max_length:
        return False
    if "\x00" in username:
        return False
    try:
        username.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _username_column(model: type[UserMixin]) -> Column[Any]:
    mapper: Mapper[Any] = inspect(model)
    return mapper.columns["username"]


def _find_user(session: SyncSession, model: type[U], username: str) -> U | None:
    # MySQL and MariaDB compare with the column's collation, by default case-
    # and accent-insensitive and blind to trailing spaces, so the database may
    # return "Alice" for "alice " there. Python then compares exactly, which makes
    # the match the same on every database, whatever collation the table has.
    try:
        candidates = session.scalars(select(model).where(model.username == username)).all()
    except OperationalError as error:
        if _is_beyond_the_columns_charset(error):
            return None  # no row can hold this username
        raise
    return next((user for user in candidates if user.username == username), None)


# MySQL/MariaDB: "Illegal mix of collations", for a value the column's character
# set cannot represent (an emoji for a latin1 or utf8mb3 table).
_MIXED_COLLATION_ERRORS = frozenset({1267, 1270, 1271})


def _is_beyond_the_columns_charset(error: OperationalError) -> bool:
    code = getattr(error.orig, "args", (None,))[0]
    return code in _MIXED_COLLATION_ERRORS


def resolve_user_model(user_model: type[U] | None = None) -> type[U] | type[UserMixin]:
    """``user_model`` once checked, or else the one mapped class using ``UserMixin``.

    A class that inherits its ``UserMixin`` from a mapped parent (``Admin(User)``)
    is covered by that parent: querying ``User`` finds admins too.
    """
    if user_model is not None:
        if not (isinstance(user_model, type) and issubclass(user_model, UserMixin)):
            raise TypeError(f"user_model must be a class using UserMixin; {user_model!r} is not.")
        if not _is_mapped(user_model):
            raise TypeError(
                f"user_model must be a mapped class; {_name(user_model)} is not mapped "
                "(an abstract base?)."
            )
        return user_model
    candidates = sorted(_user_models(), key=_name)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise LookupError(
            "No mapped class uses UserMixin: declare one, such as "
            "`class User(UserMixin, Base)`, before authenticating."
        )
    raise LookupError(
        f"Several mapped classes use UserMixin ({', '.join(map(_name, candidates))}); "
        "pass user_model= to say which one authenticate() should use."
    )


def _user_models() -> Iterator[type[UserMixin]]:
    pending: list[type[UserMixin]] = list(UserMixin.__subclasses__())
    seen: set[type[UserMixin]] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:  # diamond inheritance
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        if not _is_mapped(cls):
            continue  # an abstract base, or a class that is not mapped (any more)
        parent = inspect(cls).inherits
        if parent is None or not issubclass(parent.class_, UserMixin):
            yield cls


def _is_mapped(cls: type) -> bool:
    mapper: object = inspect(cls, raiseerr=False)
    return isinstance(mapper, Mapper) and mapper.class_ is cls


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def login(session: AnySession, user: UserMixin, request: Any = None) -> None:
    """Record that ``user`` logged in: add it to ``session`` and send
    ``user_logged_in`` (``sender=type(user)``, ``request``, ``user``).

    As in Django, it trusts its caller: pass it the user ``authenticate()``
    returned. The built-in receiver sets ``last_login``; the caller's next flush
    or commit of ``session`` writes it. Remembering the user in the web session
    (the cookie) is the web framework's job, and so is renewing that session to
    prevent fixation.

    :raises TypeError: ``session`` is not a session, or ``user`` is not an
        instance of a class using ``UserMixin``.
    """
    _check_session(session, "login")
    _check_user(user, "login")
    session.add(user)
    user_logged_in.send(sender=type(user), request=request, user=user)


def logout(session: AnySession, user: UserMixin | None, request: Any = None) -> None:
    """Send ``user_logged_out`` (``sender`` the user's class, or ``None`` without a
    user; ``request``, ``user``).

    Nothing in the database changes at logout; ``session`` is checked and passed
    for symmetry with ``login``. Forgetting the user in the web session is the
    web framework's job.

    :raises TypeError: ``session`` is not a session, or ``user`` is neither
        ``None`` nor an instance of a class using ``UserMixin``.
    """
    _check_session(session, "logout")
    if user is not None:
        _check_user(user, "logout")
    user_logged_out.send(
        sender=type(user) if user is not None else None, request=request, user=user
    )


def update_last_login(sender: type[UserMixin], user: UserMixin, **kwargs: Any) -> None:
    """Set ``user.last_login`` to now (UTC), as Django's receiver of the same name.

    Unlike Django's, it does not save: ``login()`` put the user in the caller's
    session, whose next flush or commit writes it along with the rest of the
    request's work. Disconnect it as in Django:
    ``user_logged_in.disconnect(dispatch_uid="update_last_login")``.
    """
    user.last_login = datetime.now(UTC)


user_logged_in.connect(update_last_login, dispatch_uid="update_last_login")


def _check_session(session: object, verb: str) -> None:
    if not isinstance(session, Session | scoped_session | AsyncSession | async_scoped_session):
        raise TypeError(
            f"{verb}() takes a SQLAlchemy session as its first argument, "
            f"not {type(session).__name__}."
        )


def _check_user(user: object, verb: str) -> None:
    if not isinstance(user, UserMixin):
        raise TypeError(
            f"{verb}() takes an instance of a class using UserMixin as its user, "
            f"not {type(user).__name__}."
        )
