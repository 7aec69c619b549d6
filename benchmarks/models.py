"""The mapped classes every flush benchmark writes, in plain SQLAlchemy.

``Item`` is what is measured: a few columns of the usual kinds, nothing that
would make SQLAlchemy's own work unusual (no relationships, no server defaults).
``Other`` exists so that receivers can listen to another model than the one
being flushed. Nothing here imports sa-signals.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, String, Table, delete, insert, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "Item", "Other", "item_rows", "new_items", "reset", "seed"]


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "bench_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int]
    note: Mapped[str | None] = mapped_column(String(200))


class Other(Base):
    __tablename__ = "bench_other"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


def _item_table() -> Table:
    return Base.metadata.tables[Item.__tablename__]


def item_rows(count: int) -> list[dict[str, Any]]:
    """Column values of ``count`` items, the same in every variant."""
    return [
        {"name": f"item {number}", "quantity": number, "note": "a note of some length"}
        for number in range(count)
    ]


def new_items(count: int) -> list[Item]:
    return [Item(**row) for row in item_rows(count)]


def reset(engine: Engine) -> None:
    """Empty the item table, so that every sample starts from the same state."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {Item.__tablename__} RESTART IDENTITY"))
        else:
            connection.execute(delete(_item_table()))


def seed(engine: Engine, count: int) -> None:
    """Insert ``count`` rows through Core (no ORM events, so no variant's
    listeners run): the rows that an update or delete benchmark then loads."""
    with engine.begin() as connection:
        connection.execute(insert(_item_table()), item_rows(count))
