"""What the receivers did, to read: the audit log, and the e-mails sent to the
user who asks.

The audit log is every user's to read here, because showing it is the demo's
point; a real application would keep it for its staff.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from examples.blog.models import AuditEntry, Email
from examples.fastapi_app.accounts import CurrentUser
from examples.fastapi_app.schemas import AuditLine, EmailOut
from examples.fastapi_app.sessions import Session

__all__ = ["router"]

router = APIRouter(tags=["records"])

PAGE = 100  # lines shown, newest first


@router.get("/audit")
async def audit_log(user: CurrentUser, session: Session) -> list[AuditLine]:
    entries = await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(PAGE))
    return [
        AuditLine(at=e.at, actor=e.actor, action=e.action, subject=e.subject, details=e.details)
        for e in entries
    ]


@router.get("/emails")
async def emails(user: CurrentUser, session: Session) -> list[EmailOut]:
    mine = select(Email).where(Email.recipient == user.email)
    sent = await session.scalars(mine.order_by(Email.id.desc()).limit(PAGE))
    return [
        EmailOut(sent_at=e.sent_at, recipient=e.recipient, subject=e.subject, body=e.body)
        for e in sent
    ]
