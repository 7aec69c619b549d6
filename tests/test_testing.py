"""sa_signals.testing: capture, mute, capture_on_commit_callbacks, and the fixtures."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from sa_signals import Signal, _muting, on_commit, post_save, pre_save
from sa_signals.testing import capture, capture_on_commit_callbacks, mute
from tests.models import Note, Order


class Sender:
    pass


class Other:
    pass


@pytest.fixture
def signal() -> Signal:
    return Signal()


def receiver_counting(calls: list[str], name: str) -> Callable[..., None]:
    def receiver(**kwargs: Any) -> None:
        calls.append(name)

    return receiver


# -- capture -------------------------------------------------------------------------------


def test_capture_records_each_send_in_order_and_receivers_still_run(signal: Signal) -> None:
    ran: list[str] = []
    real = receiver_counting(ran, "real")
    signal.connect(real)

    with capture(signal) as calls:
        signal.send(Sender, number=1)
        signal.send(Other, number=2)
    signal.send(Sender, number=3)

    assert calls == [
        {"signal": signal, "sender": Sender, "number": 1},
        {"signal": signal, "sender": Other, "number": 2},
    ]
    assert ran == ["real", "real", "real"]


def test_capture_for_one_sender(signal: Signal) -> None:
    with capture(signal, sender=Sender) as calls:
        signal.send(Sender)
        signal.send(Other)
    assert [call["sender"] for call in calls] == [Sender]


def test_capture_of_a_model_signal(session: Session) -> None:
    with capture(post_save, sender=Order) as calls:
        session.add(Order(reference="A-1"))
        session.flush()
    assert [call["created"] for call in calls] == [True]


# -- mute -----------------------------------------------------------------------------------


def test_mute_a_whole_signal_one_sender_or_one_receiver(signal: Signal) -> None:
    ran: list[str] = []
    first, second = receiver_counting(ran, "first"), receiver_counting(ran, "second")
    signal.connect(first)
    signal.connect(second)

    with mute(signal):
        signal.send(Sender)
    with mute(signal, sender=Other):
        signal.send(Sender)
        signal.send(Other)
    with mute(signal, receiver=first):
        signal.send(Sender)

    assert ran == ["first", "second", "second"]


def test_mute_with_no_arguments_mutes_every_signal(signal: Signal) -> None:
    ran: list[str] = []
    signal.connect(receiver_counting(ran, "receiver"), weak=False)
    with mute():
        signal.send(Sender)
    assert ran == []


def test_nested_mutes_restore_what_the_outer_one_muted(signal: Signal) -> None:
    ran: list[str] = []
    first, second = receiver_counting(ran, "first"), receiver_counting(ran, "second")
    signal.connect(first)
    signal.connect(second)

    with mute(signal, receiver=first):
        with mute(signal, receiver=second):
            signal.send(Sender)  # nothing
        signal.send(Sender)  # second only
    signal.send(Sender)  # both

    assert ran == ["second", "first", "second"]
    assert _muting._rules.get() == ()  # nothing left muted


def test_a_mute_in_one_thread_never_mutes_another(signal: Signal) -> None:
    heard: list[str] = []
    signal.connect(lambda thread, **kwargs: heard.append(thread), weak=False)
    muted_and_waiting, other_sent = threading.Event(), threading.Event()

    def muted_thread() -> None:
        with mute(signal):
            muted_and_waiting.set()
            other_sent.wait(5)
            signal.send(Sender, thread="muted")

    def other_thread() -> None:
        muted_and_waiting.wait(5)
        signal.send(Sender, thread="other")
        other_sent.set()

    threads = [threading.Thread(target=muted_thread), threading.Thread(target=other_thread)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert heard == ["other"]


def test_a_mute_in_one_asyncio_task_never_mutes_another(signal: Signal) -> None:
    heard: list[str] = []
    signal.connect(lambda task, **kwargs: heard.append(task), weak=False)

    async def muted_task(ready: asyncio.Event, done: asyncio.Event) -> None:
        with mute(signal):
            ready.set()
            await done.wait()
            await signal.asend(Sender, task="muted")

    async def other_task(ready: asyncio.Event, done: asyncio.Event) -> None:
        await ready.wait()
        await signal.asend(Sender, task="other")
        done.set()

    async def main() -> None:
        ready, done = asyncio.Event(), asyncio.Event()
        await asyncio.gather(muted_task(ready, done), other_task(ready, done))

    asyncio.run(main())
    assert heard == ["other"]


def test_a_task_started_inside_a_mute_stays_muted_after_the_block_ends(signal: Signal) -> None:
    heard: list[str] = []
    signal.connect(lambda **kwargs: heard.append("heard"), weak=False)

    async def child(block_ended: asyncio.Event) -> None:
        await block_ended.wait()
        await signal.asend(Sender)

    async def main() -> None:
        block_ended = asyncio.Event()
        with mute(signal):
            task = asyncio.create_task(child(block_ended))  # copies the context
        block_ended.set()
        await task
        await signal.asend(Sender)  # the parent's own context is unmuted again

    asyncio.run(main())
    assert heard == ["heard"]


def test_one_mute_object_entered_by_overlapping_tasks(signal: Signal) -> None:
    heard: list[str] = []
    signal.connect(lambda task, **kwargs: heard.append(task), weak=False)
    shared = mute(signal)

    async def task(name: str, entered: asyncio.Event, leave: asyncio.Event) -> None:
        with shared:
            entered.set()
            await leave.wait()
            await signal.asend(Sender, task=f"{name} inside")
        await signal.asend(Sender, task=f"{name} after")

    async def main() -> None:
        first_in, second_in, first_out, second_out = (asyncio.Event() for _ in range(4))
        first = asyncio.create_task(task("first", first_in, first_out))
        second = asyncio.create_task(task("second", second_in, second_out))
        await first_in.wait()
        await second_in.wait()
        first_out.set()  # the first leaves while the second is still inside
        await first
        second_out.set()
        await second

    asyncio.run(main())
    assert heard == ["first after", "second after"]


def test_a_mute_may_end_in_another_context_than_it_began(signal: Signal) -> None:
    # As a pytest fixture does for an async test: set up outside the test's task.
    ran: list[str] = []
    signal.connect(receiver_counting(ran, "receiver"), weak=False)
    muting = mute(signal)
    muting.__enter__()
    contextvars.copy_context().run(muting.__exit__, None, None, None)
    muting.__exit__(None, None, None)

    signal.send(Sender)
    assert ran == ["receiver"]


def test_an_async_receiver_run_on_a_worker_thread_sees_the_mute(signal: Signal) -> None:
    inner = Signal()
    heard: list[str] = []
    inner.connect(receiver_counting(heard, "inner"), weak=False)

    async def outer_receiver(**kwargs: Any) -> None:
        inner.send(Sender)

    signal.connect(outer_receiver, weak=False)

    async def main() -> None:
        with mute(inner):
            # A sync send from async code: the async receiver runs on a worker thread.
            signal.send(Sender)

    asyncio.run(main())
    assert heard == []


def test_mute_decorates_functions_and_coroutine_functions(signal: Signal) -> None:
    ran: list[str] = []
    signal.connect(receiver_counting(ran, "receiver"), weak=False)

    @mute(signal)
    def quiet() -> None:
        signal.send(Sender)

    @mute(signal)
    async def quiet_too() -> None:
        await signal.asend(Sender)

    quiet()
    asyncio.run(quiet_too())
    signal.send(Sender)
    assert ran == ["receiver"]


def test_muting_a_model_signal_receiver_during_a_flush(session: Session) -> None:
    ran: list[str] = []
    audit = receiver_counting(ran, "audit")
    post_save.connect(audit, sender=Order)
    try:
        with mute(post_save, receiver=audit), capture(post_save, sender=Order) as calls:
            session.add(Order(reference="A-1"))
            session.flush()
    finally:
        post_save.disconnect(audit, sender=Order)
    assert ran == []
    assert len(calls) == 1


# -- capture_on_commit_callbacks, in the fixture that never commits ---------------------------


@pytest.fixture
def rolled_back_session(engine: Engine) -> Iterator[Session]:
    """The README's recipe: a session inside an outer transaction the test rolls back."""
    with engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        yield session
        session.close()
        transaction.rollback()


