"""The FastAPI demo's background work, on Celery: telling a post's author about
a new comment runs in a worker, delivered through sa-signals' outbox.

The event is written to the outbox by the request's flush, in its transaction
(on the async driver's connection), and published right after its commit. The
worker is a sync Celery worker: its sessions are sync ones, on the database's
sync driver (``DATABASE_URL`` as Alembic takes it).

With ``CELERY_BROKER_URL`` set, tasks go to that broker, on the queue
``CELERY_QUEUE`` (``examples.fastapi_app`` by default: never the Flask demo's):
run a worker with ``celery -A examples.fastapi_app.worker worker``, and a relay
for what the broker missed with ``python -m sa_signals.celery relay --db
$DATABASE_URL --app examples.fastapi_app.tasks:celery_app --loop``. Without it
the demo needs no broker: each task runs in the app's process right after the
commit (Celery's eager mode), still through the outbox. That is for trying the
demo only: the task's sync work then holds the event loop, and every request
with it, until it is done.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from examples.blog.database import open_engine
from examples.blog.emails import new_comment_email
from examples.blog.models import Comment
from sa_signals import post_save
from sa_signals.celery import task_receiver

__all__ = ["celery_app"]

broker = os.environ.get("CELERY_BROKER_URL")
celery_app = Celery("examples.fastapi_app", broker=broker, set_as_current=False)
celery_app.conf.task_always_eager = broker is None
celery_app.conf.task_default_queue = os.environ.get("CELERY_QUEUE") or "examples.fastapi_app"

# The worker's sessions: sync ones, on the demo database's sync driver.
worker_sessions = sessionmaker(open_engine())


# A database that is busy for a moment (SQLite's write lock, a deadlock on a
# server) fails the task: its session is rolled back, and the task runs again a
# moment later rather than lose the e-mail.
@task_receiver(
    post_save,
    sender=Comment,
    app=celery_app,
    session_factory=worker_sessions,
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
    email = new_comment_email(instance) if created and not raw else None
    if email is not None:
        session.add(email)
