"""The demo's starting data: one user to log in as, and a first post."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from examples.blog.models import Comment, Post, Tag, User

__all__ = ["DEMO_PASSWORD", "DEMO_USERNAME", "seed"]

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "signals-demo"  # a demo account on a local database, nothing more


def seed(session: Session) -> bool:
    """Add the demo user and a welcome post, unless the user exists; say whether
    anything was added. The caller commits."""
    if session.scalar(select(User).where(User.username == DEMO_USERNAME)) is not None:
        return False
    demo = User(username=DEMO_USERNAME, email="demo@example.test")
    demo.set_password(DEMO_PASSWORD)
    session.add(
        Post(
            author=demo,
            title="Welcome to the sa-signals demo",
            body="Edit this post, comment on it or delete it, then open the audit log.",
            tags=Tag.named(session, ["demo", "signals"]),
            comments=[Comment(author=demo, body="Comments are deleted with their post.")],
        )
    )
    return True
