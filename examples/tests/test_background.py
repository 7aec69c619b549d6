"""The demo's background receiver as the README runs it: a real broker (Redis, then
RabbitMQ), a real worker (``celery -A examples.flask_app.worker worker``), the app
served by ``python -m examples.flask_app``, each a process of its own started with
``CELERY_BROKER_URL`` and ``DATABASE_URL``, on each database of the demo.

The rest of the demo's tests run Celery in eager mode (no broker): the task runs
in the app's process right after the commit. Here the event really travels: the
commit writes it to the outbox and publishes it, the broker holds it, the worker
loads the comment again and writes the author's e-mail. And when the broker is
down at commit time, the request still succeeds, the event waits in the outbox,
and the README's relay command sends it on.

On Redis the run claims an empty database of its own (with a key); on RabbitMQ
it empties the demo's default queue ``celery`` before and after, so that the
demo's worker meets no other test's message.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import TypeVar

import kombu
import pytest
import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from examples.blog.models import outbox
from examples.tests.conftest import ROOT, Blog, emails
from sa_signals.celery.relay import PUBLISH_TIMEOUT
from tests.databases import Database, unavailable

BROKERS = {
    "redis": os.environ.get("SA_SIGNALS_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("SA_SIGNALS_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
TASK = "examples.flask_app.tasks.tell_the_author_about_a_comment"
TIMEOUT = 30.0  # seconds to wait for a process or a delivery; never reached when all is well
# The commit waits for a broker at most PUBLISH_TIMEOUT; the rest is the request's
# own work, with room for a busy machine.
QUICK_ENOUGH = PUBLISH_TIMEOUT + 2.0

T = TypeVar("T")


# -- a broker of this run's own ------------------------------------------------------------------


@pytest.fixture(scope="session")
def broker_places() -> Iterator[Callable[[str], str]]:
    """``broker_places(name)``: the URL of a place on that broker that is this run's
    alone, made on first use and emptied at the end of the run."""
    places: dict[str, str] = {}
    cleanups: list[Callable[[], None]] = []

    def place(name: str) -> str:
        if name not in places:
            url = BROKERS[name]
            if not reachable(url):
                unavailable(f"{name} is unreachable at {url}")
            claim = claim_redis_database if name == "redis" else rabbitmq_vhost
            places[name], cleanup = claim(url)
            cleanups.append(cleanup)
        return places[name]

    yield place
    for cleanup in cleanups:
        cleanup()


def reachable(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=3):
            return True
    except OSError:
        return False


CLAIM_KEY = "sa_signals:demo-background-tests"


def claim_redis_database(url: str) -> tuple[str, Callable[[], None]]:
    """The first Redis database from 1 to 14 (0 is everyone's, 15 the benchmarks')
    that is empty, claimed with a key so that a concurrent run takes another;
    flushed when released."""
    token = uuid.uuid4().hex
    for number in range(1, 15):
        candidate = with_path(url, f"/{number}")
        client = redis.Redis.from_url(candidate)
        try:
            claimed = client.set(CLAIM_KEY, token, nx=True, ex=3600)
        except redis.ResponseError:  # no database of that number (a server with fewer)
            break
        if claimed and client.dbsize() == 1:  # nothing in it but our claim

            def release(client: redis.Redis = client) -> None:
                client.flushdb()
                client.close()

            return candidate, release
        if claimed:  # someone else's data: leave it alone
            client.delete(CLAIM_KEY)
        client.close()
    unavailable(f"no empty Redis database to claim at {url}")
    raise AssertionError("unreachable")  # unavailable() skips or fails


def rabbitmq_vhost(url: str) -> tuple[str, Callable[[], None]]:
    """The URL's own vhost, the demo's queue ``celery`` emptied before and after:
    the library's tests use queues of other names, and the two suites never run
    at once. (No vhost of its own: making one needs ``rabbitmqctl`` on the
    broker's machine, which a containerised broker does not offer.)"""

    def empty_the_demo_queue() -> None:
        with kombu.Connection(url, connect_timeout=5) as connection:
            queue = kombu.Queue("celery", kombu.Exchange("celery", "direct"), "celery")
            bound = queue(connection.default_channel)
            bound.declare()
            bound.purge()

    empty_the_demo_queue()
    return url, empty_the_demo_queue


def with_path(url: str, path: str) -> str:
    """``url`` with another path: the Redis database's number, or the AMQP vhost."""
    return urllib.parse.urlsplit(url)._replace(path=path).geturl()


def closed_port_of(url: str) -> str:
    """``url`` with a port nothing listens on: a broker that refuses connections."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    parts = urllib.parse.urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return parts._replace(netloc=netloc).geturl()


@pytest.fixture(scope="module", params=list(BROKERS))
def broker(request: pytest.FixtureRequest, broker_places: Callable[[str], str]) -> str:
    """The broker's URL, as ``CELERY_BROKER_URL`` gives it to the demo's processes."""
    return broker_places(request.param)


# -- the demo's processes, as the README starts them ---------------------------------------------


def demo_environment(database: Database, broker_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database.url.render_as_string(hide_password=False),
        "CELERY_BROKER_URL": broker_url,
    }


@dataclass
class Worker:
    """``celery -A examples.flask_app.worker worker``, running, and its log."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.output()}")

    def ran(self, event_id: str) -> bool:
        """Whether the worker got this event from the broker (its id is the task's)
        and the receiver returned, its session committed."""
        return f"{TASK}[{event_id}] succeeded" in self.output()


