"""Receivers of every kind the listing tells apart, connected on import."""

from __future__ import annotations

from typing import Any

from celery import Celery
from sqlalchemy.orm import sessionmaker

from sa_signals import post_save, receiver
from sa_signals.celery import task_receiver
from tests.listing_app.models import Order
from tests.listing_app.signals import order_shipped

__all__ = ["log_the_shipment"]

celery_app = Celery("tests.listing_app", set_as_current=False)


@receiver(post_save, sender=Order)
def audit(**kwargs: Any) -> None:
    pass


@receiver(post_save, sender=Order, on_commit=True)
def email_the_customer(**kwargs: Any) -> None:
    pass


@task_receiver(post_save, sender=Order, app=celery_app, session_factory=sessionmaker())
def invoice(**kwargs: Any) -> None:
    pass


@receiver(order_shipped)
async def notify_the_warehouse(**kwargs: Any) -> None:
    pass


@receiver(order_shipped, sender="carrier", weak=False, dispatch_uid="tracking")
def track_the_parcel(**kwargs: Any) -> None:
    pass


class Ledger:
    def record(self, **kwargs: Any) -> None:
        pass


ledger = Ledger()
order_shipped.connect(ledger.record, sender=Order)


def log_the_shipment(**kwargs: Any) -> None:
    """Connected by ``create_app()``."""
