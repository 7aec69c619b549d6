"""The demo's background work, on Celery: telling a post's author about a new
comment runs in a worker, delivered through sa-signals' outbox.

With ``CELERY_BROKER_URL`` set, tasks go to that broker: run a worker with
``celery -A examples.flask_app.worker worker``, and a relay for what the broker
missed with ``python -m sa_signals.celery relay --db $DATABASE_URL --app
examples.flask_app.tasks:celery_app --loop``. Without it the demo needs no broker:
each task runs in this process right after the commit (Celery's eager mode),
still written to the outbox and published from it.

Either way the task runs in a Flask app's context (``AppContextTask``), on that
app's database. A comment committed outside any app context (a script, a test
fixture) gets no e-mail in eager mode: the task fails at once, and the relay
logs the failure as the receiver's own (on logger ``sa_signals``).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from flask import Flask, has_app_context
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from examples.blog.emails import new_comment_email
from examples.blog.models import Comment
from examples.flask_app.extensions import db
from sa_signals import post_save
from sa_signals.celery import task_receiver

__all__ = ["celery_app", "run_tasks_in"]


class AppContextTask(Task):  # type: ignore[type-arg]  # celery-types: Task[P, R]
    """A task that runs in a Flask app's context, as in Flask's own Celery
    pattern, so that its session is on that app's database: in eager mode the
    app whose request committed the event (its context is the current one), in
    the worker the app given to ``run_tasks_in()``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return super().__call__(*args, **kwargs)
        if _worker_app is None:
            raise RuntimeError(
                f"{self.name} runs in a Flask app's context: commit from inside one (a "
                "request, or app.app_context()), or start the worker with "
                "`celery -A examples.flask_app.worker worker`."
            )
        with _worker_app.app_context():
            return super().__call__(*args, **kwargs)


broker = os.environ.get("CELERY_BROKER_URL")
celery_app = Celery(
    "examples.flask_app", broker=broker, set_as_current=False, task_cls=AppContextTask
)
celery_app.conf.task_always_eager = broker is None
_worker_app: Flask | None = None


def run_tasks_in(app: Flask) -> None:
    """The app whose context the worker's tasks run in (``worker.py``)."""
    global _worker_app
    _worker_app = app


def app_session() -> Session:
    """A session of the task's own, on the database of the app it runs for."""
    return Session(db.engine)


# A database that is busy for a moment (SQLite's lock while the app marks the
# event sent, a deadlock on a server) fails the task: its session is rolled
# back, and the task runs again a moment later rather than lose the e-mail.
@task_receiver(
    post_save,
    sender=Comment,
    app=celery_app,
    session_factory=app_session,
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
