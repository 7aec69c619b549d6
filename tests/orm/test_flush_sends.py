"""The flush calls a model signal's plain receivers itself, its keyword arguments
written out (cheaper than ``send()``'s dict, once per object), and leaves the
send to ``send()`` when a receiver is deferred or async or something is muted.
Either way a receiver gets exactly the same arguments."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest
from sqlalchemy.orm import Session

from sa_signals import Signal, post_delete, post_save, pre_delete, pre_save
from sa_signals.testing import mute
from tests.conftest import Recorder
from tests.models import Customer, Order

Listen = Callable[..., Recorder]
FLUSH_SIGNALS = {
    "pre_save": pre_save,
    "post_save": post_save,
    "pre_delete": pre_delete,
    "post_delete": post_delete,
}


def insert_update_delete(session: Session, reference: str) -> None:
    order = Order(reference=reference)
    session.add(order)
    session.flush()
    order.status = "paid"
    session.flush()
    session.delete(order)
    session.flush()


def as_seen(call: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments, the order in it named by its reference (each run has its own)."""
    return {
        key: value.reference if isinstance(value, Order) else value for key, value in call.items()
    }


async def an_async_receiver(**kwargs: Any) -> None:
    pass


def a_deferred_receiver(**kwargs: Any) -> None:
    pass


def not_me(**kwargs: Any) -> None:
    pass


@pytest.fixture(params=["a deferred receiver", "an async receiver", "a muted receiver"])
def send_delivers(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[[Signal], AbstractContextManager[Any]]]:
    """Something beside the recorder that makes the flush hand its sends to ``send()``."""
    connected: list[tuple[Signal, Any]] = []

    def beside(signal: Signal) -> AbstractContextManager[Any]:
        if request.param == "a deferred receiver":
            signal.connect(a_deferred_receiver, sender=Order, on_commit=True)
            connected.append((signal, a_deferred_receiver))
            return nullcontext()
        if request.param == "an async receiver":
            signal.connect(an_async_receiver, sender=Order)
            connected.append((signal, an_async_receiver))
            return nullcontext()
        signal.connect(not_me, sender=Order)
        connected.append((signal, not_me))
        return mute(signal, receiver=not_me)

    yield beside
    for signal, connected_receiver in connected:
        signal.disconnect(connected_receiver, sender=Order)


@pytest.mark.parametrize("signal", FLUSH_SIGNALS.values(), ids=FLUSH_SIGNALS.keys())
def test_a_receiver_gets_the_same_arguments_whoever_delivers_them(
    session: Session,
    listen: Listen,
    signal: Signal,
    send_delivers: Callable[[Signal], AbstractContextManager[Any]],
) -> None:
    recorder = listen(signal, sender=Order)
    assert signal._plain_routes_for(Order) is not None  # the flush calls it itself
    insert_update_delete(session, "A-1")
    called_by_the_flush = [list(as_seen(call).items()) for call in recorder.calls]
    recorder.calls.clear()

    with send_delivers(signal):
        assert signal._plain_routes_for(Order) is None  # send() delivers
        insert_update_delete(session, "A-1")

    # The same arguments, in the same order (a receiver may iterate over them).
    assert [list(as_seen(call).items()) for call in recorder.calls] == called_by_the_flush
    assert len(called_by_the_flush) == (1 if signal in (pre_delete, post_delete) else 2)


def test_a_receiver_for_another_sender_is_not_called(session: Session, listen: Listen) -> None:
    other = listen(post_save, sender=Customer)
    insert_update_delete(session, "A-1")
    assert other.calls == []


def test_receivers_run_in_connection_order_and_the_first_failure_stops_the_flush(
    session: Session, listen: Listen
) -> None:
    first, second, third = (listen(post_save, sender=Order) for _ in range(3))
    order: list[str] = []
    first.side_effect = lambda **_: order.append("first")
    second.side_effect = lambda **_: order.append("second")
    third.side_effect = lambda **_: order.append("third")
    session.add(Order(reference="A-1"))
    session.flush()
    assert order == ["first", "second", "third"]

    def refuse(**kwargs: Any) -> None:
        raise RuntimeError("refused")

    second.side_effect = refuse
    session.add(Order(reference="A-2"))
    with pytest.raises(RuntimeError, match="refused"):
        session.flush()
    assert len(third.calls) == 1  # not reached


def test_a_weakly_held_receiver_that_was_collected_is_skipped(session: Session) -> None:
    calls: list[str] = []

    def gone(**kwargs: Any) -> None:
        calls.append("gone")

    def kept(**kwargs: Any) -> None:
        calls.append("kept")

    post_save.connect(gone, sender=Order)  # weakly, as by default
    post_save.connect(kept, sender=Order)
    try:
        del gone
        gc.collect()
        session.add(Order(reference="A-1"))
        session.flush()
        assert calls == ["kept"]
    finally:
        post_save.disconnect(kept, sender=Order)
