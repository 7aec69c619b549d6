"""The FastAPI demo's Celery worker: ``celery -A examples.fastapi_app.worker
worker`` (with ``CELERY_BROKER_URL`` set, and ``CELERY_QUEUE`` if the app has
one). It needs the background receiver and the models, not the web app."""

from __future__ import annotations

from examples.blog.traces import trace_if_asked
from examples.fastapi_app.tasks import celery_app

app = celery_app
trace_if_asked()  # SA_SIGNALS_DEMO_TRACES=console: the background receiver's spans
