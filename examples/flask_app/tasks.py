"""The demo's background work, on Celery: telling a post's author about a new
comment runs in a worker, delivered through sa-signals' outbox.

With ``CELERY_BROKER_URL`` set, tasks go to that broker: run a worker with
``celery -A examples.flask_app.worker worker``, and a relay for what the broker
missed with ``python -m sa_signals.celery relay --db $DATABASE_URL --app
examples.flask_app.tasks:celery_app --loop``. Without it the demo needs no broker:
each task runs in this process right after the commit (Celery's eager mode),
still written to the outbox and published from it.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from examples.blog.models import Comment, Email
from sa_signals import post_save
from sa_signals.celery import task_receiver

__all__ = ["SessionLocal", "celery_app"]

broker = os.environ.get("CELERY_BROKER_URL")
celery_app = Celery("examples.flask_app", broker=broker, set_as_current=False)
celery_app.conf.task_always_eager = broker is None

# The workers' sessions; create_app() binds them to the app's engine.
SessionLocal = sessionmaker()


# A database that is busy for a moment (SQLite's lock while the app marks the
# event sent, a deadlock on a server) fails the task: its session is rolled
# back, and the task runs again a moment later rather than lose the e-mail.
@task_receiver(
    post_save,
    sender=Comment,
    app=celery_app,
    session_factory=SessionLocal,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
)
def tell_the_author_about_a_comment(
    sender: type[Comment],
    instance: Comment,
    created: bool,
    raw: bool,
    session: Session,
    **kwargs: Any,
) -> None:
    """In the worker: ``instance`` was loaded again in ``session``, which is
    committed when this returns."""
    post = instance.post
    if created and not raw and post.author_id != instance.author_id:
        session.add(
            Email(
                recipient=post.author.email,
                subject=f"New comment on {post.title!r}",
                body=instance.body,
            )
        )
