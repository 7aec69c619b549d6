"""``UserMixin``: the columns and password methods of a user model.

The application declares its own class, on its own declarative base, and keeps
full control of the table (primary key, extra columns, table name)::

    class User(UserMixin, Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, true
from sqlalchemy.orm import Mapped, mapped_column

from sa_signals.auth import hashers
from sa_signals.types import UTCDateTime

__all__ = ["UserMixin"]

MAX_USERNAME_LENGTH = 150  # Django's


class UserMixin:
    """Columns ``username`` (unique), ``password_hash``, ``is_active`` and
    ``last_login``, and the methods that keep ``password_hash`` honest.

    ``username`` is compared exactly by ``authenticate()``: case, accents,
    trailing spaces and Unicode normalization all count, on every database.
    Normalize usernames yourself (before storing them and before authenticating)
    if your application wants ``Alice`` and ``alice`` to be one account.

    ``password_hash`` is ``NULL`` for an account that cannot log in with a
    password (a new user before ``set_password``, or after ``set_password(None)``),
    and otherwise an Argon2id hash (``$argon2id$...``); nothing else is ever
    stored in it by these methods.
    """

    username: Mapped[str] = mapped_column(String(MAX_USERNAME_LENGTH), unique=True)
    # Room for argon2 hashes with longer salts or outputs than the defaults (97 chars).
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    last_login: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    def set_password(self, raw: str | None) -> None:
        """Store an Argon2id hash of ``raw``; ``None`` makes the password unusable,
        as Django's ``set_unusable_password()``.

        The empty string is refused rather than made unusable: an empty password
        is almost always an empty form field, and turning it silently into
        "cannot log in" would hide that bug. Say ``set_password(None)`` when that
        is what you mean.

        The new hash is written by the session's next flush or commit.

        :raises TypeError: ``raw`` is neither a ``str`` nor ``None``.
        :raises ValueError: ``raw`` is empty, longer than
            ``sa_signals.auth.MAX_PASSWORD_LENGTH`` characters, or not valid Unicode.
        """
        if raw is None:
            self.password_hash = None
            return
        self.password_hash = hashers.hash_password(hashers.validate_password(raw))

    def set_unusable_password(self) -> None:
        """Django's name for ``set_password(None)``."""
        self.password_hash = None

    def has_usable_password(self) -> bool:
        return self.password_hash is not None and hashers.is_argon2_hash(self.password_hash)

    def check_password(self, raw: str | None) -> bool:
        """Whether ``raw`` is this user's password.

        Anything that cannot be a password (``None``, empty, over-long) is
        ``False`` without running the hasher; so is every password of an account
        whose password is unusable, after running it once (the time it takes
        does not tell such accounts apart). On success, a hash made with other
        parameters than the current ones is replaced by a new hash of ``raw``,
        written by the session's next flush or commit.

        :raises TypeError: ``raw`` is neither a ``str`` nor ``None``: a bug in the
            caller, which ``False`` would hide.
        """
        if raw is None:
            return False
        try:
            hashers.validate_password(raw)
        except ValueError:
            return False
        verification = hashers.verify_password(self.password_hash, raw)
        if verification.needs_rehash:
            self.password_hash = hashers.hash_password(raw)
        return verification.matches
