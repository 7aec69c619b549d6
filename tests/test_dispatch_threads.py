"""Many threads connecting, disconnecting and sending at once, on real threads."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

from sa_signals import Signal


class Order:
    pass


@pytest.fixture(autouse=True)
def _switch_threads_often() -> Any:
    # Make the interpreter switch threads every few bytecodes, so that the
    # interleavings this test is about actually happen.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def test_concurrent_connects_disconnects_and_sends_keep_the_contract() -> None:
    signal = Signal()
    stop = threading.Event()
    failures: list[str] = []

    def stable(**kwargs: Any) -> str:
        return "stable"

    signal.connect(stable, sender=Order)
    # Connected for the whole test: every send must reach it, before churn ones.

    def churn(worker: int) -> None:
        def transient(**kwargs: Any) -> str:
            return "transient"

        while not stop.is_set():
            signal.connect(transient, sender=Order)
            signal.connect(transient)
            signal.disconnect(transient, sender=Order)
            signal.disconnect(transient)

    def send() -> None:
        while not stop.is_set():
            responses = signal.send(Order)
            if not responses or responses[0] != (stable, "stable"):
                failures.append(f"stable receiver missed: {responses!r}")

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    stop.wait(1.5)
    stop.set()
    for thread in threads:
        thread.join()

    assert failures == []
    assert list(signal.receivers_for(Order)) == [stable]


def bystander(**kwargs: Any) -> None:
    pass


def run_one_round(signal: Signal, round_: int, violations: list[int]) -> None:
    """Three threads race: one disconnects, two send. A send that starts after the
    disconnect finished must not reach the receiver; one that started before may."""
    disconnected = threading.Event()

    def doomed(started_after_disconnect: bool, **kwargs: Any) -> None:
        if started_after_disconnect:
            violations.append(round_)

    signal.connect(doomed, sender=Order)
    # Connected throughout: a disconnect must refresh the cached lookup for
    # Order, not only empty the signal.
    signal.connect(bystander, sender=Order, weak=False)
    barrier = threading.Barrier(3)

    def disconnect_it() -> None:
        barrier.wait()
        signal.disconnect(doomed, sender=Order)
        disconnected.set()

    def send_after_the_disconnect() -> None:
        barrier.wait()
        disconnected.wait()
        signal.send(Order, started_after_disconnect=True)

    def send_meanwhile() -> None:
        barrier.wait()
        signal.send(Order, started_after_disconnect=disconnected.is_set())

    threads = [
        threading.Thread(target=target)
        for target in (disconnect_it, send_after_the_disconnect, send_meanwhile)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_a_receiver_disconnected_before_a_send_began_is_never_called() -> None:
    signal = Signal()
    rounds = 300
    violations: list[int] = []

    for round_ in range(rounds):
        run_one_round(signal, round_, violations)

    assert violations == []


def test_concurrent_connections_of_distinct_receivers_are_all_kept_in_order_per_thread() -> None:
    signal = Signal()
    per_thread = 200
    receivers: dict[int, list[Any]] = {}

    def connect_many(worker: int) -> None:
        mine = []
        for number in range(per_thread):

            def numbered(number: int = number, worker: int = worker, **kwargs: Any) -> Any:
                return (worker, number)

            mine.append(numbered)
            signal.connect(numbered, weak=False)
        receivers[worker] = mine

    threads = [threading.Thread(target=connect_many, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    responses = [response for _, response in signal.send(Order)]
    assert len(responses) == 4 * per_thread
    for worker in range(4):
        assert [n for w, n in responses if w == worker] == list(range(per_thread))
