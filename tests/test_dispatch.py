"""sa_signals.Signal behaves like django.dispatch.Signal, and is a blinker.Signal."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import blinker
import pytest

from sa_signals import Signal, receiver


class Order:
    pass


class Invoice:
    pass


class SpecialOrder(Order):
    pass


class Recorder:
    """A receiver that remembers the keyword arguments of each call."""

    def __init__(self, response: Any = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.response = response

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.response


# -- construction --------------------------------------------------------------


def test_a_signal_is_a_blinker_signal() -> None:
    assert isinstance(Signal(), blinker.Signal)


def test_a_signal_accepts_djangos_and_blinkers_constructor_arguments() -> None:
    assert Signal(use_caching=True).use_caching
    assert Signal(doc="Sent when an order ships.").__doc__ == "Sent when an order ships."


# -- send -----------------------------------------------------------------------


def test_receivers_get_signal_sender_and_named_arguments_as_keywords() -> None:
    signal, record = Signal(), Recorder("ok")
    signal.connect(record)

    responses = signal.send(Order, instance="o1", created=True)

    assert record.calls == [{"signal": signal, "sender": Order, "instance": "o1", "created": True}]
    assert responses == [(record, "ok")]


def test_sender_can_be_passed_by_keyword() -> None:
    signal, record = Signal(), Recorder()
    signal.connect(record, sender=Order)

    signal.send(sender=Order, instance="o1")

    assert record.calls == [{"signal": signal, "sender": Order, "instance": "o1"}]


def test_a_receiver_written_with_only_kwargs_works() -> None:
    signal, seen = Signal(), []

    def everything(**kwargs: Any) -> None:
        seen.append(kwargs["sender"])

    signal.connect(everything)
    signal.send(Order)
    assert seen == [Order]


def test_receivers_are_called_in_connection_order() -> None:
    signal, order = Signal(), []
    receivers = []
    for number in range(20):

        def numbered(number: int = number, **kwargs: Any) -> None:
            order.append(number)

        receivers.append(numbered)
        signal.connect(numbered, sender=Order if number % 2 else None)

    signal.send(Order)
    assert order == list(range(20))


def test_a_receiver_for_a_sender_ignores_other_senders_and_subclasses() -> None:
    signal, for_orders, for_anyone = Signal(), Recorder(), Recorder()
    signal.connect(for_orders, sender=Order)
    signal.connect(for_anyone)

    signal.send(Invoice)
    signal.send(SpecialOrder)
    signal.send(Order)

    assert [call["sender"] for call in for_orders.calls] == [Order]
    assert [call["sender"] for call in for_anyone.calls] == [Invoice, SpecialOrder, Order]


def test_a_receivers_exception_propagates_and_stops_the_send() -> None:
    signal, after = Signal(), Recorder()

    def failing(**kwargs: Any) -> None:
        raise LookupError("no such order")

    signal.connect(failing)
    signal.connect(after)

    with pytest.raises(LookupError, match="no such order"):
        signal.send(Order)
    assert after.calls == []


def test_sending_with_no_receivers_returns_an_empty_list() -> None:
    assert Signal().send(Order) == []


def test_a_receiver_connected_after_a_send_is_called_by_the_next_send() -> None:
    signal, late = Signal(), Recorder()
    signal.send(Order)  # fills the per-sender cache
    signal.connect(late, sender=Order)
    signal.send(Order)
    assert len(late.calls) == 1


# -- connect ----------------------------------------------------------------------


def test_the_same_receiver_connected_twice_for_a_sender_is_called_once() -> None:
    signal, record = Signal(), Recorder()
    signal.connect(record, sender=Order)
    signal.connect(record, sender=Order)
    signal.send(Order)
    assert len(record.calls) == 1


def test_one_receiver_connected_for_two_senders_is_called_for_each() -> None:
    signal, record = Signal(), Recorder()
    signal.connect(record, sender=Order)
    signal.connect(record, sender=Invoice)
    signal.send(Order)
    signal.send(Invoice)
    assert [call["sender"] for call in record.calls] == [Order, Invoice]


def test_a_dispatch_uid_keeps_a_second_receiver_with_the_same_uid_out() -> None:
    signal, first, second = Signal(), Recorder(), Recorder()
    signal.connect(first, dispatch_uid="audit")
    signal.connect(second, dispatch_uid="audit")
    signal.send(Order)
    assert (len(first.calls), len(second.calls)) == (1, 0)


def test_a_receiver_without_kwargs_is_refused_at_connect_time_by_name() -> None:
    def notify_customer(sender: Any, instance: Any) -> None: ...

    with pytest.raises(ValueError, match=r"notify_customer must accept keyword arguments"):
        Signal().connect(notify_customer)


def test_something_not_callable_is_refused_at_connect_time_by_name() -> None:
    with pytest.raises(TypeError, match=r"'not a function' is not"):
        Signal().connect("not a function")  # type: ignore[type-var]


def test_a_receiver_that_cannot_be_referenced_weakly_is_refused_with_advice() -> None:
    class Slotted:
        __slots__ = ()

        def __call__(self, **kwargs: Any) -> None: ...

    with pytest.raises(TypeError, match=r"connect it with weak=False"):
        Signal().connect(Slotted())
    Signal().connect(Slotted(), weak=False)


def test_connect_returns_the_receiver_unchanged() -> None:
    record = Recorder()
    assert Signal().connect(record) is record


def test_on_commit_is_refused_by_a_signal_that_carries_no_session() -> None:
    with pytest.raises(TypeError, match=r"no commit to wait for"):
        Signal().connect(Recorder(), on_commit=True, weak=False)


# -- weak references ------------------------------------------------------------------


def test_a_weakly_connected_function_disappears_when_collected() -> None:
    signal, calls = Signal(), []

    def short_lived(**kwargs: Any) -> None:
        calls.append(kwargs)

    signal.connect(short_lived)
    del short_lived
    gc.collect()

    assert signal.send(Order) == []
    assert calls == []
    assert not signal.has_listeners(Order)


def test_a_weakly_connected_bound_method_disappears_with_its_instance() -> None:
    class Mailer:
        sent = 0

        def on_order(self, **kwargs: Any) -> None:
            Mailer.sent += 1

    signal, mailer = Signal(), Mailer()
    signal.connect(mailer.on_order)
    signal.send(Order)
    del mailer
    gc.collect()
    signal.send(Order)
    assert Mailer.sent == 1


def test_a_bound_method_is_connected_once_although_each_access_makes_a_new_object() -> None:
    class Mailer:
        def on_order(self, **kwargs: Any) -> None: ...

    signal, mailer = Signal(), Mailer()
    signal.connect(mailer.on_order)
    signal.connect(mailer.on_order)
    assert len(signal.send(Order)) == 1
    assert signal.disconnect(mailer.on_order)


def test_the_lambda_footgun_is_djangos_a_weak_lambda_is_gone_at_once() -> None:
    signal, calls = Signal(), []
    signal.connect(lambda **kwargs: calls.append(kwargs))  # nothing else refers to it
    gc.collect()
    signal.send(Order)
    assert calls == []

    signal.connect(lambda **kwargs: calls.append(kwargs), weak=False)
    signal.send(Order)
    assert len(calls) == 1


def test_a_new_receiver_reusing_a_collected_ones_id_is_connected() -> None:
    signal = Signal()
    for _ in range(50):  # CPython reuses freed ids quickly; some iteration will hit one

        def receiver_of_the_moment(**kwargs: Any) -> str:
            return "alive"

        signal.connect(receiver_of_the_moment)
        assert signal.send(Order) == [(receiver_of_the_moment, "alive")]
        del receiver_of_the_moment
        gc.collect()


def test_receivers_of_a_collected_sender_are_not_inherited_by_a_new_object() -> None:
    class Sender:
        pass

    signal, calls = Signal(), []

    def count_calls(**kwargs: Any) -> None:
        calls.append(1)  # keeps no reference to the sender, which must be collected

    reuses = 0
    for _ in range(20):
        sender = Sender()
        collected_id = id(sender)
        signal.connect(count_calls, sender=sender)
        signal.send(sender)  # reaches record, and caches that under id(sender)
        del sender
        gc.collect()
        newcomers = [Sender() for _ in range(100)]  # one of them is likely to reuse the id
        newcomers.sort(key=lambda newcomer: id(newcomer) != collected_id)  # that one first
        reuses += id(newcomers[0]) == collected_id
        for newcomer in newcomers:
            signal.send(newcomer)
    assert reuses > 0, "no id was reused: the test proved nothing"
    assert len(calls) == 20


# -- disconnect -------------------------------------------------------------------------


def test_disconnect_says_whether_something_was_disconnected() -> None:
    signal, record = Signal(), Recorder()
    signal.connect(record, sender=Order)
    assert signal.disconnect(record, sender=Order) is True
    assert signal.disconnect(record, sender=Order) is False
    signal.send(Order)
    assert record.calls == []


def test_a_disconnected_receiver_is_not_called_while_the_others_still_are() -> None:
    signal, leaving, staying = Signal(), Recorder(), Recorder()
    signal.connect(leaving, sender=Order)
    signal.connect(staying, sender=Order)
    signal.send(Order)  # the lookup for Order is cached now

    signal.disconnect(leaving, sender=Order)
    signal.send(Order)

    assert (len(leaving.calls), len(staying.calls)) == (1, 2)


def test_disconnect_by_dispatch_uid() -> None:
    signal, record = Signal(), Recorder()
    signal.connect(record, sender=Order, dispatch_uid="audit")
    assert signal.disconnect(sender=Order, dispatch_uid="audit")
    assert signal.send(Order) == []


def test_disconnect_without_a_sender_leaves_connections_to_senders_alone_as_django() -> None:
    # blinker's disconnect(r) removes r for every sender; Django's removes only the
    # connection made with sender=None. Receivers written for Django expect Django.
    signal, record = Signal(), Recorder()
    signal.connect(record, sender=Order)
    signal.connect(record)

    assert signal.disconnect(record)
    signal.send(Order)
    signal.send(Invoice)
    assert [call["sender"] for call in record.calls] == [Order]


def test_a_receiver_connected_for_any_sender_and_for_one_hears_that_one_twice() -> None:
    # Two connections, two calls, as in Django (blinker would call it once).
    signal, record = Signal(), Recorder()
    signal.connect(record)
    signal.connect(record, sender=Order)

    signal.send(Order)
    signal.send(Invoice)

    assert [call["sender"] for call in record.calls] == [Order, Order, Invoice]


def test_a_signal_argument_is_refused_as_django_refuses_it() -> None:
    signal = Signal()
    signal.connect(Recorder(), weak=False)
    with pytest.raises(TypeError, match="got a keyword argument 'signal'"):
        signal.send(Order, signal="mine")


# -- send_robust ------------------------------------------------------------------------------


def test_send_robust_returns_the_exception_and_calls_the_next_receivers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal, after = Signal(), Recorder("fine")

    def flaky_receiver(**kwargs: Any) -> None:
        raise RuntimeError("mail server down")

    signal.connect(flaky_receiver)
    signal.connect(after)

    with caplog.at_level(logging.ERROR, logger="sa_signals"):
        responses = signal.send_robust(Order)

    (failed, error), (succeeded, response) = responses
    assert failed is flaky_receiver
    assert isinstance(error, RuntimeError)
    assert error.__traceback__ is not None
    assert (succeeded, response) == (after, "fine")
    (record,) = caplog.records
    assert record.name == "sa_signals"
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "Error calling test_send_robust_returns_the_exception_and_calls_the_next_receivers"
        ".<locals>.flaky_receiver in Signal.send_robust() (mail server down)"
    )
    assert record.exc_info is not None
    assert record.exc_info[1] is error


def test_send_robust_does_not_catch_base_exceptions() -> None:
    signal = Signal()

    def interrupted(**kwargs: Any) -> None:
        raise KeyboardInterrupt

    signal.connect(interrupted)
    with pytest.raises(KeyboardInterrupt):
        signal.send_robust(Order)


# -- async receivers ----------------------------------------------------------------------------


def test_asend_awaits_async_receivers_and_calls_sync_ones_in_connection_order() -> None:
    signal, order = Signal(), []

    async def first(**kwargs: Any) -> str:
        await asyncio.sleep(0)
        order.append("first")
        return "async"

    def second(**kwargs: Any) -> str:
        order.append("second")
        return "sync"

    signal.connect(first)
    signal.connect(second)

    responses = asyncio.run(signal.asend(Order))
    assert order == ["first", "second"]
    assert responses == [(first, "async"), (second, "sync")]


def test_asend_robust_catches_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    signal = Signal()

    async def broken(**kwargs: Any) -> None:
        raise ValueError("bad")

    signal.connect(broken)
    with caplog.at_level(logging.ERROR, logger="sa_signals"):
        ((receiver_, error),) = asyncio.run(signal.asend_robust(Order))
    assert receiver_ is broken
    assert isinstance(error, ValueError)
    assert "Error calling" in caplog.records[0].getMessage()


def test_send_runs_an_async_receiver_to_completion_without_an_event_loop() -> None:
    signal, done = Signal(), []

    async def slow(**kwargs: Any) -> str:
        await asyncio.sleep(0.01)
        done.append(kwargs["sender"])
        return "finished"

    signal.connect(slow)
    assert signal.send(Order) == [(slow, "finished")]
    assert done == [Order]


def test_send_runs_an_async_receiver_to_completion_inside_a_running_loop() -> None:
    signal = Signal()

    async def slow(**kwargs: Any) -> str:
        await asyncio.sleep(0.01)
        return "finished"

    signal.connect(slow)

    async def sync_code_called_from_async_code() -> Any:
        return signal.send(Order)  # a sync call, as a sync Session's flush makes

    assert asyncio.run(sync_code_called_from_async_code()) == [(slow, "finished")]


def test_send_robust_catches_an_async_receivers_exception() -> None:
    signal = Signal()

    async def broken(**kwargs: Any) -> None:
        raise ValueError("bad")

    signal.connect(broken)
    ((_, error),) = signal.send_robust(Order)
    assert isinstance(error, ValueError)


def test_a_callable_object_with_an_async_call_is_awaited() -> None:
    class Notifier:
        async def __call__(self, **kwargs: Any) -> str:
            return "awaited"

    signal, notifier = Signal(), Notifier()
    signal.connect(notifier)
    assert signal.send(Order) == [(notifier, "awaited")]


# -- has_listeners and the receiver decorator ---------------------------------------------------


def test_has_listeners_follows_connections_for_that_sender() -> None:
    signal, record = Signal(), Recorder()
    assert not signal.has_listeners()
    signal.connect(record, sender=Order)
    assert signal.has_listeners(Order)
    assert not signal.has_listeners(Invoice)
    assert not signal.has_listeners()
    signal.connect(record)
    assert signal.has_listeners(Invoice)


def test_the_receiver_decorator_connects_and_returns_the_function() -> None:
    saved, deleted = Signal(), Signal()

    def audit(**kwargs: Any) -> str:
        return "audited"

    decorated = receiver([saved, deleted], sender=Order, dispatch_uid="audit")(audit)

    assert decorated is audit
    assert saved.send(Order) == [(audit, "audited")]
    assert deleted.send(Order) == [(audit, "audited")]
    assert saved.send(Invoice) == []


def test_the_receiver_decorator_takes_a_single_signal() -> None:
    signal = Signal()

    @receiver(signal)
    def audit(**kwargs: Any) -> str:
        return "audited"

    assert signal.send(Order) == [(audit, "audited")]


def test_the_receiver_decorator_refuses_a_misspelt_keyword_where_it_is_written() -> None:
    """Django's ``receiver(signal, **kwargs)`` passes ``sendr=`` on to ``connect()``;
    here the mistake fails where it is made, before a single receiver is connected."""
    signal = Signal()
    with pytest.raises(TypeError, match="sendr"):
        receiver(signal, sendr=Order)  # type: ignore[call-arg]
    assert not signal.receivers


def test_the_flush_calls_receivers_itself_only_where_send_would_just_call_them() -> None:
    """``_plain_routes_for`` gives the flush the routes it may call itself; ``None``
    hands the send to ``send()``."""
    signal, record = Signal(), Recorder()
    assert signal._plain_routes_for(Order) == ()  # nothing connected
    signal.connect(record, sender=Order)
    assert signal._plain_routes_for(Invoice) == ()  # nothing for that sender
    assert signal._plain_routes_for(Order) is not None
    with signal.muted():  # blinker's switch
        assert signal._plain_routes_for(Order) is None

    async def awaited(**kwargs: Any) -> None:
        pass

    signal.connect(awaited, sender=Order)
    assert signal._plain_routes_for(Order) is None


# -- blinker's own tools keep working --------------------------------------------------------------


def test_blinkers_connected_to_undoes_exactly_its_connection() -> None:
    signal, record = Signal(), Recorder()
    with signal.connected_to(record, sender=Order):
        signal.send(Order)
    signal.send(Order)
    assert len(record.calls) == 1
    assert not signal.receivers


def test_blinkers_muted_silences_the_signal() -> None:
    signal, record = Signal(), Recorder()
    signal.connect(record)
    with signal.muted():
        assert signal.send(Order) == []
    signal.send(Order)
    assert len(record.calls) == 1


def test_blinkers_receivers_for_and_has_receivers_for() -> None:
    signal, for_orders, for_anyone = Signal(), Recorder(), Recorder()
    signal.connect(for_orders, sender=Order)
    signal.connect(for_anyone)
    assert list(signal.receivers_for(Order)) == [for_orders, for_anyone]
    assert list(signal.receivers_for(Invoice)) == [for_anyone]
    assert signal.has_receivers_for(Order)


def test_blinkers_receiver_connected_reports_each_connection() -> None:
    signal, record, reported = Signal(), Recorder(), []

    def report(signal_: Any, **kwargs: Any) -> None:
        reported.append((signal_, kwargs))

    signal.receiver_connected.connect(report)
    signal.connect(record, sender=Order, weak=False)
    assert reported == [(signal, {"receiver": record, "sender": Order, "weak": False})]


def test_blinkers_receivers_attribute_tells_whether_anyone_listens() -> None:
    signal, record = Signal(), Recorder()
    assert not signal.receivers
    signal.connect(record)
    assert signal.receivers
    signal.disconnect(record)
    assert not signal.receivers


def test_blinkers_send_async_is_asend() -> None:
    signal = Signal()

    async def awaited(**kwargs: Any) -> str:
        return "yes"

    signal.connect(awaited)
    assert asyncio.run(signal.send_async(Order)) == [(awaited, "yes")]


def test_blinkers_any_means_any_sender() -> None:
    signal, record = Signal(), Recorder()
    signal.connect(record, sender=blinker.ANY)
    signal.send(Invoice)
    assert signal.disconnect(record, sender=blinker.ANY)
    assert len(record.calls) == 1
