"""The quickstart, run as the README runs it, on each database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, make_url, select
from sqlalchemy.orm import Session

from examples.blog.models import Post, User
from examples.blog.seed import DEMO_USERNAME
from examples.tests.conftest import ROOT
from tests.databases import Database


def run_quickstart(database: Database) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.quickstart"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database.url.render_as_string(hide_password=False)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_quickstart_prints_each_signal_and_leaves_the_demo_data(
    demo_database: Database, engine: Engine
) -> None:
    first = run_quickstart(demo_database)

    assert first.returncode == 0, first.stderr
    tour = first.stdout
    for expected in [
        "pre_save:  post 'Signals, on plain SQLAlchemy' (slug 'signals-on-plain-sqlalchemy')",
        "m2m_changed: post_add on post",
        "after commit: post 'signals-on-plain-sqlalchemy' was created",
        "title 'Signals, on plain SQLAlchemy' -> 'Signals on plain SQLAlchemy'",
        "after the rollback the database holds 0 such post(s)",
        "pre_delete: Comment",
        "(cascade from Post",
        "seed the demo",
    ]:
        assert expected in tour
    assert "never printed" not in tour
    assert "assign a loaded attribute its own value: no UPDATE, no signal\ncreate another" in tour

    again = run_quickstart(demo_database)

    assert again.returncode == 0, again.stderr
    assert "seed the demo" not in again.stdout
    with Session(engine) as session:
        assert session.scalars(select(User.username)).all() == [DEMO_USERNAME]
        assert session.scalars(select(Post.slug)).all() == ["welcome-to-the-sa-signals-demo"]


def test_the_quickstart_asks_for_the_migrations_first(tmp_path: Path) -> None:
    result = run_quickstart(Database("sqlite", make_url(f"sqlite:///{tmp_path / 'new.sqlite3'}")))

    assert result.returncode == 1
    assert "has no blog tables yet: run `alembic upgrade head` first." in result.stderr
