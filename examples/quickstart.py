"""The quickstart: Django-style model signals on plain SQLAlchemy.

Run it with ``python examples/quickstart.py``: it creates ``quickstart.sqlite3``
in the current directory, then creates, updates, deletes and rolls back rows,
printing what each receiver gets.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Numeric, String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from sa_signals import on_commit, post_delete, post_save, pre_delete, pre_save, receiver


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="new")
    total: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    __tablename__ = "order_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    product: Mapped[str] = mapped_column(String(50))
    order: Mapped[Order] = relationship(back_populates="lines")


# -- receivers, exactly as a Django project writes them ---------------------------------


@receiver(pre_save, sender=Order)
def normalise_reference(sender: type[Order], instance: Order, **kwargs: Any) -> None:
    instance.reference = instance.reference.upper()  # written by the same flush


@receiver(post_save, sender=Order)
def report_save(
    sender: type[Order], instance: Order, created: bool, changes: dict[str, Any], **kwargs: Any
) -> None:
    if created:
        print(f"  post_save: created order #{instance.id} {instance.reference}")
    else:
        described = ", ".join(
            f"{field} {old!r} -> {new!r}" for field, (old, new) in changes.items()
        )
        print(f"  post_save: updated order #{instance.id}: {described}")


@receiver(pre_delete)
def report_delete(sender: type, instance: Any, origin: Any, **kwargs: Any) -> None:
    cause = "" if origin is instance else f" (cascade from {type(origin).__name__} #{origin.id})"
    print(f"  pre_delete: {sender.__name__} #{instance.id}{cause}")


@receiver(post_save, sender=Order, on_commit=True)
def confirm_committed(sender: type[Order], instance: Order, created: bool, **kwargs: Any) -> None:
    # Deferred: runs after the commit, and never for a rolled-back change.
    action = "created" if created else "updated"
    print(f"  after commit: order {instance.reference} was {action} for good")


@receiver(post_delete, sender=Order)
def report_gone(sender: type[Order], instance: Order, **kwargs: Any) -> None:
    print(f"  post_delete: order {instance.reference} is gone (its columns are still readable)")


def main() -> None:
    engine = create_engine("sqlite:///quickstart.sqlite3")
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)

    with Session(engine) as session:
        print("create an order and commit:")
        order = Order(
            reference="a-1001", lines=[OrderLine(product="pen"), OrderLine(product="ink")]
        )
        session.add(order)
        session.commit()

        print("update it after the commit (every attribute expired), then commit:")
        order.status = "paid"  # the real old value is fetched: 'new'
        order.total = Decimal("12.50")
        session.commit()

        print("assign the same value again: no UPDATE, no signal")
        order.status = "paid"
        session.commit()

        print("create another order, flush, then roll back:")
        session.add(Order(reference="a-1002"))
        on_commit(lambda: print("  never printed: the transaction is rolled back"), session)
        session.flush()  # post_save is sent at flush, inside the transaction...
        session.rollback()  # ...so the row it reported is undone, and nothing is deferred
        count = session.scalar(select(func.count()).select_from(Order))
        print(f"  after the rollback the table holds {count} order(s)")

        print("delete the first order (its lines go by cascade):")
        session.delete(order)
        session.commit()


if __name__ == "__main__":
    main()
