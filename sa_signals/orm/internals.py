"""The private SQLAlchemy API that sa-signals needs, in one place, each use
saying why no public API serves. Everything else in sa-signals uses SQLAlchemy's
public API only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Delete, Update
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.mapper import _all_registries

__all__ = ["autoflush", "existing_mappers", "resolved_statement", "runs_as_orm"]


def existing_mappers() -> list[Mapper[Any]]:
    """Every mapper made so far, in every registry. SQLAlchemy keeps no public
    list of registries; ``configure_mappers()`` walks this one."""
    return [mapper for registry in _all_registries() for mapper in registry.mappers]


def autoflush(session: Session) -> None:
    """Autoflush as a statement does: ``Session._autoflush()`` skips a session
    that is flushing already and says, in any error, that an autoflush raised
    it. ``flush()`` does neither, and SQLAlchemy has no public autoflush."""
    session._autoflush()


def resolved_statement(statement: Any) -> Any:
    """The statement a ``lambda_stmt()`` stands for (itself for any other):
    ``do_orm_execute`` hands over the lambda element, whose ``_resolved`` is the
    only way to the UPDATE or DELETE it builds."""
    return getattr(statement, "_resolved", statement)


def runs_as_orm(statement: Update | Delete) -> bool:
    """Whether SQLAlchemy runs this UPDATE or DELETE as the ORM's: a statement
    on a Table (``users.delete().where(User.id == 5)``) runs as Core, ORM
    criteria or not. This is SQLAlchemy's own test (``orm_pre_session_exec``);
    the public ``update_delete_options`` would say it too, but not for a
    ``lambda_stmt()``."""
    return "parententity" in statement.table._annotations
