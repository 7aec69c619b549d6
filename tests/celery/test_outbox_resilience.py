"""The outbox while something is out for a while, and an outbox in a schema of
its own.

- After a broker failure, commits leave their events to the relay for
  ``PAUSE_AFTER_FAILURE`` seconds instead of waiting for the broker again: a long
  outage slows down one commit, not every one; and that one is held for
  ``PUBLISH_TIMEOUT``, not longer.
- ``python -m sa_signals.celery relay --loop`` outlives a database outage and
  relays what is committed afterwards.
- ``outbox_table(MetaData(schema=...))`` works end to end on every database: a
  PostgreSQL schema, a MariaDB database, an attached SQLite database.

Real brokers, real databases, real outages (see tests.celery.proxy).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import URL, Engine, MetaData, String, Table, event, func, select
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.schema import CreateSchema, DropSchema

from sa_signals import post_save
from sa_signals.celery import outbox_table, relay_outbox, task_receiver
from sa_signals.celery import relay as relay_module
from sa_signals.celery.relay import PAUSE_AFTER_FAILURE, PUBLISH_TIMEOUT
from tests.celery.conftest import Deliveries, messages_waiting, pending_events
from tests.celery.proxy import BrokerProxy
from tests.databases import Database, preferring
from tests.models import Order, outbox

Background = Callable[..., Deliveries]
Worker = Callable[[], AbstractContextManager[Any]]
ROOT = Path(__file__).resolve().parents[2]
RELAYED_WITHIN = 30.0  # seconds; never reached when all is well


def commit_order(session: Session, reference: str) -> float:
    """Commit a new order; return how long the commit took, in seconds."""
    session.add(Order(reference=reference))
    started = time.monotonic()
    session.commit()
    return time.monotonic() - started


def sent_event_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(outbox.c.id).where(outbox.c.sent_at.is_not(None))))


# -- after a broker failure, commits leave their events to the relay for a while ---------------


class Clock:
    """The relay module's clock, which a test moves forward instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def relay_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(relay_module, "time", clock)
    return clock


# One database is enough: the pause is the broker's.
@pytest.mark.parametrize("database", preferring("postgresql"), indirect=True)
def test_after_a_broker_failure_commits_leave_their_events_to_the_relay_for_a_while(
    session: Session,
    engine: Engine,
    background: Background,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
    relay_clock: Clock,
) -> None:
    """An outage costs one commit a failed publish, not every commit: for
    PAUSE_AFTER_FAILURE seconds, commits leave their events pending for the
    relay without trying the broker; then they publish again."""
    background(post_save, sender=Order)
    broker_proxy.down()
    commit_order(session, "failed")  # tries the broker, gives up: the pause begins

    # Commits do not wait for the broker again, each as long as the first.
    during_the_outage = [commit_order(session, f"outage-{n}") for n in range(3)]
    assert max(during_the_outage) < PUBLISH_TIMEOUT / 4

    # Nor do they ask it at all, even once it is back: this one would have published.
    broker_proxy.up()
    relay_clock.advance(PAUSE_AFTER_FAILURE - 1)
    commit_order(session, "broker back, pause not over")
    assert pending_events(engine) == 5
    assert messages_waiting(celery_app) == []

    relay_clock.advance(1)
    commit_order(session, "after the pause")
    published = sent_event_ids(engine)
    assert len(published) == 1  # its own event, at the commit
    assert messages_waiting(celery_app) == published

    assert relay_outbox(engine, celery_app) == 5  # the others were the relay's


