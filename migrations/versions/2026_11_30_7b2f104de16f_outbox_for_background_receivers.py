"""outbox for background receivers

The events of sa_signals.celery's task_receiver, written in the transaction of
the changes they report; declared by outbox_table(Base.metadata).

Revision ID: 7b2f104de16f
Revises: bf17b6ff0629
Create Date: 2026-11-30 23:50:14.923527
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sa_signals.types import UTCDateTime

revision: str = "7b2f104de16f"
down_revision: str | Sequence[str] | None = "bf17b6ff0629"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sa_signals_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("task", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sa_signals_outbox")),
    )
    with op.batch_alter_table("sa_signals_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sa_signals_outbox_pending", ["sent_at", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sa_signals_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_sa_signals_outbox_pending")

    op.drop_table("sa_signals_outbox")
