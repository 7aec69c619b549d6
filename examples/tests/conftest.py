"""Fixtures of the demo's tests: the demo database on SQLite, PostgreSQL and
MariaDB, migrated by the demo's own Alembic environment, and the Flask app on it;
the FastAPI app, served in a process of its own on the same database.

The demo is an application of its own, with its own user model, so its tests run
in a pytest process of their own (``pytest examples``; the README's test command
runs both suites): ``sa_signals.auth`` finds "the" user model by itself only when
a process has one, and the library's tests rely on that.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import URL, Engine, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from examples.blog.database import open_engine
from examples.blog.models import AuditEntry, Base, Comment, Email, Post, Tag, User
from examples.flask_app import create_app, db
from sa_signals import raw_mode
from sa_signals.auth import set_password_hasher
from tests.databases import BACKENDS, Database, empty_all_tables, provisioned

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_finish(session: pytest.Session) -> None:
    library_tests = [item for item in session.items if item.path.is_relative_to(ROOT / "tests")]
    if library_tests:
        raise pytest.UsageError(
            "Run the demo's tests in a pytest process of their own (`pytest examples`): the "
            "demo's user model would make authenticate() ambiguous for the library's tests."
        )


@contextmanager
def database_url_set_to(url: URL) -> Iterator[None]:
    """``DATABASE_URL``, which the demo's Alembic environment and apps read."""
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url.render_as_string(hide_password=False)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = previous


def alembic(url: URL, verb: str, *args: Any) -> None:
    """``alembic <verb> <args>`` from the repository root, on ``url``."""
    with database_url_set_to(url):
        getattr(command, verb)(Config(str(ROOT / "alembic.ini")), *args)


@pytest.fixture(scope="session", params=BACKENDS)
def demo_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """An empty database on each backend, migrated to the newest revision."""
    with provisioned(request.param, tmp_path_factory.mktemp(request.param)) as database:
        alembic(database.url, "upgrade", "head")
        yield database


@pytest.fixture
def engine(demo_database: Database) -> Iterator[Engine]:
    """An engine on the demo database; its tables are empty again afterwards."""
    engine = open_engine(demo_database.url)
    yield engine
    empty_all_tables(engine, demo_database.backend, Base.metadata)
    engine.dispose()


@pytest.fixture
def app(engine: Engine) -> Iterator[Flask]:
    """The app with its production settings (CSRF, secure cookies) on the demo database."""
    app = create_app(
        {
            "SECRET_KEY": "test secret",
            "SQLALCHEMY_DATABASE_URI": engine.url.render_as_string(hide_password=False),
            "TESTING": True,
        }
    )
    yield app
    with app.app_context():
        db.engine.dispose()


class Visitor:
    """The test client, used the way a visitor's browser uses the app: over HTTPS (the
    session cookie is ``Secure``), with a ``Referer``, and submitting forms with
    the CSRF token of the page they are on."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, path: str) -> TestResponse:
        return self.client.get(path, base_url="https://localhost")

    def submit(self, action: str, page: str | None = None, **fields: Any) -> TestResponse:
        """Open ``page`` (``action`` by default), then post ``fields`` to ``action``
        with that page's CSRF token."""
        html = self.get(page or action).text
        token = re.search(r'name="csrf_token"[^>]* value="([^"]+)"', html)
        assert token is not None, f"{page or action} has no form with a CSRF token"
        return self.post(action, csrf_token=token.group(1), **fields)

    def post(self, action: str, **fields: Any) -> TestResponse:
        return self.client.post(
            action,
            data=fields,
            base_url="https://localhost",
            headers={"Referer": "https://localhost/"},
        )

    def log_in(self, username: str, password: str) -> TestResponse:
        return self.submit("/login", username=username, password=password)


@pytest.fixture
def visitor(app: Flask) -> Visitor:
    return Visitor(app.test_client())


