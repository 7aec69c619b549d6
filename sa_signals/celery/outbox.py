"""The outbox table, and writing an event into it in the transaction of the
change it reports.

A row is one event waiting to reach the broker: written by the flush that made
the change (so it commits, or rolls back, with the change: a rolled-back
SAVEPOINT takes its events along), published right after the commit, and
otherwise by ``relay_outbox`` later. ``sent_at`` is set once the broker
confirmed it; ``claimed_until`` is the lease of the relay publishing it now, so
that a relay that dies mid-way lets another take over when the lease ends;
``attempts`` counts the claims, for whoever looks into an event that lingers.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, insert
from sqlalchemy.orm import Mapper, Session

from sa_signals.types import UTCDateTime

__all__ = ["OUTBOX_TABLE", "outbox_table"]

OUTBOX_TABLE = "sa_signals_outbox"


def outbox_table(metadata: MetaData) -> Table:
    """Declare the outbox table in the application's own ``metadata``, so that
    ``create_all()`` and ``alembic revision --autogenerate`` see it; calling it
    again with the same metadata returns the same ``Table``.

    The outbox must live in the database of the models whose events it holds:
    an event commits in the same transaction as its change, or not at all.
    """
    existing = metadata.tables.get(_key(metadata.schema))
    if existing is not None:
        return existing
    return Table(
        OUTBOX_TABLE,
        metadata,
        # The event's id, and the Celery task id it is published with.
        Column("id", String(36), primary_key=True),
        Column("task", String(255), nullable=False),  # the Celery task's name
        Column("payload", Text, nullable=False),  # the event's JSON, the task's one argument
        Column("options", Text, nullable=False),  # how to publish it: queue, countdown...
        Column("created_at", UTCDateTime(), nullable=False),
        Column("claimed_until", UTCDateTime(), nullable=True),
        Column("sent_at", UTCDateTime(), nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Index(f"ix_{OUTBOX_TABLE}_pending", "sent_at", "created_at"),
    )


def find_outbox_table(metadata: MetaData) -> Table | None:
    """The outbox declared in ``metadata``, if any."""
    return metadata.tables.get(_key(metadata.schema))


@functools.cache
def standalone_outbox_table(schema: str | None = None) -> Table:
    """The outbox as the relay sees it: without the application's models."""
    return outbox_table(MetaData(schema=schema))


def _key(schema: str | None) -> str:
    return f"{schema}.{OUTBOX_TABLE}" if schema else OUTBOX_TABLE


def write_event(
    session: Session,
    mapper: Mapper[Any],
    table: Table,
    event_id: str,
    task: str,
    event: str,
    options: str,
) -> None:
    """Insert one event in the session's transaction, on the connection that
    writes ``mapper``'s rows (a plain INSERT: no flush, no signal)."""
    connection = session.connection(bind_arguments={"mapper": mapper})
    connection.execute(
        insert(table).values(
            id=event_id,
            task=task,
            payload=event,
            options=options,
            created_at=datetime.now(UTC),
            attempts=0,
        )
    )
