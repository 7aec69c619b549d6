"""The application's model, in a metadata of its own, with the outbox that its
background receiver needs."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sa_signals.celery import outbox_table

__all__ = ["Order"]


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="new")


outbox = outbox_table(Base.metadata)
