"""The README's Flask example, run for real: the shape a Flask app copies."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request
from flask import session as cookie
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sa_signals.auth import authenticate, login, logout, user_logged_out, user_login_failed
from sa_signals.auth.credentials import CLEANSED_SUBSTITUTE
from tests.databases import Database
from tests.models import Base, User


def make_app(database: Database) -> tuple[Flask, SQLAlchemy]:
    app = Flask(__name__)
    app.secret_key = "test only"
    app.config["SQLALCHEMY_DATABASE_URI"] = database.url.render_as_string(hide_password=False)
    db = SQLAlchemy(app, model_class=Base)

    @app.post("/login")
    def login_view() -> str:
        user = authenticate(
            db.session,
            request,
            username=request.form.get("username"),
            password=request.form.get("password"),
        )
        if user is None:
            abort(401)
        login(db.session, user, request)
        db.session.commit()  # writes last_login (and a rehashed password)
        cookie.clear()  # a new session at login: no session fixation
        cookie["user_id"] = user.id  # type: ignore[attr-defined]
        return "welcome"

    @app.post("/logout")
    def logout_view() -> str:
        user_id = cookie.get("user_id")
        logout(db.session, db.session.get(User, user_id) if user_id else None, request)
        cookie.clear()
        return "bye"

    return app, db


def test_a_flask_app_logs_a_user_in_and_out_and_reports_the_failures(
    engine: Engine, database: Database
) -> None:
    with Session(engine) as session:
        alice = User(username="alice")
        alice.set_password("correct horse")
        session.add(alice)
        session.commit()

    heard: list[tuple[str, Any]] = []

    def failed(sender: Any, credentials: dict[str, Any], request: Any, **kwargs: Any) -> None:
        heard.append(("failed", (credentials, request.remote_addr)))

    def logged_out(sender: Any, user: User | None, request: Any, **kwargs: Any) -> None:
        heard.append(("logged out", user.username if user else None))

    user_login_failed.connect(failed)
    user_logged_out.connect(logged_out)
    app, db = make_app(database)
    try:
        client = app.test_client()
        wrong = client.post("/login", data={"username": "alice", "password": "wrong"})
        right = client.post("/login", data={"username": "alice", "password": "correct horse"})
        bye = client.post("/logout")
    finally:
        user_login_failed.disconnect(failed)
        user_logged_out.disconnect(logged_out)
        with app.app_context():
            db.engine.dispose()

    assert (wrong.status_code, right.status_code, bye.status_code) == (401, 200, 200)
    assert heard == [
        ("failed", ({"username": "alice", "password": CLEANSED_SUBSTITUTE}, "127.0.0.1")),
        ("logged out", "alice"),
    ]
    with Session(engine) as session:
        assert session.scalars(select(User.last_login)).one() is not None
