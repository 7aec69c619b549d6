"""post slugs: a unique, readable address for every post

A data migration in three steps, the usual way to add a required column to a
table that has rows: add it as nullable, fill it in for the existing posts,
then make it required and unique.

Revision ID: bf17b6ff0629
Revises: b30a7ce1165e
Create Date: 2026-11-30 14:25:56.330912
"""

import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "bf17b6ff0629"
down_revision: str | Sequence[str] | None = "b30a7ce1165e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The table as this revision knows it, not the model: the model will change.
posts = sa.table(
    "posts", sa.column("id", sa.Integer), sa.column("title"), sa.column("slug", sa.String)
)


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slug", sa.String(length=220), nullable=True))

    if context.is_offline_mode():
        # --sql cannot read the titles: existing posts get "post-<id>".
        op.execute(posts.update().values(slug=sa.literal("post-") + sa.cast(posts.c.id, sa.String)))
    else:
        fill_in_slugs(op.get_bind())

    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.alter_column("slug", existing_type=sa.String(length=220), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_posts_slug"), ["slug"])


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_posts_slug"), type_="unique")
        batch_op.drop_column("slug")


def fill_in_slugs(connection: sa.Connection) -> None:
    """The slug of each title, oldest post first; a later post with the same
    slug gets "-2", "-3"... The rules are written out here, frozen as they were
    when this ran, not imported from the application, whose rules may change."""
    taken: set[str] = set()
    for post_id, title in connection.execute(sa.select(posts.c.id, posts.c.title).order_by("id")):
        ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
        base = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:200].rstrip("-")
        slug, number = base or "post", 1
        while slug in taken:
            number += 1
            slug = f"{base or 'post'}-{number}"
        taken.add(slug)
        connection.execute(posts.update().where(posts.c.id == post_id).values(slug=slug))
