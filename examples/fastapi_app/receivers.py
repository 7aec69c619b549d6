"""What the application does when the blog changes, as signal receivers, under
an ``AsyncSession``:

* the audit log, written in the same transaction as the change it records
  (``post_save`` with its ``changes``, ``post_delete``, ``m2m_changed``,
  ``post_bulk_update``, the login signals): a rolled-back change leaves no line.
  Plain ``def`` receivers: SQLAlchemy runs them inside the AsyncSession's own
  greenlet, so they use the sync ``session`` they are given, queries included;
* moderation, an ``async def`` ``pre_save`` receiver awaited during the flush:
  it awaits a service (``moderation.review``) and refuses a post or comment by
  raising, which aborts the flush; nothing is written;
* the rule that only a post's author changes it, even in bulk
  (``pre_bulk_update``, which knows the keys of a by-primary-key UPDATE);
* the welcome and publication e-mails, ``async def`` receivers connected with
  ``on_commit=True``: awaited after the commit, never for a change that was
  rolled back (the e-mail about a new comment goes through Celery: ``tasks.py``).

An ``async def`` receiver runs in the middle of the flush, outside the greenlet:
it may await anything but the session's own I/O. ``session.add()`` is fine, a
query through ``session`` or a lazy load raises ``MissingGreenlet``. Work that
needs the database after the change belongs in an ``on_commit=True`` receiver,
with a session of its own, as the e-mails here.

Receivers are connected when this module is imported, as Django connects them
when an app is ready: they apply to every session of the process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, Update, select
from sqlalchemy.ext.asyncio import AsyncSession, async_session
from sqlalchemy.orm import Session
from starlette.requests import Request

from examples.blog.audit import collection_details, delete_details, describe, save_details
from examples.blog.models import AuditEntry, Comment, Email, Post, Tag, User, post_tags
from examples.fastapi_app.moderation import Refused, review
from examples.fastapi_app.sessions import ACTOR, REQUEST_ID, USER_ID
from sa_signals import (
    m2m_changed,
    post_bulk_update,
    post_delete,
    post_save,
    pre_bulk_update,
    pre_save,
    receiver,
)
from sa_signals.auth import user_logged_in, user_login_failed

__all__ = ["NotYourPosts"]


class NotYourPosts(PermissionError):
    """A change to posts of another author: the app answers ``403``."""


# -- moderation, awaited during the flush ------------------------------------------------------

MODERATED = frozenset({"title", "body"})


@receiver(pre_save, sender=Post)
@receiver(pre_save, sender=Comment)
async def moderate(
    sender: type[Post | Comment],
    instance: Post | Comment,
    update_fields: frozenset[str] | None,
    **kwargs: Any,
) -> None:
    """Before the INSERT or UPDATE: the flush waits for the service's answer."""
    if update_fields is not None and not update_fields & MODERATED:
        return  # a change to no text (tags, say)
    text = f"{instance.title}\n{instance.body}" if isinstance(instance, Post) else instance.body
    verdict = await review(text)
    if verdict is not None:
        raise Refused(f"The {sender.__name__.lower()} was refused: {verdict}.")


# -- only a post's author changes it, even in bulk ---------------------------------------------


@receiver(pre_bulk_update, sender=Post)
def only_authors_change_their_posts(
    sender: type[Post], statement: Update, pks: list[int] | None, session: Session, **kwargs: Any
) -> None:
    """Before a bulk UPDATE of posts made for a user (``session.info``), which
    must then name its posts (the by-primary-key form): each must be theirs."""
    user_id = session.info.get(USER_ID)
    if user_id is None:
        return  # a script or a worker: no user to check against
    if pks is None:
        raise NotYourPosts("A bulk UPDATE of posts made for a user must name its posts.")
    authors = dict(session.execute(select(Post.id, Post.author_id).where(Post.id.in_(pks))).all())
    foreign = sorted(pk for pk in pks if authors.get(pk) != user_id)
    if foreign:
        raise NotYourPosts(f"Posts {foreign} are not yours to change.")


# -- the audit log -------------------------------------------------------------------------------


@receiver(post_save, sender=Post)
@receiver(post_save, sender=Comment)
def audit_save(
    sender: type[Post | Comment],
    instance: Post | Comment,
    created: bool,
    changes: dict[str, tuple[Any, Any]],
    raw: bool,
    session: Session,
    **kwargs: Any,
) -> None:
    if raw:  # fixtures being loaded (sa_signals.raw_mode), as Django's loaddata
        return
    action = "created" if created else "updated"
    _audit(session, action, describe(instance), save_details(changes))


