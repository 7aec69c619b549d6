"""authenticate(): the door through which untrusted credentials come in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, String, event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sa_signals.auth import (
    MAX_PASSWORD_LENGTH,
    UserMixin,
    authenticate,
    login,
    user_login_failed,
)
from sa_signals.auth.credentials import CLEANSED_SUBSTITUTE
from tests.auth.conftest import CHEAP, Sends, WatchedHasher, run_python
from tests.databases import Database, on_every_async_driver
from tests.models import Note, User

REQUEST = object()  # what a web framework would pass: authenticate() only hands it on


@pytest.fixture
def alice(session: Session) -> User:
    user = User(username="alice")
    user.set_password("correct horse")
    session.add(user)
    session.commit()
    return user


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement sent during the test, with its parameters (but the
    SQLite harness's own ``BEGIN``)."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement != "BEGIN":
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


def hashes_verified(hasher: WatchedHasher) -> list[str | bytes]:
    return [hash_ for hash_, _ in hasher.verified]


# -- the answers ------------------------------------------------------------------------


def test_the_right_credentials_return_the_user(
    session: Session, alice: User, failures: Sends
) -> None:
    assert authenticate(session, REQUEST, username="alice", password="correct horse") is alice
    assert failures == []


def test_a_wrong_password_returns_none_and_sends_user_login_failed(
    session: Session, alice: User, failures: Sends
) -> None:
    assert authenticate(session, REQUEST, username="alice", password="wrong") is None

    assert failures == [
        {
            "signal": user_login_failed,
            "sender": "sa_signals.auth",
            "credentials": {"username": "alice", "password": CLEANSED_SUBSTITUTE},
            "request": REQUEST,
        }
    ]


def test_an_unknown_username_returns_none_and_sends_user_login_failed(
    session: Session, alice: User, failures: Sends
) -> None:
    assert authenticate(session, username="bob", password="correct horse") is None

    assert [call["credentials"] for call in failures] == [
        {"username": "bob", "password": CLEANSED_SUBSTITUTE}
    ]
    assert failures[0]["request"] is None


def test_an_inactive_user_fails_like_a_wrong_password(
    session: Session, alice: User, hasher: WatchedHasher, failures: Sends
) -> None:
    alice.is_active = False
    session.commit()

    assert authenticate(session, username="alice", password="correct horse") is None
    assert hashes_verified(hasher) == [alice.password_hash]  # checked, as a wrong one is
    assert len(failures) == 1


def test_a_user_without_a_usable_password_fails_like_a_wrong_password(
    session: Session, alice: User, hasher: WatchedHasher, failures: Sends
) -> None:
    alice.set_password(None)
    session.commit()

    assert authenticate(session, username="alice", password="correct horse") is None
    assert len(hasher.verified) == 1
    assert len(failures) == 1


def test_the_credentials_are_cleansed_before_user_login_failed_is_sent(
    session: Session, alice: User, failures: Sends
) -> None:
    credentials: dict[str, Any] = {
        "username": "alice",
        "password": "wrong",
        "otp_token": "123456",
        "api_key": "ak_live_1",
        "client_secret": "cs_1",
        "PassPhrase": "open sesame",
        "request_signature": "sig",
        "remember_me": True,
    }

    authenticate(session, **credentials)

    assert failures[0]["credentials"] == {
        "username": "alice",
        "password": CLEANSED_SUBSTITUTE,
        "otp_token": CLEANSED_SUBSTITUTE,
        "api_key": CLEANSED_SUBSTITUTE,
        "client_secret": CLEANSED_SUBSTITUTE,
        "PassPhrase": CLEANSED_SUBSTITUTE,
        "request_signature": CLEANSED_SUBSTITUTE,
        "remember_me": True,
    }


def test_the_right_credentials_with_extra_keys_still_log_in(session: Session, alice: User) -> None:
    # Keys other than username and password are for the caller (or other checks).
    user = authenticate(session, username="alice", password="correct horse", remember_me=True)
    assert user is alice


# -- time: an unknown username costs what a wrong password costs -------------------------


def test_a_wrong_password_runs_the_hasher_once_on_the_users_hash(
    session: Session, alice: User, hasher: WatchedHasher
) -> None:
    authenticate(session, username="alice", password="wrong")

    assert hasher.verified == [(alice.password_hash, "wrong")]


def test_an_unknown_username_runs_the_hasher_once_on_a_dummy_hash_of_the_same_cost(
    session: Session, alice: User, hasher: WatchedHasher
) -> None:
    authenticate(session, username="bob", password="a guess")

    [(dummy_hash, password)] = hasher.verified
    assert password == "a guess"
    assert dummy_hash != alice.password_hash
    parameters = "m={memory_cost},t={time_cost},p={parallelism}".format(**CHEAP)
    assert isinstance(dummy_hash, str)
    assert dummy_hash.startswith(f"$argon2id$v=19${parameters}$")  # the users' parameters
    assert alice.password_hash is not None
    assert alice.password_hash.startswith(f"$argon2id$v=19${parameters}$")


# -- the username: exact, and never part of the SQL ------------------------------------


@pytest.mark.parametrize(
    "username",
    [
        "Alice",
        "ALICE",
        "alice ",  # MariaDB's PAD SPACE collations ignore trailing spaces
        " alice",
        "alicé",  # and its default collation ignores accents
        "álice",
        "alice\u200b",  # a zero-width space
    ],
)
def test_the_username_must_match_exactly_on_every_database(
    session: Session, alice: User, failures: Sends, username: str
) -> None:
    assert authenticate(session, username=username, password="correct horse") is None
    assert len(failures) == 1


def test_unicode_normalization_counts_too(session: Session, failures: Sends) -> None:
    composed, decomposed = "zo\u00eb", "zoe\u0308"  # both print as "zoë"
    user = User(username=composed)
    user.set_password("correct horse")
    session.add(user)
    session.commit()

    assert authenticate(session, username=composed, password="correct horse") is user
    assert authenticate(session, username=decomposed, password="correct horse") is None


def test_the_username_is_sent_as_a_bound_parameter_never_inside_the_sql(
    session: Session, alice: User, statements: list[tuple[str, Any]], failures: Sends
) -> None:
    injection = "alice' OR '1'='1"

    assert authenticate(session, username=injection, password="correct horse") is None

    [(sql, parameters)] = statements
    assert "alice" not in sql
    assert injection in (parameters.values() if isinstance(parameters, dict) else parameters)


def test_unicode_usernames_and_passwords_log_in(session: Session) -> None:
    user = User(username="用户-🙂-Zoë")
    user.set_password("пароль 🔑 密码")
    session.add(user)
    session.commit()

    assert authenticate(session, username="用户-🙂-Zoë", password="пароль 🔑 密码") is user
    assert authenticate(session, username="用户-🙂-Zoë", password="пароль 🔑 密") is None


# -- brute-force-shaped input ----------------------------------------------------------


def test_many_failed_attempts_are_each_reported_and_the_right_password_still_works(
    session: Session, alice: User, hasher: WatchedHasher, failures: Sends
) -> None:
    # Locking the account out is a receiver's decision; authenticate() reports.
    for attempt in range(50):
        assert authenticate(session, username="alice", password=f"guess-{attempt}") is None
    for attempt in range(50):
        assert authenticate(session, username=f"user-{attempt}", password="correct horse") is None

    assert len(failures) == 100
    assert {call["credentials"]["password"] for call in failures} == {CLEANSED_SUBSTITUTE}
    assert len(hasher.verified) == 100  # one hasher run per attempt, known user or not
    assert authenticate(session, username="alice", password="correct horse") is alice


ONE_MEGABYTE = "x" * 1_000_000

CANNOT_BE_RIGHT = [
    pytest.param({}, id="no credentials"),
    pytest.param({"username": "alice"}, id="no password"),
    pytest.param({"password": "correct horse"}, id="no username"),
    pytest.param({"username": "alice", "password": None}, id="None password"),
    pytest.param({"username": None, "password": "correct horse"}, id="None username"),
    pytest.param({"username": "alice", "password": ""}, id="empty password"),
    pytest.param({"username": "", "password": "correct horse"}, id="empty username"),
    pytest.param({"username": "alice", "password": ONE_MEGABYTE}, id="1 MB password"),
    pytest.param(
        {"username": "alice", "password": "x" * (MAX_PASSWORD_LENGTH + 1)}, id="password too long"
    ),
    pytest.param({"username": ONE_MEGABYTE, "password": "correct horse"}, id="1 MB username"),
    pytest.param({"username": "a" * 151, "password": "correct horse"}, id="username too long"),
    pytest.param({"username": "alice", "password": 12345}, id="int password"),
    pytest.param({"username": "alice", "password": b"correct horse"}, id="bytes password"),
    pytest.param({"username": "alice", "password": ["correct horse"]}, id="list password"),
    pytest.param({"username": 12345, "password": "correct horse"}, id="int username"),
    pytest.param({"username": b"alice", "password": "correct horse"}, id="bytes username"),
    pytest.param({"username": {"$ne": None}, "password": "correct horse"}, id="dict username"),
    pytest.param({"username": "alice\x00", "password": "correct horse"}, id="NUL in username"),
    pytest.param({"username": "alice\ud800", "password": "correct horse"}, id="lone surrogate"),
    pytest.param(
        {"username": "alice", "password": "correct horse\ud800"}, id="lone surrogate password"
    ),
]


@pytest.mark.parametrize("credentials", CANNOT_BE_RIGHT)
def test_credentials_that_cannot_be_right_fail_cleanly_before_any_query_or_hashing(
    session: Session,
    alice: User,
    hasher: WatchedHasher,
    statements: list[tuple[str, Any]],
    failures: Sends,
    credentials: dict[str, Any],
) -> None:
    assert authenticate(session, REQUEST, **credentials) is None

    assert hasher.verified == []
    assert statements == []
    [failure] = failures
    expected = dict(credentials)
    if "password" in expected:
        expected["password"] = CLEANSED_SUBSTITUTE
    assert failure["credentials"] == expected
    assert failure["request"] is REQUEST


def test_a_username_as_long_as_the_column_allows_is_looked_up(
    session: Session, statements: list[tuple[str, Any]]
) -> None:
    user = User(username="a" * 150)
    user.set_password("correct horse")
    session.add(user)
    session.commit()
    statements.clear()

    assert authenticate(session, username="a" * 150, password="correct horse") is user
    assert len(statements) == 1


def test_a_username_the_users_table_cannot_hold_is_an_unknown_user(
    engine: Engine, hasher: WatchedHasher
) -> None:
    # A latin1 table on MariaDB cannot even compare with an emoji: the database
    # raises "Illegal mix of collations". No account can have such a name.
    class LocalBase(DeclarativeBase):
        pass

    class LegacyUser(UserMixin, LocalBase):
        __tablename__ = "legacy_users"
        __table_args__: ClassVar[dict[str, Any]] = {"mysql_charset": "latin1"}
        id: Mapped[int] = mapped_column(primary_key=True)

    LocalBase.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            alice = LegacyUser(username="alice")
            alice.set_password("correct horse")
            session.add(alice)
            session.commit()
            for username in ["\N{GRINNING FACE}", "\N{LATIN CAPITAL LETTER A WITH MACRON}"]:
                hasher.verified.clear()
                found = authenticate(
                    session, username=username, password="correct horse", user_model=LegacyUser
                )
                assert found is None
                assert len(hasher.verified) == 1  # the dummy hash: as long as a wrong password
            found = authenticate(
                session, username="alice", password="correct horse", user_model=LegacyUser
            )
            assert found is alice  # the session is still usable
    finally:
        LocalBase.metadata.drop_all(engine)
        LocalBase.registry.dispose()


# -- which user model -------------------------------------------------------------------


@pytest.fixture
def second_user_model() -> Iterator[type[UserMixin]]:
    """Another mapped class using UserMixin, with a subclass, for this test only."""

    class LocalBase(DeclarativeBase):
        pass

    class StaffUser(UserMixin, LocalBase):
        __tablename__ = "staff_users"
        id: Mapped[int] = mapped_column(primary_key=True)
        kind: Mapped[str] = mapped_column(String(20))
        __mapper_args__: ClassVar[dict[str, Any]] = {
            "polymorphic_on": "kind",
            "polymorphic_identity": "staff",
        }

    class Supervisor(StaffUser):
        __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "supervisor"}

    yield StaffUser
    LocalBase.registry.dispose()  # unmapped: no longer a candidate for the next tests


def test_the_one_mapped_class_using_user_mixin_is_found_by_itself(
    session: Session, alice: User
) -> None:
    assert authenticate(session, username="alice", password="correct horse") is alice


def test_several_user_models_are_named_in_the_error(
    session: Session, alice: User, second_user_model: type[UserMixin]
) -> None:
    with pytest.raises(LookupError) as ambiguous:
        authenticate(session, username="alice", password="correct horse")

    # A mapped subclass (Supervisor) is covered by its parent, so it is no candidate.
    assert str(ambiguous.value) == (
        "Several mapped classes use UserMixin (tests.auth.test_authenticate."
        "second_user_model.<locals>.StaffUser, tests.models.User); "
        "pass user_model= to say which one authenticate() should use."
    )
    user = authenticate(session, username="alice", password="correct horse", user_model=User)
    assert user is alice


def test_no_user_model_at_all_is_a_clear_error() -> None:
    result = run_python(
        """
        from sqlalchemy.orm import Session
        from sa_signals.auth import authenticate
        try:
            authenticate(Session(), username="alice", password="correct horse")
        except LookupError as error:
            print(error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No mapped class uses UserMixin")


@pytest.mark.parametrize("user_model", [Note, UserMixin, "User", User()])
def test_a_user_model_that_is_no_mapped_user_mixin_class_is_refused(
    session: Session, user_model: Any
) -> None:
    with pytest.raises(TypeError, match="user_model must be a"):
        authenticate(session, username="alice", password="x", user_model=user_model)


# -- which session ----------------------------------------------------------------------


def test_something_that_is_not_a_session_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"takes a SQLAlchemy session .* not str"):
        authenticate("session", username="alice", password="correct horse")  # type: ignore[call-overload]


def test_an_async_session_is_refused_with_the_way_to_call_it() -> None:
    with pytest.raises(TypeError, match=r"await session\.run_sync\(authenticate"):
        authenticate(AsyncSession(), username="alice", password="correct horse")  # type: ignore[call-overload]


@on_every_async_driver
def test_with_an_async_session_authenticate_runs_through_run_sync(
    engine: Engine, database: Database, alice: User
) -> None:
    async def main() -> Any:
        async_engine = database.async_engine()
        try:
            async with async_sessionmaker(async_engine)() as session:
                user = await session.run_sync(
                    authenticate, None, username="alice", password="correct horse"
                )
                assert user is not None
                login(session, user)
                await session.commit()
                return await session.scalar(select(User.last_login))
        finally:
            await async_engine.dispose()

    assert asyncio.run(main()) is not None
