"""The outbox: a committed event reaches the worker at least once, whatever
happens to the broker or the process after the commit; several relays share the
work without publishing a row twice. Real brokers, a real worker, real outages
(see tests.celery.proxy)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session

from sa_signals import post_save
from sa_signals.celery import outbox_table, relay_outbox
from sa_signals.celery.relay import PUBLISH_TIMEOUT
from tests.celery.conftest import Deliveries, messages_waiting, pending_events
from tests.celery.proxy import BrokerProxy
from tests.databases import Database, on_every_async_driver
from tests.models import Base, Order, outbox

Background = Callable[..., Deliveries]
Worker = Callable[[], AbstractContextManager[Any]]
ROOT = Path(__file__).resolve().parents[2]


def commit_orders(session: Session, count: int) -> None:
    for n in range(count):
        session.add(Order(reference=f"A-{n}"))
        session.commit()


def test_the_outbox_table_is_declared_once_per_metadata() -> None:
    assert outbox_table(Base.metadata) is outbox


def test_a_broker_down_at_commit_time_delays_the_events_and_loses_none(
    session: Session,
    engine: Engine,
    background: Background,
    worker: Worker,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
) -> None:
    deliveries = background(post_save, sender=Order)
    broker_proxy.down()

    # The first commit tries to publish and gives up; the next ones, moments
    # later, leave their events to the relay at once.
    started = time.monotonic()
    commit_orders(session, 3)
    assert time.monotonic() - started < PUBLISH_TIMEOUT + 10  # a liveness bound
    assert pending_events(engine) == 3

    broker_proxy.up()
    assert relay_outbox(engine, celery_app) == 3
    assert pending_events(engine) == 0
    with worker():
        calls = deliveries.wait_for(3)
    assert sorted(call["instance"].reference for call in calls) == ["A-0", "A-1", "A-2"]


def test_a_silent_broker_never_holds_a_commit_for_long(
    session: Session,
    engine: Engine,
    background: Background,
    worker: Worker,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
) -> None:
    deliveries = background(post_save, sender=Order)
    broker_proxy.silent()  # connections are accepted, and never answered

    started = time.monotonic()
    commit_orders(session, 1)
    # A liveness bound, not a benchmark: a Redis client alone would wait forever.
    assert time.monotonic() - started < PUBLISH_TIMEOUT + 10
    assert pending_events(engine) == 1

    broker_proxy.up()
    assert relay_outbox(engine, celery_app) == 1
    with worker():
        deliveries.wait_for(1)


def test_an_event_the_broker_never_confirmed_stays_pending(
    session: Session,
    engine: Engine,
    background: Background,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
) -> None:
    # The connection is up, then the network silently drops every byte: a
    # message written into the socket is not yet a message the broker has.
    background(post_save, sender=Order)
    commit_orders(session, 1)  # published: the connection is open now
    broker_proxy.freeze()

    commit_orders(session, 1)

    assert pending_events(engine) == 1
    broker_proxy.up()
    assert relay_outbox(engine, celery_app) == 1
    assert len(messages_waiting(celery_app)) == 2


def test_an_event_the_broker_refuses_does_not_hold_up_the_others(
    session: Session,
    engine: Engine,
    background: Background,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    background(post_save, sender=Order)
    broker_proxy.down()
    commit_orders(session, 3)
    broker_proxy.up()
    with engine.begin() as connection:  # the oldest event gets an option no publish takes
        oldest = connection.scalar(select(outbox.c.id).order_by(outbox.c.created_at).limit(1))
        connection.execute(
            update(outbox).where(outbox.c.id == oldest).values(options='{"countdown": "soon"}')
        )

    assert relay_outbox(engine, celery_app) == 2
    assert pending_events(engine) == 1
    assert f"Could not publish event {oldest}" in caplog.text


def test_concurrent_commits_each_publish_their_own_events(
    database: Database,
    engine: Engine,
    background: Background,
    celery_app: Celery,
) -> None:
    background(post_save, sender=Order)
    start = threading.Barrier(4)

    def commit_many(thread: int) -> None:
        start.wait()
        with Session(engine) as session:
            for n in range(10):
                session.add(Order(reference=f"T{thread}-{n}"))
                session.commit()

    threads = [threading.Thread(target=commit_many, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert pending_events(engine) == 0  # no relay ran: the commits published them all
    assert len(messages_waiting(celery_app)) == 40


def test_a_process_killed_right_after_its_commit_loses_nothing(
    database: Database,
    engine: Engine,
    background: Background,
    worker: Worker,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
) -> None:
    name = f"tests.crash_{uuid.uuid4().hex}"
    deliveries = background(post_save, sender=Order, name=name)  # the worker's side
    environment = {
        **os.environ,
        "SA_SIGNALS_TEST_BROKER": broker_proxy.url,
        "SA_SIGNALS_TEST_QUEUE": celery_app.conf.task_default_queue,
        "SA_SIGNALS_TEST_TASK": name,
    }
    url = database.url.render_as_string(hide_password=False)
    program = f"""
        import os
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session
        from sa_signals import on_commit
        import tests.celery.relay_app  # declares the background receiver
        from tests.models import Order

        engine = create_engine({url!r})

        with Session(engine) as session:
            session.begin()
            # Registered first, so it runs first after the COMMIT: the process dies
            # between the commit and the publication.
            on_commit(lambda: os._exit(0), session)
            session.add(Order(reference="survivor"))
            session.commit()
        raise SystemExit("not reached")
    """
    crashed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert crashed.returncode == 0, crashed.stderr
    assert pending_events(engine) == 1

    relay = subprocess.run(
        [
            sys.executable,
            *("-m", "sa_signals.celery", "relay"),
            *("--db", url, "--app", "tests.celery.relay_app:app"),
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert relay.returncode == 0, relay.stderr
    assert relay.stdout.strip() == "published 1 event(s)"
    with worker():
        (call,) = deliveries.wait_for(1)
    assert call["instance"].reference == "survivor"


def test_two_relays_at_once_publish_each_event_once(
    session: Session,
    database: Database,
    background: Background,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
) -> None:
    background(post_save, sender=Order)
    broker_proxy.down()
    session.add_all([Order(reference=f"A-{n}") for n in range(60)])
    session.commit()
    broker_proxy.up()

    engines = [database.engine(), database.engine()]
    start = threading.Barrier(2)
    published: list[int] = []

    def relay(engine: Engine) -> None:
        start.wait()
        published.append(relay_outbox(engine, celery_app, batch_size=5))

    threads = [threading.Thread(target=relay, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()

    task_ids = messages_waiting(celery_app)
    assert sum(published) == 60
    assert len(task_ids) == len(set(task_ids)) == 60


def test_the_relay_command_keeps_relaying_with_loop(
    session: Session,
    database: Database,
    engine: Engine,
    background: Background,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
) -> None:
    name = f"tests.loop_{uuid.uuid4().hex}"
    background(post_save, sender=Order, name=name)
    relay = subprocess.Popen(
        [
            sys.executable,
            *("-m", "sa_signals.celery", "relay", "--loop", "--interval", "0.2"),
            *("--db", database.url.render_as_string(hide_password=False)),
            *("--app", "tests.celery.relay_app:app"),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "SA_SIGNALS_TEST_BROKER": broker_proxy.url,
            "SA_SIGNALS_TEST_QUEUE": celery_app.conf.task_default_queue,
            "SA_SIGNALS_TEST_TASK": name,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        broker_proxy.down()
        commit_orders(session, 2)
        broker_proxy.up()
        deadline = time.monotonic() + 30
        while pending_events(engine) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pending_events(engine) == 0
    finally:
        relay.terminate()
        _, errors = relay.communicate(timeout=30)
    assert relay.returncode == 0, errors
    assert len(messages_waiting(celery_app)) == 2


def test_the_relay_runs_as_a_celery_task_too(
    session: Session,
    engine: Engine,
    background: Background,
    worker: Worker,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
) -> None:
    # As a Celery beat schedule would run it every few seconds.
    deliveries = background(post_save, sender=Order)

    @celery_app.task(name=f"tests.relay_{uuid.uuid4().hex}", shared=False)
    def relay() -> int:
        return relay_outbox(engine, celery_app)

    broker_proxy.down()
    commit_orders(session, 2)
    broker_proxy.up()
    with worker():
        relay.delay()
        deliveries.wait_for(2)
    assert pending_events(engine) == 0


@on_every_async_driver
def test_an_async_session_writes_and_publishes_its_events_too(
    database: Database, background: Background, worker: Worker
) -> None:
    deliveries = background(post_save, sender=Order)

    async def write() -> None:
        engine = database.async_engine()
        try:
            async with async_sessionmaker(engine)() as session:
                session.add(Order(reference="async"))
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(write())
    with worker():
        (call,) = deliveries.wait_for(1)
    assert call["instance"].reference == "async"


def test_the_relay_refuses_what_it_cannot_do_right(
    engine: Engine, database: Database, celery_app: Celery
) -> None:
    with pytest.raises(ValueError, match="batch_size of 1 or more"):
        relay_outbox(engine, celery_app, batch_size=0)
    with (
        engine.connect() as connection,
        connection.begin(),
        pytest.raises(ValueError, match="would publish uncommitted ones"),
    ):
        relay_outbox(connection, celery_app)
    async_engine = database.async_engine()
    with pytest.raises(TypeError, match="for an AsyncEngine, pass its sync_engine"):
        relay_outbox(async_engine, celery_app)  # type: ignore[arg-type]
    asyncio.run(async_engine.dispose())
