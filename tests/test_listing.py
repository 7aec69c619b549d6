"""list_receivers(): which receivers run, read from the signals' own registries.

Each receiver is listed with its signal, its sender, its name and where it is
defined, how it is held and how a send reaches it, in the order a send calls
it; a receiver or sender that was garbage-collected is not listed."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

import sa_signals
from sa_signals import (
    ConnectedReceiver,
    ModelSignal,
    Signal,
    list_receivers,
    post_save,
    pre_save,
    receiver,
)
from sa_signals.auth import user_logged_in
from sa_signals.celery import task_receiver
from tests.listing_app.signals import order_shipped as imported_from_the_app
from tests.models import Base, Order, Tag

order_shipped = Signal(doc="Sent when an order leaves the warehouse.")
order_paid = ModelSignal(doc="Sent when an order is paid, with the session of the payment.")


@pytest.fixture(autouse=True)
def nothing_stays_connected_to_this_modules_signals() -> Iterator[None]:
    yield
    for signal in (order_shipped, order_paid):
        signal._clear_state()  # blinker's helper for tests: disconnects everything


def defined_at(function: Callable[..., Any]) -> tuple[str, int]:
    """Where ``inspect`` finds a function's source: its file, and its first line
    (its first decorator's, for a decorated function)."""
    return inspect.getsourcefile(function) or "", inspect.getsourcelines(function)[1]


def where(row: ConnectedReceiver) -> tuple[str | None, int | None]:
    return row.file, row.line


def email_the_customer(sender: type[Order], **kwargs: Any) -> None:
    """A receiver for the tests to connect."""


def test_a_receiver_is_listed_with_its_signal_sender_and_where_it_is_defined() -> None:
    receiver(order_shipped, sender=Order)(email_the_customer)

    assert list_receivers(order_shipped) == [
        ConnectedReceiver(
            signal="tests.test_listing.order_shipped",
            sender="tests.models.Order",
            receiver="email_the_customer",
            module="tests.test_listing",
            file=__file__,
            line=defined_at(email_the_customer)[1],
            weak=True,
            dispatch_uid=None,
            delivery="sync",
            task=None,
        )
    ]


def test_sync_async_and_on_commit_receivers_are_told_apart() -> None:
    def record_the_payment(**kwargs: Any) -> None:
        pass

    async def tell_the_bank(**kwargs: Any) -> None:
        pass

    def send_the_receipt(**kwargs: Any) -> None:
        pass

    order_paid.connect(record_the_payment, sender=Order)
    order_paid.connect(tell_the_bank, sender=Order)
    order_paid.connect(send_the_receipt, sender=Order, on_commit=True)

    assert [
        (row.receiver.rpartition(".")[2], row.delivery) for row in list_receivers(order_paid)
    ] == [
        ("record_the_payment", "sync"),
        ("tell_the_bank", "async"),
        ("send_the_receipt", "on_commit"),
    ]


def test_how_a_receiver_is_held_and_its_dispatch_uid_are_listed_as_connected() -> None:
    def weakly(**kwargs: Any) -> None:
        pass

    def strongly(**kwargs: Any) -> None:
        pass

    order_shipped.connect(weakly)
    order_shipped.connect(strongly, weak=False, dispatch_uid=("shipping", 2))

    assert [(row.weak, row.dispatch_uid) for row in list_receivers(order_shipped)] == [
        (True, None),
        (False, ("shipping", 2)),
    ]


def test_any_sender_a_class_a_table_and_a_string_are_each_named() -> None:
    def any_sender(**kwargs: Any) -> None:
        pass

    def a_model(**kwargs: Any) -> None:
        pass

    def a_carrier(**kwargs: Any) -> None:
        pass

    order_shipped.connect(any_sender)
    order_shipped.connect(a_model, sender=Tag)
    order_shipped.connect(a_carrier, sender="carrier")  # no weak reference to a str
    order_shipped.connect(a_carrier, sender=Base.metadata.tables["order_tag"])

    assert [row.sender for row in list_receivers(order_shipped)] == [
        None,
        "tests.models.Tag",
        "carrier",
        "order_tag",  # str() of a Table: its name
    ]


def test_a_bound_method_is_listed_as_its_class_and_function() -> None:
    class Ledger:
        def record(self, **kwargs: Any) -> None:
            pass

    ledger = Ledger()
    order_shipped.connect(ledger.record)

    (row,) = list_receivers(order_shipped)
    assert row.receiver.endswith("<locals>.Ledger.record")
    assert where(row) == defined_at(Ledger.record)
    assert row.weak


def test_a_callable_object_is_listed_where_its_call_is_defined() -> None:
    class Notifier:
        def __call__(self, **kwargs: Any) -> None:
            pass

    notifier = Notifier()
    order_shipped.connect(notifier)

    (row,) = list_receivers(order_shipped)
    assert row.receiver == repr(notifier)  # what Django's messages call it too
    assert where(row) == defined_at(Notifier.__call__)


def test_a_background_receiver_is_listed_as_the_function_its_task_runs() -> None:
    app = Celery("listing", set_as_current=False)

    def invoice(**kwargs: Any) -> None:
        pass

    task_name = f"{__name__}.{invoice.__qualname__}"  # task_receiver()'s default
    task_receiver(post_save, sender=Order, app=app, session_factory=sessionmaker())(invoice)
    try:
        background = [row for row in list_receivers(post_save, Order) if row.task is not None]
    finally:
        post_save.disconnect(sender=Order, dispatch_uid=task_name)

    assert task_name in app.tasks
    assert background == [
        ConnectedReceiver(
            signal="sa_signals.post_save",
            sender="tests.models.Order",
            receiver=invoice.__qualname__,
            module="tests.test_listing",
            file=__file__,
            line=defined_at(invoice)[1],
            weak=False,  # the signal holds the outbox writer, which holds the function
            dispatch_uid=task_name,  # task_receiver() connects it with its task's name
            delivery="background",
            task=task_name,
        )
    ]


def test_receivers_are_listed_in_the_order_a_send_calls_them() -> None:
    """Run for real: what the listing says of a save is what the save calls."""
    called: list[str] = []

    def first(**kwargs: Any) -> None:
        called.append("first")

    def for_every_sender(sender: Any, **kwargs: Any) -> None:
        if sender is Order:
            called.append("for_every_sender")

    def last(**kwargs: Any) -> None:
        called.append("last")

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine, tables=[Base.metadata.tables["orders"]])
    with (
        pre_save.connected_to(first, sender=Order),
        pre_save.connected_to(for_every_sender),
        pre_save.connected_to(last, sender=Order),
    ):
        listed = [
            row.receiver.rpartition(".")[2]
            for row in list_receivers(pre_save, Order)
            if row.module == __name__  # not another test module's, if any stayed
        ]
        with Session(engine) as session:
            session.add(Order(reference="A-1"))
            session.commit()
    engine.dispose()

    assert listed == called == ["first", "for_every_sender", "last"]