@receiver(post_delete, sender=Post)
@receiver(post_delete, sender=Comment)
def audit_delete(
    sender: type[Post | Comment],
    instance: Post | Comment,
    origin: Any,
    session: Session,
    **kwargs: Any,
) -> None:
    _audit(session, "deleted", describe(instance), delete_details(instance, origin))


@receiver(m2m_changed, sender=post_tags)
def audit_tags(
    sender: Table,
    instance: Post | Tag,
    action: str,
    objects: list[Any],
    session: Session,
    **kwargs: Any,
) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    verb = "tagged" if action == "post_add" else "untagged"
    _audit(session, verb, describe(instance), collection_details(instance, objects))


@receiver(post_bulk_update, sender=Post)
def audit_bulk_update(sender: type[Post], pks: list[int], session: Session, **kwargs: Any) -> None:
    """After the statement, with the keys of exactly the rows it updated."""
    for pk in pks:
        _audit(session, "updated in bulk", f"post #{pk}", {})


@receiver(user_logged_in, sender=User)
def audit_login(sender: type[User], request: Any, user: User, **kwargs: Any) -> None:
    session = _session_of(request)
    if session is not None:
        _audit(session, "logged in", describe(user), _client(request), actor=user.username)


@receiver(user_login_failed)
def audit_failed_login(
    sender: str, credentials: dict[str, Any], request: Any, **kwargs: Any
) -> None:
    # The credentials come cleansed: the password reads "********************".
    session = _session_of(request)
    if session is not None:
        details = {"credentials": credentials, **_client(request)}
        _audit(session, "login failed", f"user {credentials.get('username')!r}", details)


def _audit(
    session: Session | AsyncSession,
    action: str,
    subject: str,
    details: dict[str, Any],
    actor: str | None = None,
) -> None:
    """Add a line to the audit log, naming who acted and for which request; the
    session's flush or commit writes it with the rest of its work."""
    request_id = session.info.get(REQUEST_ID)
    if request_id is not None:
        details = {**details, "request": request_id}
    entry = AuditEntry(
        actor=actor or session.info.get(ACTOR),
        action=action,
        subject=subject[:250],
        details=details,
    )
    session.add(entry)


def _session_of(request: Any) -> AsyncSession | None:
    """The session of a request of this app (``sessions.request_session`` puts it
    there); ``None`` for a signal sent without one of our requests."""
    if not isinstance(request, Request):
        return None
    session = getattr(request.state, "session", None)
    return session if isinstance(session, AsyncSession) else None


def _client(request: Request) -> dict[str, Any]:
    return {"from": request.client.host} if request.client is not None else {}


# -- e-mails, after the commit -----------------------------------------------------------------


@receiver(post_save, sender=User, on_commit=True)
async def welcome_new_user(
    sender: type[User], instance: User, created: bool, raw: bool, session: Session, **kwargs: Any
) -> None:
    """Awaited after the commit; the user's values are readable without a query."""
    if created and not raw:
        async with _mail_session(session) as mail:
            mail.add(
                Email(
                    recipient=instance.email,
                    subject=f"Welcome, {instance.username}",
                    body="Your account on the sa-signals demo is ready.",
                )
            )


@receiver(post_save, sender=Post, on_commit=True)
async def announce_publication(
    sender: type[Post], instance: Post, created: bool, raw: bool, session: Session, **kwargs: Any
) -> None:
    """Only for a post that was committed: a post refused, or written and rolled
    back, is never announced."""
    if not created or raw:
        return
    async with _mail_session(session) as mail:
        # The post's own columns are readable without a query; its author, a
        # related object, is loaded in the mail's session.
        author = await mail.get_one(User, instance.author_id)
        mail.add(
            Email(
                recipient=author.email,
                subject=f"Published: {instance.title!r}",
                body=f"Your post is online at /posts/{instance.id}.",
            )
        )


@asynccontextmanager
async def _mail_session(session: Session) -> AsyncIterator[AsyncSession]:
    """A session and transaction of their own for the mail, on the database of
    the request's session: that session has just committed, and sending mail is
    no part of its work. (The demo writes e-mails to a table; a real application
    would hand them to its mailer here, or to a background task.)"""
    request_session = async_session(session)
    if request_session is None:
        raise TypeError("The demo's e-mails are sent for changes made by an AsyncSession.")
    async with AsyncSession(request_session.bind) as mail, mail.begin():
        yield mail