def test_the_recipe_leaves_nothing_behind(rolled_back_session: Session, engine: Engine) -> None:
    rolled_back_session.add(Note(text="gone after the test"))
    rolled_back_session.commit()
    assert rolled_back_session.scalars(select(Note.text)).all() == ["gone after the test"]


def test_callbacks_are_captured_without_running(rolled_back_session: Session) -> None:
    ran: list[str] = []
    with capture_on_commit_callbacks(rolled_back_session) as callbacks:
        rolled_back_session.add(Note(text="hello"))
        on_commit(lambda: ran.append("welcome"), rolled_back_session)
        rolled_back_session.commit()
    assert len(callbacks) == 1
    assert ran == []


def test_execute_runs_them_at_the_end_of_the_block(rolled_back_session: Session) -> None:
    ran: list[str] = []

    def welcome() -> None:
        ran.append("welcome")
        on_commit(lambda: ran.append("registered by the callback"), rolled_back_session)

    with capture_on_commit_callbacks(rolled_back_session, execute=True) as callbacks:
        rolled_back_session.add(Note(text="hello"))
        on_commit(welcome, rolled_back_session)
        rolled_back_session.commit()
        assert ran == []
    assert ran == ["welcome", "registered by the callback"]
    assert callbacks[0] is welcome


