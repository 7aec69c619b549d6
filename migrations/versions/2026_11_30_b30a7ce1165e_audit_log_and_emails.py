"""audit log and sent e-mails

Revision ID: b30a7ce1165e
Revises: 2b464d9b5eef
Create Date: 2026-11-30 11:40:02.871355
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sa_signals.types

revision: str = "b30a7ce1165e"
down_revision: str | Sequence[str] | None = "2b464d9b5eef"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa_signals.types.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=150), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=250), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa_signals.types.UTCDateTime(), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=250), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emails")),
    )


def downgrade() -> None:
    op.drop_table("emails")
    op.drop_table("audit_log")
