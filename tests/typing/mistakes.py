"""Mistakes that ``mypy --strict`` must catch before anything runs: each line
marked ``# error`` must have an error of mypy's, and no other line may
(``test_typing.py``). Nothing runs this file."""

from __future__ import annotations

from typing import Any

from celery import Celery
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from sa_signals import on_commit, post_save, receiver
from sa_signals.celery import task_receiver


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "order"
    id: Mapped[int] = mapped_column(primary_key=True)


@receiver(post_save, sendr=Order)  # error: a misspelt keyword
def notify(sender: type[Order], instance: Order, **kwargs: Any) -> None: ...


@receiver(post_save, sender=Order, on_commit="yes")  # error: on_commit is a bool
def index(sender: type[Order], instance: Order, **kwargs: Any) -> None: ...


@receiver(post_save, Order)  # error: the sender is given by keyword, as in Django
def audit(sender: type[Order], instance: Order, **kwargs: Any) -> None: ...


def place(session: Session) -> None:
    on_commit(lambda: None, session, robus=True)  # error: a misspelt keyword
    on_commit(session, lambda: None)  # error: the callback comes first


@task_receiver(post_save, sender=Order, app=Celery(), sesion_factory=sessionmaker())  # error
def send(instance: Order, **kwargs: Any) -> None: ...
