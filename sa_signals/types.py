"""Column types: ``UTCDateTime``, timezone-aware UTC on every database (the
auth module's ``last_login``, the outbox's timestamps).

``DateTime(timezone=True)`` keeps the offset on PostgreSQL only: SQLite and
MySQL/MariaDB store the wall-clock time and hand back a naive ``datetime``, and
MySQL/MariaDB also drop the microseconds unless asked for them. A login time
whose meaning depends on the database is a bug waiting for a daylight-saving
change, so this type stores UTC and always returns an aware UTC ``datetime``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["UTCDateTime"]

# Dialects whose datetime columns cannot hold an offset: the value is stored as
# naive UTC there, and read back as UTC.
_NAIVE_DIALECTS = frozenset({"sqlite", "mysql", "mariadb"})


class UTCDateTime(TypeDecorator[datetime]):
    """A ``datetime`` column that takes aware datetimes only and returns UTC.

    A naive ``datetime`` is refused (at flush) rather than guessed at: whether it
    meant local time or UTC is exactly the ambiguity this type exists to remove.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"A UTCDateTime column takes a datetime, not {type(value).__name__}.")
        if value.utcoffset() is None:
            raise ValueError(
                f"A UTCDateTime column takes timezone-aware datetimes; {value!r} is naive "
                "(use datetime.now(UTC), or attach a tzinfo)."
            )
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name in _NAIVE_DIALECTS else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
