"""What the application does when the blog changes, as signal receivers:

* the audit log, written in the same transaction as the change it records
  (``post_save`` with its ``changes``, ``post_delete``, ``m2m_changed``, and the
  login signals), so that a rolled-back change leaves no line;
* the welcome e-mail, sent only after the commit (``on_commit=True``), so that
  nobody is welcomed to an account that was rolled back (the e-mail about a new
  comment runs in the background: ``tasks.py``).

Receivers are connected when this module is imported, as Django connects them
when an app is ready.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Request, current_app, g, has_app_context, has_request_context
from sqlalchemy import Table, inspect
from sqlalchemy.orm import Session, scoped_session

from examples.blog.audit import collection_details, delete_details, describe, save_details
from examples.blog.models import AuditEntry, Comment, Email, Post, Tag, User, post_tags
from examples.flask_app.extensions import db
from sa_signals import m2m_changed, post_delete, post_save, receiver
from sa_signals.auth import user_logged_in, user_logged_out, user_login_failed

# -- the audit log ---------------------------------------------------------------------------


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


@receiver(user_logged_in, sender=User)
def audit_login(sender: type[User], request: Request | None, user: User, **kwargs: Any) -> None:
    _audit(db.session, "logged in", describe(user), _client(request), actor=user.username)


@receiver(user_logged_out, sender=User)
def audit_logout(sender: type[User], request: Request | None, user: User, **kwargs: Any) -> None:
    _audit(db.session, "logged out", describe(user), _client(request), actor=user.username)


@receiver(user_login_failed)
def audit_failed_login(
    sender: str, credentials: dict[str, Any], request: Request | None, **kwargs: Any
) -> None:
    # user_login_failed does not say which application failed a login; a
    # process may host several (the test suite does): record only our own.
    if not (has_app_context() and current_app.extensions.get("sqlalchemy") is db):
        return
    # The credentials come cleansed: the password reads "********************".
    details = {"credentials": credentials, **_client(request)}
    _audit(db.session, "login failed", f"user {credentials.get('username')!r}", details)


def _audit(
    session: Session | scoped_session[Any],
    action: str,
    subject: str,
    details: dict[str, Any],
    actor: str | None = None,
) -> None:
    """Add a line to the audit log; the caller's flush or commit writes it with
    the rest of its work (from post_save, before ``commit()`` returns)."""
    if actor is None and has_request_context() and g.get("user") is not None:
        actor = g.user.username
    session.add(AuditEntry(actor=actor, action=action, subject=subject[:250], details=details))


def _client(request: Request | None) -> dict[str, Any]:
    return {"from": request.remote_addr} if request is not None else {}


# -- e-mails, after the commit ---------------------------------------------------------------


@receiver(post_save, sender=User, on_commit=True)
def welcome_new_user(
    sender: type[User], instance: User, created: bool, raw: bool, session: Session, **kwargs: Any
) -> None:
    if created and not raw:  # the user's values are readable here without a query, after the commit
        _send_email(
            session,
            instance.email,
            f"Welcome, {instance.username}",
            "Your account on the sa-signals demo is ready.",
        )


@receiver(post_save, sender=Post, on_commit=True)
def confirm_publication(
    sender: type[Post], instance: Post, created: bool, raw: bool, session: Session, **kwargs: Any
) -> None:
    if not created or raw:
        return  # (and for a post written, then rolled back, no call at all)
    with _mail_session(session) as mail:
        # The post's own columns are readable here without a query; its author,
        # a related object, is loaded in the mail's session.
        author = mail.get_one(User, instance.author_id)
        mail.add(
            Email(
                recipient=author.email,
                subject=f"Published: {instance.title!r}",
                body=f"Your post is online at /posts/{instance.id}.",
            )
        )


def _send_email(session: Session, recipient: str, subject: str, body: str) -> None:
    with _mail_session(session) as mail:
        mail.add(Email(recipient=recipient, subject=subject, body=body))


@contextmanager
def _mail_session(session: Session) -> Iterator[Session]:
    """A session and transaction of their own for the mail: the request's
    session has just committed, and sending mail is no part of that work.

    (The demo writes e-mails to a table; a real application would hand them to
    its mailer here, or to a background task.)"""
    with Session(bind=session.get_bind(inspect(Email))) as mail, mail.begin():
        yield mail
