"""UserMixin: its columns on every database, and how passwords are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from sa_signals.auth import MAX_PASSWORD_LENGTH, set_password_hasher
from sa_signals.types import UTCDateTime
from tests.auth.conftest import WatchedHasher
from tests.models import User


def stored(engine: Engine, username: str) -> User:
    """The user as the database has it, read by a session of its own."""
    with Session(engine) as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        session.expunge(user)
        return user


def saved_user(session: Session, username: str = "alice", password: str | None = "s3cret!") -> User:
    user = User(username=username)
    user.set_password(password)
    session.add(user)
    session.commit()
    return user


# -- the columns ------------------------------------------------------------------------


def test_user_mixin_gives_the_columns_of_the_contract() -> None:
    columns = inspect(User).columns

    assert columns["username"].unique
    assert not columns["username"].nullable
    assert columns["password_hash"].nullable
    assert not columns["is_active"].nullable
    assert columns["last_login"].nullable
    assert isinstance(columns["last_login"].type, UTCDateTime)


def test_a_new_user_is_active_and_has_never_logged_in(session: Session) -> None:
    user = saved_user(session)

    assert user.is_active is True
    assert user.last_login is None


def test_a_row_inserted_with_plain_sql_is_active_too(session: Session) -> None:
    session.execute(text("INSERT INTO users (username) VALUES ('bob')"))
    session.commit()

    assert session.scalars(select(User.is_active)).one() is True


def test_usernames_are_unique(session: Session) -> None:
    saved_user(session, "alice")
    session.add(User(username="alice"))

    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_usernames_differing_in_case_are_two_accounts_unless_the_collation_folds_case(
    session: Session, backend: str
) -> None:
    # MariaDB's default collation compares case-insensitively, so its UNIQUE
    # constraint refuses "Alice" next to "alice"; authenticate() stays exact.
    saved_user(session, "alice")
    session.add(User(username="Alice"))

    if backend == "mariadb":
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
    else:
        session.commit()
        assert sorted(session.scalars(select(User.username))) == ["Alice", "alice"]


def test_last_login_is_stored_and_read_back_as_aware_utc_on_every_database(
    session: Session, engine: Engine, backend: str
) -> None:
    paris_summer = timezone(timedelta(hours=2))
    logged_in_at = datetime(2024, 7, 14, 23, 30, 15, 123456, tzinfo=paris_summer)
    user = saved_user(session)
    user.last_login = logged_in_at
    session.commit()

    with Session(engine) as reader:
        if backend == "postgresql":  # the server would otherwise answer in UTC already
            reader.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
        last_login = reader.scalars(select(User.last_login)).one()

    assert last_login == logged_in_at  # the same instant, microseconds included
    assert last_login is not None
    assert last_login.tzinfo is UTC
    assert (last_login.day, last_login.hour) == (14, 21)


def test_a_naive_last_login_is_refused_rather_than_guessed_at(session: Session) -> None:
    user = saved_user(session)
    user.last_login = datetime(2024, 7, 14, 23, 30)

    with pytest.raises(StatementError, match="timezone-aware"):
        session.flush()
    session.rollback()


# -- set_password -----------------------------------------------------------------------


def test_a_password_is_stored_only_as_a_salted_argon2id_hash(
    session: Session, engine: Engine
) -> None:
    saved_user(session, "alice", "correct horse")
    saved_user(session, "bob", "correct horse")

    alice, bob = stored(engine, "alice"), stored(engine, "bob")
    assert alice.password_hash is not None
    assert alice.password_hash.startswith("$argon2id$")
    assert "correct horse" not in alice.password_hash
    assert alice.password_hash != bob.password_hash  # salted: same password, other hash


def test_check_password_accepts_the_right_password_only(session: Session) -> None:
    user = saved_user(session, password="correct horse")

    assert user.check_password("correct horse")
    assert not user.check_password("correct horse ")
    assert not user.check_password("Correct horse")
    assert not user.check_password("wrong")


def test_set_password_none_makes_the_account_unusable(session: Session, engine: Engine) -> None:
    user = saved_user(session, password="correct horse")
    user.set_password(None)
    session.commit()

    assert stored(engine, "alice").password_hash is None
    assert not user.has_usable_password()
    assert not user.check_password("correct horse")


def test_set_unusable_password_is_djangos_name_for_it(session: Session) -> None:
    user = saved_user(session, password="correct horse")
    user.set_unusable_password()

    assert user.password_hash is None
    assert not user.check_password("correct horse")


def test_a_user_created_without_a_password_cannot_log_in_with_any(session: Session) -> None:
    user = User(username="alice")
    session.add(user)
    session.commit()

    assert not user.has_usable_password()
    assert not user.check_password("")
    assert not user.check_password("anything")


def test_set_password_refuses_an_empty_password_and_keeps_the_old_one(session: Session) -> None:
    user = saved_user(session, password="correct horse")

    with pytest.raises(ValueError, match="cannot be empty"):
        user.set_password("")
    assert user.check_password("correct horse")


@pytest.mark.parametrize("raw", [b"correct horse", 123456, ["correct horse"]])
def test_set_password_refuses_a_value_that_is_not_a_string(raw: object) -> None:
    with pytest.raises(TypeError, match=f"must be a str, not {type(raw).__name__}"):
        User(username="alice").set_password(raw)  # type: ignore[arg-type]


def test_set_password_takes_up_to_the_maximum_length_and_refuses_more(
    session: Session,
) -> None:
    longest = "x" * MAX_PASSWORD_LENGTH
    user = saved_user(session, password=longest)
    assert user.check_password(longest)

    with pytest.raises(ValueError, match=f"at most {MAX_PASSWORD_LENGTH} characters"):
        user.set_password(longest + "x")
    with pytest.raises(ValueError, match="at most"):
        user.set_password("x" * 1_000_000)


def test_set_password_refuses_text_that_is_not_valid_unicode() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        User(username="alice").set_password("abc\ud800")  # JSON allows "\ud800"


@pytest.mark.parametrize(
    ("raw", "reason"), [("my secret " * 500, "at most"), ("my secret\ud800", "lone surrogate")]
)
def test_error_messages_never_quote_the_password(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as refused:
        User(username="alice").set_password(raw)
    assert "secret" not in str(refused.value)


def test_unicode_passwords_work(session: Session) -> None:
    user = saved_user(session, "zoë", "пароль 🔑 密码 café")

    assert user.check_password("пароль 🔑 密码 café")
    assert not user.check_password("пароль 🔑 密码 cafe")


# -- check_password ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "", "x" * (MAX_PASSWORD_LENGTH + 1), "x" * 1_000_000])
def test_check_password_says_no_to_what_cannot_be_a_password_without_hashing(
    session: Session, hasher: WatchedHasher, raw: str | None
) -> None:
    user = saved_user(session, password="correct horse")

    assert user.check_password(raw) is False
    assert hasher.verified == []


@pytest.mark.parametrize("raw", [b"correct horse", 42])
def test_check_password_raises_for_a_value_that_is_not_a_string(
    session: Session, raw: object
) -> None:
    user = saved_user(session, password="correct horse")

    with pytest.raises(TypeError, match=f"must be a str, not {type(raw).__name__}"):
        user.check_password(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "password_hash",
    [
        "pbkdf2_sha256$870000$salt$hash",  # imported from Django: not ours to verify
        "$argon2id$v=19$m=8,t=1,p=1$garbage",
        "!unusable",
        "",
    ],
)
def test_a_stored_value_that_is_no_argon2_hash_never_matches_and_never_crashes(
    session: Session, hasher: WatchedHasher, password_hash: str
) -> None:
    user = saved_user(session)
    user.password_hash = password_hash

    assert user.check_password("a guess") is False
    # The dummy hash ran: no faster than a wrong password.
    assert [password for _, password in hasher.verified] == ["a guess"]


def test_an_account_without_a_usable_password_still_runs_the_hasher_once(
    session: Session, hasher: WatchedHasher
) -> None:
    user = saved_user(session, password=None)

    assert user.check_password("a guess") is False
    assert [password for _, password in hasher.verified] == ["a guess"]


# -- rehashing --------------------------------------------------------------------------


def test_an_outdated_hash_is_upgraded_by_a_successful_check_password(
    session: Session, engine: Engine
) -> None:
    set_password_hasher(None)  # production parameters...
    weaker = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    user = User(username="alice", password_hash=weaker.hash("correct horse"))  # ...and an old hash
    session.add(user)
    session.commit()

    assert user.check_password("correct horse")
    session.commit()  # the new hash is written by the caller's next commit

    upgraded = stored(engine, "alice").password_hash
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not PasswordHasher().check_needs_rehash(upgraded)
    assert user.check_password("correct horse")


def test_an_argon2i_hash_is_upgraded_to_argon2id(session: Session, engine: Engine) -> None:
    argon2i = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.I)
    user = User(username="alice", password_hash=argon2i.hash("correct horse"))
    session.add(user)
    session.commit()

    assert user.check_password("correct horse")
    session.commit()

    upgraded = stored(engine, "alice").password_hash
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$v=19$m=8,t=1,p=1$")


def test_a_wrong_password_leaves_an_outdated_hash_alone(session: Session) -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1)
    old_hash = weaker.hash("correct horse")
    user = User(username="alice", password_hash=old_hash)
    session.add(user)
    session.commit()

    assert not user.check_password("wrong")
    assert user.password_hash == old_hash
    assert not session.is_modified(user)


def test_an_up_to_date_hash_is_not_rewritten(session: Session) -> None:
    user = saved_user(session, password="correct horse")
    current_hash = user.password_hash

    assert user.check_password("correct horse")
    assert user.password_hash == current_hash
    assert not session.is_modified(user)
