"""Registering, logging in and out, and knowing who is logged in.

The web session (a signed cookie) holds the user's id only; the user is loaded
again for every request, so that a deactivated account is out at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from examples.blog.models import User
from examples.flask_app.extensions import db
from examples.flask_app.forms import LoginForm, RegisterForm
from sa_signals.auth import authenticate, login, logout

blueprint = Blueprint("accounts", __name__)

View = TypeVar("View", bound=Callable[..., Any])


@blueprint.before_app_request
def load_logged_in_user() -> None:
    user_id = session.get("user_id")
    user = db.session.get(User, user_id) if user_id is not None else None
    g.user = user if user is not None and user.is_active else None


def login_required(view: View) -> View:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            flash("Log in first.")
            return redirect(url_for("accounts.login_view"))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


@blueprint.route("/register", methods=["GET", "POST"])
def register() -> str | Response:
    form = RegisterForm()
    if form.validate_on_submit():
        user = User(username=form.username.data, email=form.email.data)
        user.set_password(form.password.data)
        db.session.add(user)
        login(db.session, user, request)
        db.session.commit()  # the welcome e-mail goes out after this commit
        _remember(user)
        flash(f"Welcome, {user.username}.")
        return redirect(url_for("posts.index"))
    return render_template("register.html", form=form)


@blueprint.route("/login", methods=["GET", "POST"])
def login_view() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(
            db.session,
            request,
            user_model=User,
            username=form.username.data,
            password=form.password.data,
        )
        if user is None:
            db.session.commit()  # the audit line that user_login_failed added
            flash("Wrong username or password.")
            return render_template("login.html", form=form), 401  # type: ignore[return-value]
        login(db.session, user, request)  # sets last_login; audited
        db.session.commit()
        _remember(user)
        flash(f"Hello, {user.username}.")
        return redirect(url_for("posts.index"))
    return render_template("login.html", form=form)


@blueprint.post("/logout")
@login_required
def logout_view() -> Response:
    # A POST whose CSRF token CSRFProtect checked before this view ran.
    logout(db.session, g.user, request)
    db.session.commit()
    session.clear()
    flash("Logged out.")
    return redirect(url_for("posts.index"))


def _remember(user: User) -> None:
    session.clear()  # a new session at login: a session id planted earlier is worthless
    session["user_id"] = user.id
