"""pre_migrate and post_migrate, from an Alembic environment that calls
sa_signals.migrations.run_migrations, on every database."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from sa_signals import post_migrate, pre_migrate
from sa_signals.testing import capture
from tests.databases import Database

ENV_PY = """
from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from sa_signals.migrations import run_migrations

url = context.config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(url=url, literal_binds=True)
    run_migrations(context)
else:
    with create_engine(url, poolclass=NullPool).connect() as connection:
        context.configure(connection=connection)
        run_migrations(context)
"""

REVISION = """
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

from alembic import op
import sqlalchemy as sa


def upgrade():
    op.create_table("migrated", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("migrated")
"""


@pytest.fixture
def alembic_config(tmp_path: Path, database: Database, engine: Engine) -> Iterator[Config]:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(textwrap.dedent(ENV_PY))
    (tmp_path / "script.py.mako").write_text("")
    (tmp_path / "versions" / "0001_migrated.py").write_text(textwrap.dedent(REVISION))
    config = Config()
    config.set_main_option("script_location", str(tmp_path))
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", database.url.render_as_string(hide_password=False))
    yield config
    with engine.begin() as connection:  # leave the database as the harness expects it
        connection.execute(text("DROP TABLE IF EXISTS migrated"))
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def test_upgrade_and_downgrade_send_both_signals(alembic_config: Config, engine: Engine) -> None:
    with capture(pre_migrate) as before, capture(post_migrate) as after:
        command.upgrade(alembic_config, "head")
        command.downgrade(alembic_config, "base")

    assert [(c["direction"], c["revision"]) for c in before] == [
        ("upgrade", "head"),
        ("downgrade", "base"),
    ]
    assert [(c["direction"], c["revision"]) for c in after] == [
        ("upgrade", "head"),
        ("downgrade", "base"),
    ]
    assert all(call["sender"] is alembic_config for call in before + after)
    assert all(call["using"] is not None for call in before + after)


def test_post_migrate_sees_the_migrated_schema_and_writes_in_its_transaction(
    alembic_config: Config, engine: Engine
) -> None:
    def seed(direction: str, using: Any, **kwargs: Any) -> None:
        if direction == "upgrade":
            assert "migrated" in inspect(using).get_table_names()
            using.execute(text("INSERT INTO migrated (id) VALUES (42)"))

    post_migrate.connect(seed)
    try:
        command.upgrade(alembic_config, "head")
    finally:
        post_migrate.disconnect(seed)

    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM migrated")).scalars().all() == [42]


def test_what_the_receivers_write_is_kept_when_there_was_nothing_to_migrate(
    alembic_config: Config, engine: Engine
) -> None:
    """Where DDL is not transactional (SQLite, MariaDB), Alembic's reads of the
    version table begin a transaction that no migration commits when there is
    nothing to migrate: the receivers' writes must not stay in it."""
    command.upgrade(alembic_config, "head")

    def record(direction: str, using: Any, signal: Any, **kwargs: Any) -> None:
        moment = 1 if signal is pre_migrate else 2
        using.execute(text(f"INSERT INTO migrated (id) VALUES ({moment})"))

    pre_migrate.connect(record)
    post_migrate.connect(record)
    try:
        command.upgrade(alembic_config, "head")  # already there
    finally:
        pre_migrate.disconnect(record)
        post_migrate.disconnect(record)

    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM migrated ORDER BY id")).scalars().all() == [
            1,
            2,
        ]


def test_other_commands_send_nothing(alembic_config: Config) -> None:
    with capture(pre_migrate) as before:
        command.current(alembic_config)
    assert before == []


def test_offline_sql_generation_sends_without_a_connection(
    alembic_config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    with capture(post_migrate) as after:
        command.upgrade(alembic_config, "head", sql=True)
    assert "CREATE TABLE migrated" in capsys.readouterr().out
    assert [(call["direction"], call["using"]) for call in after] == [("upgrade", None)]