def test_a_sender_lists_its_own_receivers_and_those_of_any_sender() -> None:
    def for_orders(**kwargs: Any) -> None:
        pass

    def for_tags(**kwargs: Any) -> None:
        pass

    def for_everything(**kwargs: Any) -> None:
        pass

    order_shipped.connect(for_orders, sender=Order)
    order_shipped.connect(for_tags, sender=Tag)
    order_shipped.connect(for_everything)

    def names(rows: list[ConnectedReceiver]) -> list[str]:
        return [row.receiver.rpartition(".")[2] for row in rows]

    assert names(list_receivers(order_shipped, sender=Order)) == ["for_orders", "for_everything"]
    assert names(list_receivers(order_shipped, sender="anyone")) == ["for_everything"]
    assert names(list_receivers(order_shipped)) == ["for_orders", "for_tags", "for_everything"]


def test_signals_are_listed_in_the_order_they_were_made() -> None:
    def shipped(**kwargs: Any) -> None:
        pass

    def paid(**kwargs: Any) -> None:
        pass

    order_paid.connect(paid, sender=Order)  # connected first, made second
    order_shipped.connect(shipped, sender=Order)

    listed = [row.signal for row in list_receivers(sender=Order)]
    assert listed.index("tests.test_listing.order_shipped") < listed.index(
        "tests.test_listing.order_paid"
    )


def test_a_collected_weak_receiver_is_no_longer_listed() -> None:
    def short_lived(**kwargs: Any) -> None:
        pass

    order_shipped.connect(short_lived)
    assert len(list_receivers(order_shipped)) == 1

    del short_lived
    gc.collect()

    assert list_receivers(order_shipped) == []


def test_a_receiver_of_a_collected_sender_is_no_longer_listed() -> None:
    class Temporary:
        pass

    def for_the_temporary(**kwargs: Any) -> None:
        pass

    order_shipped.connect(for_the_temporary, sender=Temporary, weak=False)
    assert len(list_receivers(order_shipped)) == 1

    del Temporary
    gc.collect()

    assert list_receivers(order_shipped) == []


def test_a_signal_is_named_by_its_public_module_not_one_that_imports_it() -> None:
    def listen(**kwargs: Any) -> None:
        pass

    signals = (post_save, user_logged_in, imported_from_the_app, order_shipped)
    for signal in signals:
        signal.connect(listen, sender=Order)
    try:
        names = {
            row.signal for row in list_receivers(sender=Order) if row.receiver.endswith("listen")
        }
    finally:
        for signal in signals:
            signal.disconnect(listen, sender=Order)

    assert names == {
        "sa_signals.post_save",  # not sa_signals.signals.post_save, nor this module's import
        "sa_signals.auth.user_logged_in",  # re-exported by sa_signals.auth, its package
        "tests.listing_app.signals.order_shipped",  # where it is made, not where it is used
        "tests.test_listing.order_shipped",
    }
    assert sa_signals.post_save is post_save


def test_a_signal_no_module_binds_is_named_by_the_module_that_made_it() -> None:
    local = Signal()

    def listen(**kwargs: Any) -> None:
        pass

    local.connect(listen)

    (row,) = list_receivers(local)
    assert row.signal == f"<unnamed signal of tests.test_listing at {id(local):#x}>"


def test_only_a_signal_can_be_listed() -> None:
    with pytest.raises(TypeError, match=r"not of 'post_save'"):
        list_receivers("post_save")  # type: ignore[arg-type]
