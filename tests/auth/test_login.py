"""login() and logout(): the signals they send, and last_login."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sa_signals.auth import login, logout, update_last_login, user_logged_in, user_logged_out
from sa_signals.testing import capture
from tests.models import Note, User

REQUEST = object()


@pytest.fixture
def alice(session: Session) -> User:
    user = User(username="alice")
    user.set_password("correct horse")
    session.add(user)
    session.commit()
    return user


def stored_last_login(engine: Engine) -> datetime | None:
    with Session(engine) as session:
        return session.scalars(select(User.last_login)).one()


@pytest.fixture
def without_update_last_login() -> Iterator[None]:
    assert user_logged_in.disconnect(dispatch_uid="update_last_login")
    yield
    user_logged_in.connect(update_last_login, dispatch_uid="update_last_login")


def test_login_sends_user_logged_in_with_the_users_class_the_request_and_the_user(
    session: Session, alice: User
) -> None:
    with capture(user_logged_in) as logged_in:
        login(session, alice, REQUEST)

    assert logged_in == [
        {"signal": user_logged_in, "sender": User, "request": REQUEST, "user": alice}
    ]


def test_login_sets_last_login_which_the_callers_next_commit_writes(
    session: Session, engine: Engine, alice: User
) -> None:
    before = datetime.now(UTC)
    login(session, alice)
    after = datetime.now(UTC)

    assert alice.last_login is not None
    assert before <= alice.last_login <= after
    assert alice.last_login.tzinfo is UTC
    assert stored_last_login(engine) is None  # not written yet: login() does not commit

    session.commit()
    assert stored_last_login(engine) == alice.last_login


def test_the_last_login_receiver_can_be_disconnected_as_in_django(
    session: Session, engine: Engine, alice: User, without_update_last_login: None
) -> None:
    login(session, alice)
    session.commit()

    assert alice.last_login is None
    assert stored_last_login(engine) is None


def test_login_adds_a_user_from_a_closed_session_to_the_callers_session(
    engine: Engine, alice: User
) -> None:
    with Session(engine) as first:
        user = first.scalars(select(User)).one()
    with Session(engine) as second:
        login(second, user)
        second.commit()

    assert stored_last_login(engine) is not None


@pytest.mark.parametrize("not_a_user", [None, "alice", Note(text="a note")])
def test_login_refuses_what_is_not_a_user(session: Session, not_a_user: object) -> None:
    with pytest.raises(TypeError, match=f"not {type(not_a_user).__name__}"):
        login(session, not_a_user)  # type: ignore[arg-type]


def test_login_and_logout_refuse_what_is_not_a_session(alice: User) -> None:
    with pytest.raises(TypeError, match=r"^login\(\) takes a SQLAlchemy session"):
        login(object(), alice)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^logout\(\) takes a SQLAlchemy session"):
        logout(None, alice)  # type: ignore[arg-type]


def test_logout_sends_user_logged_out_with_the_users_class_the_request_and_the_user(
    session: Session, alice: User
) -> None:
    with capture(user_logged_out) as logged_out:
        logout(session, alice, REQUEST)

    assert logged_out == [
        {"signal": user_logged_out, "sender": User, "request": REQUEST, "user": alice}
    ]


def test_logout_without_a_user_sends_none_as_sender_and_user(session: Session) -> None:
    with capture(user_logged_out) as logged_out:
        logout(session, None, REQUEST)

    assert logged_out == [
        {"signal": user_logged_out, "sender": None, "request": REQUEST, "user": None}
    ]


def test_logout_refuses_what_is_not_a_user(session: Session) -> None:
    with pytest.raises(TypeError, match="not str"):
        logout(session, "alice")  # type: ignore[arg-type]
