"""The demo as a Flask application: Flask-SQLAlchemy, ``sa_signals.auth``, and
receivers that keep an audit log and send e-mails.

Run it with ``python -m examples.flask_app`` (after ``alembic upgrade head``);
``create_app()`` is the application factory for tests and WSGI servers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, Response

from examples.blog.database import database_url, make_savepoints_real
from examples.flask_app import accounts, posts, wiring
from examples.flask_app import receivers as _receivers  # noqa: F401  (connects them)
from examples.flask_app import tasks as _tasks  # noqa: F401  (connects the background one)
from examples.flask_app.extensions import csrf, db

__all__ = ["create_app", "db"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application, configured for production unless ``config`` says otherwise.

    :param config: settings that replace the defaults; ``SECRET_KEY`` is required
        (it signs the session cookie and the CSRF tokens).
    """
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url().render_as_string(hide_password=False),
        # The session cookie: never readable by scripts, never sent by other
        # sites' forms, never sent over plain HTTP.
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=True,
        # A signed cookie stays valid until it expires, logout or not: keep that short.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=1024 * 1024,  # no form here needs more
    )
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("create_app() needs a SECRET_KEY: it signs sessions and CSRF tokens.")

    db.init_app(app)
    csrf.init_app(app)
    with app.app_context():
        make_savepoints_real(db.engine)
    app.register_blueprint(accounts.blueprint)
    app.register_blueprint(posts.blueprint)
    app.register_blueprint(wiring.blueprint)
    app.after_request(_security_headers)
    return app


def _security_headers(response: Response) -> Response:
    """No framing (a one-click delete button must not be clickjacked), no
    script from anywhere but this site, no guessing of content types."""
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
