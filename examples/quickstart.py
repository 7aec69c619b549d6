"""The quickstart: Django-style model signals on plain SQLAlchemy, on the demo
database.

Run ``alembic upgrade head``, then ``python -m examples.quickstart``: it creates,
updates, deletes and rolls back blog posts, printing what each receiver gets,
then leaves the demo's starting data (a user and a post) for the Flask app.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, inspect, select
from sqlalchemy.orm import Session

from examples.blog.database import open_engine
from examples.blog.models import Comment, Post, Tag, User, post_tags
from examples.blog.seed import DEMO_PASSWORD, DEMO_USERNAME, seed
from sa_signals import (
    m2m_changed,
    on_commit,
    post_delete,
    post_save,
    pre_delete,
    pre_save,
    receiver,
)

# -- receivers, exactly as a Django project writes them ---------------------------------


@receiver(pre_save, sender=Post)
def announce_save(sender: type[Post], instance: Post, update_fields: Any, **kwargs: Any) -> None:
    # blog.receivers' pre_save gave a new post its slug just before this one ran.
    what = "insert" if update_fields is None else f"update of {sorted(update_fields)}"
    print(f"  pre_save:  post {instance.title!r} (slug {instance.slug!r}), {what}")


@receiver(post_save, sender=Post)
@receiver(post_save, sender=Comment)
def report_save(
    sender: type, instance: Any, created: bool, changes: dict[str, Any], **kwargs: Any
) -> None:
    if created:
        print(f"  post_save: created {sender.__name__} #{instance.id}")
    else:
        described = ", ".join(
            f"{name} {_show(old)} -> {_show(new)}" for name, (old, new) in changes.items()
        )
        print(f"  post_save: updated {sender.__name__} #{instance.id}: {described}")


@receiver(m2m_changed, sender=post_tags)
def report_tags(
    sender: Table, instance: Post, action: str, pk_set: set[int], **kwargs: Any
) -> None:
    if action.startswith("post_"):
        print(f"  m2m_changed: {action} on post #{instance.id}, tag ids {sorted(pk_set or ())}")


@receiver(pre_delete, sender=Post)
@receiver(pre_delete, sender=Comment)
def report_delete(sender: type, instance: Any, origin: Any, **kwargs: Any) -> None:
    cause = "" if origin is instance else f" (cascade from {type(origin).__name__} #{origin.id})"
    print(f"  pre_delete: {sender.__name__} #{instance.id}{cause}")


@receiver(post_delete, sender=Post)
def report_gone(sender: type[Post], instance: Post, **kwargs: Any) -> None:
    print(f"  post_delete: post {instance.title!r} is gone (its columns are still readable)")


@receiver(post_save, sender=Post, on_commit=True)
def confirm_committed(sender: type[Post], instance: Post, created: bool, **kwargs: Any) -> None:
    # Deferred: runs after the commit, and never for a rolled-back change.
    print(f"  after commit: post {instance.slug!r} was {'created' if created else 'updated'}")


def main() -> None:
    engine = open_engine()
    if not inspect(engine).has_table("posts"):
        raise SystemExit(f"{engine.url} has no blog tables yet: run `alembic upgrade head` first.")

    with Session(engine) as session:
        if seed(session):
            print("seed the demo: a user and a welcome post, and commit:")
            session.commit()
        author = session.scalars(select(User).where(User.username == DEMO_USERNAME)).one()

        print("create a post with a comment and two tags, and commit:")
        post = Post(
            author=author,
            title="Signals, on plain SQLAlchemy",
            body="Receivers written for Django run here unchanged.",
            tags=Tag.named(session, ["signals", "sqlalchemy"]),
            comments=[Comment(author=author, body="First!")],
        )
        session.add(post)
        session.commit()

        print("update it after the commit (every attribute expired), then commit:")
        post.title = "Signals on plain SQLAlchemy"  # the real old value is fetched
        session.commit()

        print("assign a loaded attribute its own value: no UPDATE, no signal")
        post.title = post.title  # read first: SQLAlchemy compares, and writes nothing
        session.commit()

        print("create another post, flush, then roll back:")
        session.add(Post(author=author, title="Never published", body="..."))
        on_commit(lambda: print("  never printed: the transaction is rolled back"), session)
        session.flush()  # post_save is sent at flush, inside the transaction...
        session.rollback()  # ...so the row it reported is undone, and nothing is deferred
        count = session.scalar(
            select(func.count()).select_from(Post).where(Post.title == "Never published")
        )
        print(f"  after the rollback the database holds {count} such post(s)")

        print("delete the post (its comment goes by cascade):")
        session.delete(post)
        session.commit()

    print(
        f"\nThe demo database is ready ({engine.url.render_as_string()}). Log in to the Flask "
        f"app as {DEMO_USERNAME!r} with the password {DEMO_PASSWORD!r}."
    )
    engine.dispose()


def _show(value: Any) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else repr(value)


if __name__ == "__main__":
    main()
