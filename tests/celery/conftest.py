"""Real brokers and a real worker for the background receivers' tests.

``broker`` runs a test once on RabbitMQ and once on Redis (an unreachable one
skips, or fails under ``SA_SIGNALS_REQUIRE_SERVICES=1``). ``celery_app`` is a
fresh Celery app on it, with a queue of the test's own, deleted afterwards;
``worker`` starts a Celery worker (in a thread of this process) for it once the
test's receivers are declared. ``Deliveries`` is a receiver that remembers what
reached it in the worker, and lets the test wait for it.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from sa_signals.celery import task_receiver
from tests.celery.proxy import BrokerProxy
from tests.databases import unavailable
from tests.models import outbox

BROKERS = {
    "rabbitmq": os.environ.get("SA_SIGNALS_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    "redis": os.environ.get("SA_SIGNALS_REDIS_URL", "redis://127.0.0.1:6379/0"),
}
DELIVERY_TIMEOUT = 30.0  # seconds a test waits for the worker; never reached when all is well


def reachable(url: str) -> bool:
    from kombu.utils.url import url_to_parts

    parts = url_to_parts(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture(params=list(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    url = BROKERS[request.param]
    if not reachable(url):
        unavailable(f"{request.param} is unreachable at {url}")
    return url


@pytest.fixture
def broker_proxy(broker: str) -> Iterator[BrokerProxy]:
    """The broker, through a hop the test can take down (see tests.celery.proxy)."""
    proxy = BrokerProxy(broker)
    proxy.up()
    yield proxy
    proxy.down()


@pytest.fixture
def celery_app(broker_proxy: BrokerProxy) -> Iterator[Celery]:
    """A Celery app of the test's own, through the proxy, publishing to and
    consuming from a queue no other test uses."""
    app = Celery(f"test-{uuid.uuid4().hex[:8]}", broker=broker_proxy.url, set_as_current=False)
    app.conf.task_default_queue = f"sa_signals_test_{uuid.uuid4().hex}"
    app.conf.broker_connection_retry_on_startup = False
    # With heartbeats the worker's AMQP consumer wakes up every second, and so
    # notices at once when the test stops it.
    app.conf.broker_heartbeat = 2
    yield app
    broker_proxy.up()  # a test may have left it down
    delete_queue(app)
    app.close()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """The workers' sessions; their instances stay readable after the worker's
    commit, for the test to look at."""
    return sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
def worker(celery_app: Celery) -> Callable[[], AbstractContextManager[Any]]:
    """``with worker():`` runs a worker for the test's app within the block. Start
    it after declaring the receivers: a worker knows the tasks it started with."""

    @contextmanager
    def running() -> Iterator[Any]:
        with start_worker(
            celery_app,
            pool="solo",
            concurrency=1,
            perform_ping_check=False,
            shutdown_timeout=10,
            loglevel="WARNING",
            without_heartbeat=False,
        ) as controller:
            yield controller

    return running


class Deliveries:
    """A background receiver's calls, as they arrive in the worker."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.side_effect: Callable[..., Any] | None = None
        self._arrived = threading.Condition()

    def __call__(self, **kwargs: Any) -> None:
        # What only holds while the worker's session is open.
        kwargs["instance_in_session"] = kwargs["instance"] in kwargs["session"]
        with self._arrived:
            self.calls.append(kwargs)
            self._arrived.notify_all()
        if self.side_effect is not None:
            self.side_effect(**kwargs)

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.calls) >= count, DELIVERY_TIMEOUT):
                pytest.fail(f"{len(self.calls)} of {count} event(s) reached the worker")
        return self.calls


@pytest.fixture
def background(
    celery_app: Celery, session_factory: sessionmaker[Session]
) -> Iterator[Callable[..., Deliveries]]:
    """``deliveries = background(post_save, sender=Order, **task_options)``: a
    background receiver, for this test only, that records what reaches the worker."""
    connected: list[tuple[Any, Any, str]] = []

    def connect(signal: Any, sender: Any = None, **task_options: Any) -> Deliveries:
        deliveries = Deliveries()
        name = task_options.setdefault("name", f"tests.background_{uuid.uuid4().hex}")
        task_receiver(
            signal, sender, app=celery_app, session_factory=session_factory, **task_options
        )(deliveries)
        connected.append((signal, sender, name))
        return deliveries

    yield connect
    for signal, sender, name in connected:
        signal.disconnect(sender=sender, dispatch_uid=name)


def messages_waiting(app: Celery, queue: str | None = None) -> list[str]:
    """The task ids of the messages waiting in ``queue`` (the app's default),
    taken off it: what was really published, read from the broker itself."""
    name = queue or app.conf.task_default_queue
    ids = []
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        channel.queue_declare(queue=name, durable=True, auto_delete=False)
        while (message := channel.basic_get(queue=name, no_ack=True)) is not None:
            ids.append(message.headers["id"])
    return ids


def delete_queue(app: Celery, queue: str | None = None) -> None:
    with app.connection_for_write() as connection:
        connection.default_channel.queue_delete(queue or app.conf.task_default_queue)


def pending_events(engine: Engine) -> int:
    """How many events of the outbox wait to be published."""
    with engine.connect() as connection:
        pending = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return connection.scalar(pending) or 0