@pytest.fixture(scope="module")
def worker(
    demo_database: Database, broker: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """The README's worker command on the demo database and the broker: its
    default pool, with one child process; a node name of its own; INFO logs, to
    read what it received; and no waiting for other workers at startup (mingle,
    gossip), since none share its broker."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    command = [
        *[sys.executable, "-m", "celery", "-A", "examples.flask_app.worker", "worker"],
        *["--concurrency=1", f"--hostname=demo-{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO"],
        *["--without-mingle", "--without-gossip"],
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=demo_environment(demo_database, broker),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its pool's children too are stopped with it
        )
    running = Worker(process, log)
    try:
        wait_for(lambda: " ready." in running.output() or None, "the worker to be ready", running)
        yield running
    finally:
        # Its tests are over and have nothing in flight: no warm shutdown (seconds
        # of it), the whole process group at once, pool children included.
        stop(process, grace=0)


def stop(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM, and ``grace`` seconds later SIGKILL for whatever is left of the
    process group it was started in."""
    if grace:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def served_demo(database: Database, broker_url: str, log: Path) -> Iterator[DemoBrowser]:
    """``python -m examples.flask_app`` on a free port, with ``CELERY_BROKER_URL``
    set to ``broker_url``; yields a browser on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.flask_app"],
            cwd=ROOT,
            env={**demo_environment(database, broker_url), "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    browser = DemoBrowser(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + TIMEOUT
        while not browser.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo app did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield browser
    finally:
        stop(process)


def relay(database: Database, broker_url: str) -> subprocess.CompletedProcess[str]:
    """The README's relay command, run once (no ``--loop``)."""
    return subprocess.run(
        [
            *[sys.executable, "-m", "sa_signals.celery", "relay"],
            *["--db", database.url.render_as_string(hide_password=False)],
            *["--app", "examples.flask_app.tasks:celery_app"],
        ],
        cwd=ROOT,
        env=demo_environment(database, broker_url),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the test reads the redirect itself


class DemoBrowser:
    """A visitor of the served demo: cookies kept, redirects not followed, forms
    posted with the CSRF token of the page they are on."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirects()
        )

    def answers(self) -> bool:
        try:
            return self.get("/login").status == 200
        except OSError:  # not listening yet
            return False

    def get(self, path: str) -> Answer:
        return self._open(urllib.request.Request(self.base_url + path))

    def submit(self, action: str, page: str | None = None, **fields: str) -> Answer:
        html = self.get(page or action).text
        marker = 'name="csrf_token"'
        assert marker in html, f"{page or action} has no form with a CSRF token"
        token = html.split(marker, 1)[1].split('value="', 1)[1].split('"', 1)[0]
        data = urllib.parse.urlencode({"csrf_token": token, **fields}).encode()
        return self._open(urllib.request.Request(self.base_url + action, data=data))

    def log_in(self, username: str, password: str) -> Answer:
        return self.submit("/login", username=username, password=password)

    def _open(self, request: urllib.request.Request) -> Answer:
        try:
            with self._opener.open(request, timeout=TIMEOUT) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:  # a redirect, or an error page
            with error:
                return Answer(error.code, error.read().decode())


# -- what the tests look at ----------------------------------------------------------------------


def outbox_rows(engine: Engine) -> dict[str, bool]:
    """The outbox's events: whether each was sent (published and confirmed), by id."""
    with Session(engine) as session:
        rows = session.execute(select(outbox.c.id, outbox.c.sent_at))
        return {event_id: sent_at is not None for event_id, sent_at in rows}


def wait_for(check: Callable[[], T | None], what: str, worker: Worker) -> T:
    """Poll ``check`` until it returns something, or fail after ``TIMEOUT`` seconds
    (at once if the worker died), with the worker's log."""
    deadline = time.monotonic() + TIMEOUT
    while (result := check()) is None:
        worker.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"waited {TIMEOUT:.0f} s for {what}; the worker's log:\n{worker.output()}")
        time.sleep(0.2)
    return result


def comment_as_bob(browser: DemoBrowser, blog: Blog) -> tuple[Answer, float]:
    """bob comments on alice's post; returns the answer and how long it took."""
    assert browser.log_in("bob", "bob's password").status == 302
    page = f"/posts/{blog.post_id}"
    started = time.monotonic()
    answer = browser.submit(f"{page}/comments", page=page, body="Nice post.")
    return answer, time.monotonic() - started


def new_event(engine: Engine, before: dict[str, bool]) -> tuple[str, bool]:
    """The one event written since ``before``: its id, and whether it was sent."""
    new = {
        event_id: sent for event_id, sent in outbox_rows(engine).items() if event_id not in before
    }
    assert len(new) == 1, f"expected the comment's event alone in the outbox, found {new}"
    return next(iter(new.items()))


# -- the tests -----------------------------------------------------------------------------------


def test_a_comment_is_published_at_the_commit_and_the_worker_emails_the_post_author(
    demo_database: Database,
    engine: Engine,
    blog: Blog,
    broker: str,
    worker: Worker,
    tmp_path: Path,
) -> None:
    """The README's demo with a broker: the commit publishes the comment's event
    (marked sent once the broker confirmed it), and the worker, not the app,
    writes alice's e-mail, which she then finds on her e-mails page."""
    events_before = outbox_rows(engine)

    with served_demo(demo_database, broker, tmp_path / "app.log") as browser:
        answer, _ = comment_as_bob(browser, blog)
        assert answer.status == 302

        event_id, sent = new_event(engine, events_before)
        assert sent, "the commit should have published the event, and marked it sent"
        wait_for(lambda: worker.ran(event_id) or None, f"the worker to run {event_id}", worker)
        assert emails(engine) == [("alice@example.test", "New comment on 'First post'")]

        browser.submit("/logout", page="/")
        browser.log_in("alice", "alice's password")
        assert "New comment on" in browser.get("/emails").text


def test_a_comment_committed_while_the_broker_is_down_waits_in_the_outbox_for_the_relay(
    demo_database: Database,
    engine: Engine,
    blog: Blog,
    broker: str,
    worker: Worker,
    tmp_path: Path,
) -> None:
    """The app's broker refuses connections at commit time: the request succeeds
    all the same, without waiting, and the event stays pending in the outbox, with
    a warning; nothing reaches the worker. Then the README's relay command, run
    once with the real broker, publishes it, and the worker e-mails alice."""
    events_before = outbox_rows(engine)
    app_log = tmp_path / "app.log"

    with served_demo(demo_database, closed_port_of(broker), app_log) as browser:
        answer, took = comment_as_bob(browser, blog)

    assert answer.status == 302
    assert took < QUICK_ENOUGH, f"the request waited {took:.1f} s for a broker that is down"
    event_id, sent = new_event(engine, events_before)
    assert not sent
    assert "stay pending for the relay" in app_log.read_text(errors="replace")
    assert emails(engine) == []
    assert not worker.ran(event_id)

    relayed = relay(demo_database, broker)

    assert relayed.returncode == 0, relayed.stderr
    assert "published 1 event(s)" in relayed.stdout
    assert outbox_rows(engine)[event_id] is True
    wait_for(lambda: worker.ran(event_id) or None, f"the worker to run {event_id}", worker)
    assert emails(engine) == [("alice@example.test", "New comment on 'First post'")]