# The broker's connection is what matters here: one database is enough.
@pytest.mark.parametrize("database", preferring("postgresql"), indirect=True)
@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)  # AMQP closes with a handshake
def test_a_network_dying_under_the_connection_holds_a_commit_for_the_timeout_only(
    session: Session, engine: Engine, background: Background, broker_proxy: BrokerProxy
) -> None:
    """Once the broker is given up on, the dead connection is dropped, not
    closed politely: an AMQP close waits for the broker's answer, once per
    channel and once for the connection, and held the commit three times as long."""
    background(post_save, sender=Order)
    commit_order(session, "published")  # the connection to the broker is open now
    broker_proxy.freeze()  # and from now on drops every byte

    # Waiting for the broker's confirmation takes PUBLISH_TIMEOUT, and that is all.
    assert commit_order(session, "unconfirmed") < 2 * PUBLISH_TIMEOUT
    assert pending_events(engine) == 1


# -- the relay loop outlives a database outage --------------------------------------------------


class DatabaseOutage:
    """How the relay process reaches the test database (``url``), and a way to
    make that database fail it for a while: PostgreSQL and MariaDB behind a TCP
    hop that is taken down (connections refused, open ones cut), SQLite locked
    by another writer for longer than the relay waits for its lock."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.proxy: BrokerProxy | None = None  # any TCP server will do
        self.holder: sqlite3.Connection | None = None
        if database.backend == "sqlite":
            self.url: URL = database.url.update_query_dict({"timeout": "0.2"})
        else:
            self.proxy = BrokerProxy(database.url.render_as_string(hide_password=False))
            self.proxy.up()
            self.url = database.url.set(host="127.0.0.1", port=self.proxy.port)

    def begin(self) -> None:
        if self.proxy is not None:
            self.proxy.down()
        else:
            assert self.database.url.database is not None
            self.holder = sqlite3.connect(self.database.url.database, isolation_level=None)
            self.holder.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        if self.proxy is not None:
            self.proxy.up()
        elif self.holder is not None:
            self.holder.execute("ROLLBACK")
            self.holder.close()
            self.holder = None


@pytest.fixture
def database_outage(database: Database) -> Iterator[DatabaseOutage]:
    outage = DatabaseOutage(database)
    yield outage
    outage.end()
    if outage.proxy is not None:
        outage.proxy.down()


class RelayProcess:
    """``python -m sa_signals.celery relay --loop``, its log in a file."""

    def __init__(self, arguments: list[str], environment: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sa_signals.celery", "relay", "--loop", *arguments],
                cwd=ROOT,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + RELAYED_WITHIN
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the relay exited ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {RELAYED_WITHIN} s\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> int:
        self.process.terminate()  # SIGTERM: the loop finishes its round and returns
        return self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text()


@pytest.mark.parametrize("broker", ["redis"], indirect=True)  # the database is what fails here
def test_the_relay_loop_outlives_a_database_outage(
    session: Session,
    engine: Engine,
    background: Background,
    broker: str,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
    database_outage: DatabaseOutage,
    tmp_path: Path,
) -> None:
    """A relay that died at the first database error would leave every event
    committed afterwards pending until someone restarted it."""
    name = f"tests.outage_{uuid.uuid4().hex}"
    background(post_save, sender=Order, name=name)
    broker_proxy.down()  # this process's commits cannot publish: their events are the relay's
    relay_process = RelayProcess(
        [
            *("--interval", "0.1", "--max-interval", "0.4"),
            *("--db", database_outage.url.render_as_string(hide_password=False)),
            *("--app", "tests.celery.relay_app:app"),
        ],
        {
            **os.environ,
            "SA_SIGNALS_TEST_BROKER": broker,  # the relay's own way to the broker, not the proxy
            "SA_SIGNALS_TEST_QUEUE": celery_app.conf.task_default_queue,
            "SA_SIGNALS_TEST_TASK": name,
        },
        tmp_path / "relay.log",
    )
    try:
        commit_order(session, "before the outage")
        relay_process.wait_until(lambda: pending_events(engine) == 0, "relayed before the outage")

        database_outage.begin()
        relay_process.wait_until(
            lambda: "The outbox could not be read" in relay_process.output(),
            "the relay ran into the outage",
        )
        database_outage.end()

        commit_order(session, "after the outage")
        relay_process.wait_until(lambda: pending_events(engine) == 0, "relayed after the outage")
    finally:
        returncode = relay_process.stop()
    assert returncode == 0, relay_process.output()
    broker_proxy.up()
    assert len(messages_waiting(celery_app)) == 2


# -- an outbox in a schema of its own -----------------------------------------------------------

# A name of this run's own: on MariaDB a schema is a database, shared by every
# run on the server.
SHOP_SCHEMA = f"sa_signals_shop_{uuid.uuid4().hex[:8]}"


class ShopBase(DeclarativeBase):
    metadata = MetaData(schema=SHOP_SCHEMA)


class Parcel(ShopBase):
    """A model in a schema, whose events go to the outbox of that schema. At
    module level: the worker finds the class again among the mapped ones."""

    __tablename__ = "parcel"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(50))


shop_outbox = outbox_table(ShopBase.metadata)


@pytest.fixture
def shop_engine(database: Database, tmp_path: Path) -> Iterator[Engine]:
    """An engine on the test database, with ``SHOP_SCHEMA`` made for the test
    and removed afterwards: a schema on PostgreSQL, a database on MariaDB, a
    database ATTACHed to each connection on SQLite."""
    engine = database.engine()
    if database.backend == "sqlite":
        attached = tmp_path / "shop.sqlite3"

        @event.listens_for(engine, "connect")
        def attach(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
            dbapi_connection.cursor().execute(f"ATTACH DATABASE '{attached}' AS {SHOP_SCHEMA}")

    else:
        with engine.begin() as connection:
            connection.execute(CreateSchema(SHOP_SCHEMA))
    ShopBase.metadata.create_all(engine)
    yield engine
    ShopBase.metadata.drop_all(engine)
    if database.backend != "sqlite":
        with engine.begin() as connection:
            connection.execute(DropSchema(SHOP_SCHEMA))
    engine.dispose()


def pending_in(engine: Engine, table: Table) -> int:
    with engine.connect() as connection:
        pending = select(func.count()).select_from(table).where(table.c.sent_at.is_(None))
        return connection.scalar(pending) or 0


@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)  # the database is what varies
def test_an_outbox_in_a_schema_publishes_at_the_commit_and_relays_leftovers(
    shop_engine: Engine,
    engine: Engine,
    broker_proxy: BrokerProxy,
    celery_app: Celery,
    worker: Worker,
) -> None:
    """The outbox lives beside its models, in their schema: events are written,
    published and relayed there (the relay told which schema), and nowhere else."""
    assert shop_outbox.fullname == f"{SHOP_SCHEMA}.sa_signals_outbox"
    deliveries = Deliveries()
    name = f"tests.parcel_{uuid.uuid4().hex}"
    task_receiver(
        post_save,
        Parcel,
        app=celery_app,
        session_factory=sessionmaker(shop_engine, expire_on_commit=False),
        name=name,
    )(deliveries)
    try:
        with Session(shop_engine) as session:
            session.add(Parcel(label="published at the commit"))
            session.commit()
            assert pending_in(shop_engine, shop_outbox) == 0

            broker_proxy.down()
            session.add(Parcel(label="left to the relay"))
            session.commit()
            assert pending_in(shop_engine, shop_outbox) == 1
            broker_proxy.up()

        # The relay reads the outbox of the schema it is given, and that one only.
        assert relay_outbox(shop_engine, celery_app) == 0
        assert relay_outbox(shop_engine, celery_app, schema=SHOP_SCHEMA) == 1
        assert pending_in(shop_engine, shop_outbox) == 0
        with worker():
            calls = deliveries.wait_for(2)
    finally:
        post_save.disconnect(sender=Parcel, dispatch_uid=name)

    assert sorted(call["instance"].label for call in calls) == [
        "left to the relay",
        "published at the commit",
    ]
    assert all(call["instance_in_session"] for call in calls)  # loaded again from the schema
    with engine.connect() as connection:  # nothing went to the default outbox
        assert connection.scalar(select(func.count()).select_from(outbox)) == 0
