"""What the API takes and gives, as Pydantic models.

Input is checked whole before the route runs: a request with one bad field
(an empty title, a tag too long, an unknown field) gets a ``422`` and nothing
of it is written, not even the parts that were right.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sa_signals.auth import MAX_PASSWORD_LENGTH

__all__ = [
    "AuditLine",
    "CommentIn",
    "CommentOut",
    "Credentials",
    "EmailOut",
    "NewUser",
    "PostChanges",
    "PostIn",
    "PostOut",
    "Retitle",
    "Token",
    "UserOut",
]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TagName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Username = Annotated[str, StringConstraints(min_length=1, max_length=150)]


class Input(BaseModel):
    """A request body: a field the API does not know is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class NewUser(Input):
    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,150}$")]
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)]
    password: Annotated[str, StringConstraints(min_length=8, max_length=MAX_PASSWORD_LENGTH)]


class Credentials(Input):
    username: Username
    password: Annotated[str, StringConstraints(max_length=MAX_PASSWORD_LENGTH)]


class PostIn(Input):
    title: Title
    body: Text
    tags: Annotated[list[TagName], Field(max_length=10)] = []


class PostChanges(Input):
    """A post's new values; a field left out keeps its value."""

    title: Title | None = None
    body: Text | None = None
    tags: Annotated[list[TagName], Field(max_length=10)] | None = None


class Retitle(Input):
    """One post of a bulk edit: its id and its new title."""

    id: int
    title: Title


class CommentIn(Input):
    body: Text


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class UserOut(BaseModel):
    id: int
    username: str


class PostOut(BaseModel):
    id: int
    slug: str
    title: str
    body: str
    author: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime | None


class CommentOut(BaseModel):
    id: int
    post_id: int
    author: str
    body: str


class AuditLine(BaseModel):
    at: datetime
    actor: str | None
    action: str
    subject: str
    details: dict[str, Any]


class EmailOut(BaseModel):
    sent_at: datetime
    recipient: str
    subject: str
    body: str
