"""The demo's Celery worker: ``celery -A examples.flask_app.worker worker``
(with ``CELERY_BROKER_URL`` set). It builds the Flask app for its configuration
and database, and serves no requests."""

from __future__ import annotations

import secrets

from examples.blog.traces import trace_if_asked
from examples.flask_app import create_app
from examples.flask_app.tasks import celery_app, run_tasks_in

flask_app = create_app({"SECRET_KEY": secrets.token_hex(32)})
run_tasks_in(flask_app)
trace_if_asked()  # SA_SIGNALS_DEMO_TRACES=console: the background receivers' spans
app = celery_app
