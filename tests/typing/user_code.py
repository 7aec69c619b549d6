"""Code as a user of sa-signals writes it, which ``mypy --strict`` must accept
(``test_typing.py`` checks it; nothing runs it). Each public entry point appears
the way the README shows it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from sqlalchemy import ForeignKey, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from sa_signals import (
    Signal,
    on_commit,
    post_delete,
    post_save,
    pre_save,
    raw_mode,
    receiver,
    signals_disabled,
)
from sa_signals.celery import outbox_table, relay_outbox, task_receiver
from sa_signals.testing import capture, capture_on_commit_callbacks, mute


class Base(DeclarativeBase):
    metadata = MetaData()


outbox = outbox_table(Base.metadata)


class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)


class Order(Base):
    __tablename__ = "order"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    reference: Mapped[str]


# -- receivers, typed as precisely as the user likes --------------------------------------


@receiver(post_save, sender=Order)
def notify(
    sender: type[Order],
    instance: Order,
    created: bool,
    changes: dict[str, tuple[Any, Any]],
    **kwargs: Any,
) -> None:
    if created:
        print(instance.reference, changes)


@receiver([pre_save, post_save], sender=Order, weak=False, dispatch_uid="orders.audit")
def audit(sender: type[Order], instance: Order, **kwargs: Any) -> None: ...


@receiver(post_delete, on_commit=True)
def forget(sender: type[Base], instance: Base, **kwargs: Any) -> None: ...


@receiver(post_save, sender=Order)
async def index(instance: Order, **kwargs: Any) -> None: ...


# A decorated function keeps its own type: it can still be called directly.
notify(Order, Order(reference="A-1"), created=True, changes={})

order_placed = Signal()
connected: Callable[..., None] = order_placed.connect(audit)
order_placed.send(Order, instance=Order(reference="A-2"))
post_save.disconnect(notify, sender=Order)


# -- after the commit ---------------------------------------------------------------------


def place(session: Session) -> None:
    order = Order(reference="A-3")
    session.add(order)
    on_commit(lambda: print("placed", order.id), session)
    on_commit(print, session, robust=True)
    with raw_mode(session), signals_disabled(session):
        session.flush()
    session.commit()


# -- in the background --------------------------------------------------------------------


class AppContextTask(Task):  # type: ignore[type-arg]  # as Flask's Celery pattern
    pass


celery_app = Celery("shop", task_cls=AppContextTask)
SessionLocal = sessionmaker()


@task_receiver(post_save, sender=Order, app=celery_app, session_factory=SessionLocal, queue="mail")
def send_confirmation(instance: Order, session: Session, **kwargs: Any) -> None: ...


def relay(session: Session) -> int:
    published: int = relay_outbox(session.get_bind(), celery_app, batch_size=100)
    return published


# -- tests: the context managers, and the pytest plugin's fixtures -----------------------


def test_capture_and_mute(session: Session) -> None:
    with capture(post_save, sender=Order) as calls, mute(post_save, receiver=notify):
        session.add(Order(reference="A-4"))
        session.flush()
    assert calls[0]["created"] is True
    with capture_on_commit_callbacks(session, execute=True) as callbacks:
        session.commit()
    assert callbacks == []


def test_fixtures(
    sa_signals_capture: Callable[..., list[dict[str, Any]]],
    sa_signals_mute: Callable[..., None],
    sa_signals_capture_on_commit_callbacks: Callable[..., Any],
    session: Session,
) -> None:
    calls = sa_signals_capture(post_save, sender=Order)
    sa_signals_mute(post_delete)
    with sa_signals_capture_on_commit_callbacks(session, execute=True):
        session.commit()
    assert calls == []
