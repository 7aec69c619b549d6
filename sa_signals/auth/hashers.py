"""Password hashing: Argon2id through argon2-cffi, nothing hand-written.

argon2-cffi is the optional dependency ``sa-signals[auth]``. It is imported on
first use, so that ``import sa_signals`` never needs it, and neither does
``import sa_signals.auth`` (an Alembic environment that only wants the columns of
``UserMixin``, say); hashing without it raises an ``ImportError`` that names the
extra to install.

The hasher is one per process, configured at start-up: argon2-cffi's own
defaults (its ``RFC_9106_LOW_MEMORY`` profile today: Argon2id, 3 passes over
64 MiB, 4 lanes), which follow the library's releases. ``check_password``
rehashes a password whose hash was made with other parameters, so a change of
defaults reaches every account at its next login. ``set_password_hasher`` exists
for test suites, which want cheap parameters; production code has no reason to
call it.

Passwords are checked here before anything is hashed: the hasher would accept
a megabyte, but each login would then hash a megabyte, and a value that is not
a ``str`` would fail deep inside argon2 (or be hashed as its ``repr``).
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = ["MAX_PASSWORD_LENGTH", "set_password_hasher"]

# Django's limit from its fix for CVE-2013-1443 (a password-length DoS): longer
# than any passphrase a person types or a password manager generates.
MAX_PASSWORD_LENGTH = 4096


class Verification(NamedTuple):
    matches: bool
    needs_rehash: bool  # only ever True when ``matches``


@dataclass(frozen=True, slots=True)
class _Hashing:
    hasher: PasswordHasher
    # A hash, made with the hasher's own parameters, of a random secret nobody
    # knows: verifying against it costs what verifying a real hash costs.
    dummy_hash: str


_chosen_hasher: PasswordHasher | None = None  # None: argon2-cffi's defaults
_hashing: _Hashing | None = None  # made on first use, dropped when the hasher changes


def _current() -> _Hashing:
    hashing = _hashing
    if hashing is None:
        hashing = _set_up(_chosen_hasher)
    return hashing


def _set_up(chosen: PasswordHasher | None) -> _Hashing:
    global _hashing
    try:
        from argon2 import PasswordHasher
    except ImportError as error:
        raise ImportError(
            "sa_signals.auth hashes passwords with argon2-cffi, which is not installed: "
            "pip install 'sa-signals[auth]'"
        ) from error

    hasher = chosen if chosen is not None else PasswordHasher()
    _hashing = _Hashing(hasher, hasher.hash(secrets.token_urlsafe(32)))
    return _hashing


def set_password_hasher(hasher: PasswordHasher | None) -> PasswordHasher | None:
    """Use ``hasher`` (an ``argon2.PasswordHasher``) from now on; ``None`` goes
    back to argon2-cffi's defaults. Returns the hasher chosen before (``None`` for
    the defaults), so that a test fixture can put it back.

    For test suites: ``PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)``
    hashes in microseconds. Hashes it made are rehashed with the real parameters
    by the first successful ``check_password`` in production, should one leak there.
    """
    global _chosen_hasher, _hashing
    if hasher is not None:
        from argon2 import PasswordHasher, Type

        if not isinstance(hasher, PasswordHasher):
            raise TypeError(
                f"set_password_hasher() takes an argon2.PasswordHasher or None, not {hasher!r}."
            )
        if hasher.type is not Type.ID:
            variant = hasher.type.name
            raise ValueError(
                f"set_password_hasher() takes an Argon2id hasher; this one makes {variant} "
                "hashes (leave out type=, or say type=argon2.Type.ID)."
            )
    previous = _chosen_hasher
    _chosen_hasher, _hashing = hasher, None
    return previous


def get_password_hasher() -> PasswordHasher:
    """The ``argon2.PasswordHasher`` in use."""
    return _current().hasher


def validate_password(raw: object) -> str:
    """``raw``, if it can be a password; otherwise the error that says why.

    The messages never quote the value: they end up in logs.

    :raises TypeError: ``raw`` is not a ``str``.
    :raises ValueError: ``raw`` is empty, longer than ``MAX_PASSWORD_LENGTH``
        characters, or not encodable as UTF-8 (a lone surrogate, which JSON allows).
    """
    if not isinstance(raw, str):
        raise TypeError(f"A password must be a str, not {type(raw).__name__}.")
    if not raw:
        raise ValueError("A password cannot be empty.")
    if len(raw) > MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"A password is at most {MAX_PASSWORD_LENGTH} characters long; this one has {len(raw)}."
        )
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "A password must be valid Unicode text; this one contains a lone surrogate."
        ) from None
    return raw


def is_argon2_hash(encoded: str) -> bool:
    return encoded.startswith("$argon2")


def hash_password(raw: str) -> str:
    """An Argon2id hash of ``raw``, which ``validate_password`` accepted."""
    return _current().hasher.hash(raw)


def verify_password(encoded: str | None, raw: str) -> Verification:
    """Whether ``raw`` matches ``encoded``, and whether ``encoded`` should be made
    again with the current parameters.

    Always runs the hasher once: against the dummy hash when ``encoded`` is no
    usable hash (``None``, another algorithm, garbage), so that an account
    without a password cannot be told apart by how fast it says no.
    """
    hashing = _current()  # first: it explains a missing argon2-cffi
    from argon2.exceptions import InvalidHashError, VerificationError

    if encoded is None or not is_argon2_hash(encoded):
        verify_against_dummy(raw)
        return Verification(matches=False, needs_rehash=False)
    try:
        hashing.hasher.verify(encoded, raw)
    except VerificationError:
        return Verification(matches=False, needs_rehash=False)
    except InvalidHashError:  # "$argon2..." but malformed: refused before any hashing
        verify_against_dummy(raw)
        return Verification(matches=False, needs_rehash=False)
    return Verification(matches=True, needs_rehash=hashing.hasher.check_needs_rehash(encoded))


def verify_against_dummy(raw: str) -> None:
    """Spend the time a wrong password costs, and learn nothing.

    ``authenticate()`` calls it for an unknown username: without it, "no such
    user" would answer in microseconds and "wrong password" in tens of
    milliseconds, telling an attacker which usernames exist.
    """
    hashing = _current()
    from argon2.exceptions import VerificationError

    with contextlib.suppress(VerificationError):
        hashing.hasher.verify(hashing.dummy_hash, raw)
