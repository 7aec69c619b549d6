"""The forms, all CSRF-protected by Flask-WTF (``FlaskForm``)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, EmailField, PasswordField, StringField, TextAreaField
from wtforms.validators import EqualTo, InputRequired, Length, Regexp, ValidationError

from examples.blog.models import User
from examples.flask_app.extensions import db
from sa_signals.auth import MAX_PASSWORD_LENGTH


class RegisterForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[
            InputRequired(),
            Length(max=150),
            Regexp(r"^[\w.@+-]+$", message="Letters, digits and @ . + - _ only."),
        ],
    )
    email = EmailField(
        "E-mail",
        validators=[
            InputRequired(),
            Length(max=254),
            Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="That is no e-mail address."),
        ],
    )
    password = PasswordField(
        "Password", validators=[InputRequired(), Length(min=8, max=MAX_PASSWORD_LENGTH)]
    )
    confirm = PasswordField(
        "Password again", validators=[EqualTo("password", message="The passwords differ.")]
    )

    def validate_username(self, field: StringField) -> None:
        if db.session.scalar(select(User.id).where(User.username == field.data)) is not None:
            raise ValidationError("That username is taken.")


class LoginForm(FlaskForm):
    # authenticate() judges every value, and reports the failure; the length
    # limit only keeps a flood of megabyte usernames out of the audit log.
    username = StringField("Username", validators=[Length(max=150)])
    password = PasswordField("Password")


class PostForm(FlaskForm):
    title = StringField("Title", validators=[InputRequired(), Length(max=200)])
    body = TextAreaField("Text", validators=[InputRequired()])
    tags = StringField("Tags, separated by commas", validators=[Length(max=500)])
    roll_back = BooleanField("Write it, then roll back instead of committing")

    def tag_names(self) -> list[str]:
        names = (name.strip().lower() for name in (self.tags.data or "").split(","))
        return [name[:50] for name in names if name]


class CommentForm(FlaskForm):
    body = TextAreaField("Comment", validators=[InputRequired(), Length(max=5000)])