def test_a_callback_dropped_by_a_rolled_back_savepoint_is_not_captured(
    rolled_back_session: Session,
) -> None:
    ran: list[str] = []
    with capture_on_commit_callbacks(rolled_back_session, execute=True) as callbacks:
        rolled_back_session.add(Note(text="kept"))
        savepoint = rolled_back_session.begin_nested()
        on_commit(lambda: ran.append("dropped"), rolled_back_session)
        savepoint.rollback()
        on_commit(lambda: ran.append("kept"), rolled_back_session)
    assert ran == ["kept"]
    assert len(callbacks) == 1


def test_deferred_receivers_are_captured_as_partials(rolled_back_session: Session) -> None:
    def notify(instance: Order, **kwargs: Any) -> None: ...

    post_save.connect(notify, sender=Order, on_commit=True)
    try:
        with capture_on_commit_callbacks(rolled_back_session) as callbacks:
            order = Order(reference="A-1")
            rolled_back_session.add(order)
            rolled_back_session.commit()
    finally:
        post_save.disconnect(notify, sender=Order)
    (callback,) = callbacks
    assert callback.func is notify  # type: ignore[attr-defined]
    assert callback.keywords["instance"] is order  # type: ignore[attr-defined]


def test_an_executed_callback_does_not_run_again_at_the_real_commit(
    engine: Engine, session: Session
) -> None:
    ran: list[str] = []
    with capture_on_commit_callbacks(session, execute=True):
        session.add(Note(text="hello"))
        on_commit(lambda: ran.append("once"), session)
    session.commit()
    assert ran == ["once"]


# -- capture_on_commit_callbacks, with the other join modes -----------------------------------
#
# What "the commit" is depends on how the session joins the connection's transaction
# (README, "Sessions joined to an outer transaction"): in "rollback_only", and in
# "conditional_savepoint" (SQLAlchemy's default, which acts as "rollback_only" on a
# connection with no SAVEPOINT open), session.commit() commits nothing and the commit
# is the connection's; in "control_fully" the session's commit is the real one.

MODES_WHOSE_COMMIT_COMMITS_NOTHING = ["conditional_savepoint", "rollback_only"]


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        yield connection


def joined(connection: Connection, mode: str) -> Session:
    return Session(bind=connection, join_transaction_mode=mode)  # type: ignore[arg-type]


def committed_notes(engine: Engine) -> list[str]:
    """What another connection sees: only what was really committed."""
    with Session(engine) as other:
        return list(other.scalars(select(Note.text)))


@pytest.mark.parametrize("mode", MODES_WHOSE_COMMIT_COMMITS_NOTHING)
def test_captured_callbacks_still_wait_for_the_connections_commit(
    connection: Connection, engine: Engine, mode: str
) -> None:
    """With execute=False the callbacks are only collected: they stay queued for
    the commit, which here is the connection's, not the session's, and run then,
    once, as they would have without the block."""
    ran: list[str] = []

    def welcome() -> None:
        ran.append("welcome")

    outer = connection.begin()
    with joined(connection, mode) as session:
        with capture_on_commit_callbacks(session) as callbacks:
            session.add(Note(text="hello"))
            on_commit(welcome, session)
            session.commit()
        assert callbacks == [welcome]
        assert ran == []
        assert committed_notes(engine) == []  # the session's commit committed nothing
        outer.commit()
    assert ran == ["welcome"]
    assert committed_notes(engine) == ["hello"]


