"""The Celery app the relay command is pointed at in the tests (``--app
tests.celery.relay_app:app``), configured from the environment as a deployment's
would be: its broker, its queue, and the background receiver whose events it
publishes (a relay publishes only the tasks of receivers its app declares)."""

import os
from typing import Any

from celery import Celery
from sqlalchemy.orm import sessionmaker

from sa_signals import post_save
from sa_signals.celery import task_receiver
from tests.models import Order

app = Celery("relay", broker=os.environ["SA_SIGNALS_TEST_BROKER"], set_as_current=False)
app.conf.task_default_queue = os.environ["SA_SIGNALS_TEST_QUEUE"]


@task_receiver(
    post_save,
    sender=Order,
    app=app,
    session_factory=sessionmaker(),
    name=os.environ["SA_SIGNALS_TEST_TASK"],
)
def notify(**kwargs: Any) -> None:
    """Runs in the test's worker, which declares the same task: never here."""
