"""The Celery app the relay command is pointed at in the tests (``--app
tests.celery.relay_app:app``), configured from the environment as a deployment's
would be."""

import os

from celery import Celery

app = Celery("relay", broker=os.environ["SA_SIGNALS_TEST_BROKER"], set_as_current=False)
app.conf.task_default_queue = os.environ["SA_SIGNALS_TEST_QUEUE"]
