"""The FastAPI demo's background receiver with a real broker (RabbitMQ) and a
real worker (``celery -A examples.fastapi_app.worker worker``), each a process
of its own, as its module's docstring runs them, on each demo database.

The event is written to the outbox by the request's flush, on the async
driver's connection (asyncpg on PostgreSQL), published at the commit, and the
sync worker loads the comment again and writes the author's e-mail. The app
and its worker use a queue of this run's own (``CELERY_QUEUE``), deleted
afterwards: never the Flask demo's, nor another run's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import kombu
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from examples.blog.models import outbox
from examples.tests.conftest import ROOT, Authors, emails, served_fastapi_app
from examples.tests.test_background import BROKERS, reachable, stop
from tests.databases import Database, unavailable

TASK = "examples.fastapi_app.tasks.tell_the_author_about_a_comment"
TIMEOUT = 30.0  # seconds to wait for the worker; never reached when all is well


@pytest.fixture(scope="module")
def broker_queue() -> Iterator[tuple[str, str]]:
    """RabbitMQ's URL, and a queue name of this module's own, deleted afterwards."""
    url = BROKERS["rabbitmq"]
    if not reachable(url):
        unavailable(f"rabbitmq is unreachable at {url}")
    queue = f"examples.fastapi_app.test-{uuid.uuid4().hex}"
    yield url, queue
    with kombu.Connection(url, connect_timeout=5) as connection:
        connection.default_channel.queue_delete(queue)


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def ran(self, event_id: str) -> bool:
        """Whether the worker ran this event's task (its id is the event's) to the end."""
        return f"{TASK}[{event_id}] succeeded" in self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def environment(demo_database: Database, broker_queue: tuple[str, str]) -> dict[str, str]:
    url, queue = broker_queue
    return {"CELERY_BROKER_URL": url, "CELERY_QUEUE": queue}


@pytest.fixture(scope="module")
def worker(
    demo_database: Database, environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    log = tmp_path_factory.mktemp("fastapi-worker") / "worker.log"
    command = [
        *[sys.executable, "-m", "celery", "-A", "examples.fastapi_app.worker", "worker"],
        *["--concurrency=1", f"--hostname=fastapi-{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO"],
        *["--without-mingle", "--without-gossip"],
    ]
    env = {
        **os.environ,
        "DATABASE_URL": demo_database.url.render_as_string(hide_password=False),
        **environment,
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Worker(process, log)
    try:
        wait_until(lambda: " ready." in log.read_text(errors="replace"), "ready", running)
        yield running
    finally:
        stop(process, grace=0)


def wait_until(check: Callable[[], bool], what: str, worker: Worker) -> None:
    """Poll ``check`` until it holds; fail at once if the worker died, or after ``TIMEOUT``."""
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if worker.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the worker was not {what}:\n{worker.log.read_text(errors='replace')}")
        time.sleep(0.2)


def test_a_comment_is_published_at_the_commit_and_the_worker_emails_the_author(
    demo_database: Database,
    engine: Engine,
    authors: Authors,
    environment: dict[str, str],
    worker: Worker,
    tmp_path: Path,
) -> None:
    with served_fastapi_app(demo_database, tmp_path / "app.log", **environment) as api:
        bob = api.log_in("bob", "bob's password")
        answer = bob.request(
            "POST", f"/posts/{authors.alice_post_id}/comments", json={"body": "Nice post."}
        )

    assert answer.status_code == 201, answer.text
    with Session(engine) as session:
        ((event_id, sent_at),) = session.execute(select(outbox.c.id, outbox.c.sent_at)).all()
    assert sent_at is not None  # published at the commit, and confirmed by the broker
    wait_until(lambda: worker.ran(event_id), f"done with {event_id}", worker)
    assert emails(engine) == [("alice@example.test", "New comment on 'Alice writes'")]