@pytest.mark.parametrize("mode", MODES_WHOSE_COMMIT_COMMITS_NOTHING)
def test_executed_callbacks_run_at_the_end_of_the_block_and_not_again_at_the_commit(
    connection: Connection, mode: str
) -> None:
    """With execute=True the callbacks run when the block ends, since the
    session's commit inside it is no commit; the connection's real commit later
    does not run them a second time."""
    ran: list[str] = []

    def welcome() -> None:
        ran.append("welcome")

    outer = connection.begin()
    with joined(connection, mode) as session:
        with capture_on_commit_callbacks(session, execute=True) as callbacks:
            session.add(Note(text="hello"))
            on_commit(welcome, session)
            session.commit()
            assert ran == []
        assert ran == ["welcome"]
        outer.commit()
    assert ran == ["welcome"]
    assert callbacks == [welcome]


@pytest.mark.parametrize("mode", [*MODES_WHOSE_COMMIT_COMMITS_NOTHING, "control_fully"])
@pytest.mark.parametrize("execute", [False, True], ids=["collect", "execute"])
def test_a_session_rollback_that_rolls_back_the_connection_drops_them(
    connection: Connection, engine: Engine, mode: str, execute: bool
) -> None:
    """In these modes (unlike "create_savepoint") session.rollback() rolls back the
    connection's own transaction: what was registered is gone for good, neither
    collected nor run, even with execute=True."""
    ran: list[str] = []
    outer = connection.begin()
    with joined(connection, mode) as session:
        with capture_on_commit_callbacks(session, execute=execute) as callbacks:
            session.add(Note(text="rolled back"))
            session.flush()
            on_commit(lambda: ran.append("dropped"), session)
            session.rollback()
        assert not outer.is_active
    assert callbacks == []
    assert ran == []
    assert committed_notes(engine) == []


@pytest.mark.parametrize("execute", [False, True], ids=["collect", "execute"])
def test_under_control_fully_the_sessions_commit_is_the_commit(
    connection: Connection, engine: Engine, execute: bool
) -> None:
    """ "control_fully" hands the connection's transaction to the session, so its
    commit is the real COMMIT: the callbacks run right after it, inside the
    block, whatever ``execute`` says. They are collected all the same, and
    execute=True does not run them a second time when the block ends."""
    ran: list[str] = []

    def welcome() -> None:
        ran.append("welcome")

    connection.begin()
    with joined(connection, "control_fully") as session:
        with capture_on_commit_callbacks(session, execute=execute) as callbacks:
            session.add(Note(text="hello"))
            on_commit(welcome, session)
            session.commit()
            assert ran == ["welcome"]
            assert committed_notes(engine) == ["hello"]
            assert not connection.in_transaction()
        assert ran == ["welcome"]
    assert callbacks == [welcome]


# -- the pytest plugin ---------------------------------------------------------------------------


def test_the_plugin_is_registered(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("sa_signals")


def test_the_capture_fixture_records_for_the_rest_of_the_test(
    sa_signals_capture: Callable[..., list[dict[str, Any]]], session: Session
) -> None:
    calls = sa_signals_capture(pre_save, sender=Order)
    session.add(Order(reference="A-1"))
    session.flush()
    assert len(calls) == 1


def test_the_mute_fixture_mutes_for_the_rest_of_the_test(
    sa_signals_mute: Callable[..., None], signal: Signal
) -> None:
    ran: list[str] = []
    signal.connect(receiver_counting(ran, "receiver"), weak=False)
    sa_signals_mute(signal)
    signal.send(Sender)
    assert ran == []


def test_the_fixtures_undo_themselves_when_the_test_ends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from sa_signals import post_save

        def test_uses_the_fixtures(sa_signals_capture, sa_signals_mute):
            sa_signals_capture(post_save)
            sa_signals_mute(post_save)
            assert post_save.receivers
        """
    )
    receivers_before = dict(post_save.receivers)

    pytester.runpytest_inprocess().assert_outcomes(passed=1)

    assert post_save.receivers == receivers_before
    assert _muting._rules.get() == ()


def test_the_capture_on_commit_callbacks_fixture(
    sa_signals_capture_on_commit_callbacks: Any, rolled_back_session: Session
) -> None:
    with sa_signals_capture_on_commit_callbacks(rolled_back_session, execute=True) as callbacks:
        rolled_back_session.add(Note(text="hello"))
        on_commit(lambda: None, rolled_back_session)
    assert len(callbacks) == 1
