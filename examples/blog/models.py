"""The blog's tables: users, posts with their comments and tags, the audit log,
and the e-mails the application sends.

The Alembic revisions in ``migrations/versions`` build exactly this schema
(``alembic check`` finds no difference). Constraint names follow one naming
convention, so that every database names them alike and a migration can drop
them by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, MetaData, String, Table, Text, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    scoped_session,
)

from sa_signals.auth import UserMixin
from sa_signals.celery import outbox_table
from sa_signals.types import UTCDateTime

__all__ = ["AuditEntry", "Base", "Comment", "Email", "Post", "Tag", "User", "outbox", "post_tags"]


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def now() -> datetime:
    return datetime.now(UTC)


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    posts: Mapped[list[Post]] = relationship(back_populates="author")

    def __repr__(self) -> str:
        return f"<User {self.username}>"


post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    # Set once, from the title, by a pre_save receiver (see blog.receivers).
    slug: Mapped[str] = mapped_column(String(220), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), onupdate=now)

    author: Mapped[User] = relationship(back_populates="posts")
    # Deleting a post deletes its comments, one by one through the ORM, so that
    # each gets its pre_delete and post_delete.
    comments: Mapped[list[Comment]] = relationship(
        back_populates="post", cascade="all, delete-orphan", order_by="Comment.id"
    )
    tags: Mapped[list[Tag]] = relationship(
        secondary=post_tags, back_populates="posts", order_by="Tag.name"
    )

    def __repr__(self) -> str:
        return f"<Post {self.slug}>"


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)

    post: Mapped[Post] = relationship(back_populates="comments")
    author: Mapped[User] = relationship()


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    posts: Mapped[list[Post]] = relationship(secondary=post_tags, back_populates="tags")

    @classmethod
    def named(cls, session: Session | scoped_session[Any], names: Iterable[str]) -> list[Tag]:
        """The tags called ``names``: the existing ones, and new ones for the rest
        (written with the post they are given to)."""
        wanted = sorted(set(names))
        existing = {
            tag.name: tag for tag in session.scalars(select(cls).where(cls.name.in_(wanted)))
        }
        return [existing.get(name) or cls(name=name) for name in wanted]


class AuditEntry(Base):
    """One line of the audit log, written by receivers in the same transaction as
    what it describes: a rolled-back change leaves no line."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, index=True)
    actor: Mapped[str | None] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(250))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Email(Base):
    """An e-mail the application sent: the demo writes it here instead of to an
    SMTP server, after the commit of the work it announces."""

    __tablename__ = "emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(250))
    body: Mapped[str] = mapped_column(Text)


# Events of background receivers (sa_signals.celery), written with the changes.
outbox = outbox_table(Base.metadata)
