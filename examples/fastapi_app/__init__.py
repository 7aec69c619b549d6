"""The demo as an async application: FastAPI, an ``AsyncSession`` per request,
``sa_signals.auth``, and receivers that keep an audit log, moderate what is
written, and send e-mails after the commit or from a Celery worker.

Run it with ``python -m examples.fastapi_app`` (after ``alembic upgrade head``);
``create_app()`` is the application factory for tests and ASGI servers.
"""

from examples.fastapi_app.app import create_app

__all__ = ["create_app"]
