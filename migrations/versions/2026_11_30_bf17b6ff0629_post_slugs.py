"""post slugs: a unique, readable address for every post

A data migration in three steps, the usual way to add a required column to a
table that has rows: add it as nullable, fill it in for the existing posts,
then make it required and unique.

Revision ID: bf17b6ff0629
Revises: b30a7ce1165e
Create Date: 2026-11-30 14:25:56.330912
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from examples.blog.slugs import unique_slug

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

    connection = op.get_bind()
    taken: set[str] = set()
    for post_id, title in connection.execute(sa.select(posts.c.id, posts.c.title).order_by("id")):
        slug = unique_slug(title, taken)  # the oldest post keeps the plain slug
        taken.add(slug)
        connection.execute(posts.update().where(posts.c.id == post_id).values(slug=slug))

    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.alter_column("slug", existing_type=sa.String(length=220), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_posts_slug"), ["slug"])


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_posts_slug"), type_="unique")
        batch_op.drop_column("slug")