@pytest.fixture(autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Real Argon2id, with parameters that take microseconds (README recipe)."""
    previous = set_password_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield
    set_password_hasher(previous)


@dataclass(frozen=True)
class Blog:
    alice_id: int
    bob_id: int
    post_id: int
    comment_id: int


@pytest.fixture
def blog(app: Flask, engine: Engine) -> Blog:
    """alice, who wrote a post, and bob, who commented on it; each one's password is
    "<name>'s password". Loaded as fixtures (``raw_mode``): nothing is audited. In
    the app's context, as the app writes: the background receiver of the comment
    runs for the app, on its database."""
    with app.app_context(), Session(engine) as session, raw_mode(session):
        alice = User(username="alice", email="alice@example.test")
        alice.set_password("alice's password")
        bob = User(username="bob", email="bob@example.test")
        bob.set_password("bob's password")
        comment = Comment(author=bob, body="Hi!")
        post = Post(author=alice, title="First post", body="Hello.", comments=[comment])
        session.add(post)
        session.flush()
        blog = Blog(alice.id, bob.id, post.id, comment.id)
        session.commit()
    return blog


def audit_log(engine: Engine) -> list[tuple[str | None, str, str, dict[str, Any]]]:
    """The audit log, oldest line first: (actor, action, subject, details)."""
    with Session(engine) as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(e.actor, e.action, e.subject, e.details) for e in entries]


def emails(engine: Engine) -> list[tuple[str, str]]:
    """The e-mails sent, oldest first: (recipient, subject)."""
    with Session(engine) as session:
        return [(e.recipient, e.subject) for e in session.scalars(select(Email).order_by(Email.id))]


# -- the FastAPI app, served as its README command serves it -----------------------------------
#
# In a process of its own (``python -m examples.fastapi_app``), never imported
# here: receivers are connected for the whole process, and the Flask app's are
# connected in this one; each app's receivers would hear the other's flushes.

SERVER_TIMEOUT = 30.0  # seconds for the app to start; never reached when all is well


class Api:
    """A client of the served FastAPI app: JSON in and out, each request with its
    own ``X-Request-ID`` when the test gives one, and a bearer token once logged in."""

    def __init__(self, base_url: str, token: str | None = None, log: Path | None = None) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.log = log  # the served app's output

    def request(
        self, method: str, path: str, request_id: str | None = None, **options: Any
    ) -> httpx.Response:
        headers = {**self.headers, **({"X-Request-ID": request_id} if request_id else {})}
        with httpx.Client(base_url=self.base_url, timeout=SERVER_TIMEOUT) as client:
            return client.request(method, path, headers=headers, **options)

    def log_in(self, username: str, password: str) -> Api:
        """This client, logged in: a new one that sends the user's token."""
        answer = self.request("POST", "/login", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return Api(self.base_url, answer.json()["access_token"], self.log)


@contextmanager
def served_fastapi_app(database: Database, log: Path, **environment: str) -> Iterator[Api]:
    """``python -m examples.fastapi_app`` on ``database`` and a free port, with
    ``environment`` added to its own; yields a client of it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database.url.render_as_string(hide_password=False),
        "PORT": str(port),
        "SECRET_KEY": "test secret",
        **environment,
    }
    if "CELERY_BROKER_URL" not in environment:
        env.pop("CELERY_BROKER_URL", None)  # eager mode: the task runs in the app's process
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.fastapi_app"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = Api(f"http://127.0.0.1:{port}", log=log)
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while not _answers(api):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the FastAPI app did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield api
    finally:
        process.terminate()  # uvicorn shuts down gracefully: the engine is disposed of
        try:
            process.wait(timeout=SERVER_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _answers(api: Api) -> bool:
    try:
        return api.request("GET", "/posts").status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


@pytest.fixture(scope="module")
def fastapi_app(demo_database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The FastAPI app, served on each demo database (asyncpg on PostgreSQL,
    aiomysql on MariaDB, aiosqlite on SQLite), without a broker."""
    log = tmp_path_factory.mktemp("fastapi") / "app.log"
    with served_fastapi_app(demo_database, log) as api:
        yield api


@dataclass(frozen=True)
class Authors:
    """alice and bob, each with a post; tags "news" and "async" exist. Each
    one's password is "<name>'s password"."""

    alice_post_id: int
    bob_post_id: int


@pytest.fixture
def authors(engine: Engine) -> Authors:
    """Loaded as fixtures (``raw_mode``): no receiver audits or e-mails them."""
    with Session(engine) as session, raw_mode(session):
        alice = User(username="alice", email="alice@example.test")
        alice.set_password("alice's password")
        bob = User(username="bob", email="bob@example.test")
        bob.set_password("bob's password")
        session.add_all([Tag(name="news"), Tag(name="async")])
        alices = Post(author=alice, title="Alice writes", body="Hello.")
        bobs = Post(author=bob, title="Bob writes", body="Hi.")
        session.add_all([alices, bobs])
        session.flush()
        authors = Authors(alice_post_id=alices.id, bob_post_id=bobs.id)
        session.commit()
    return authors
