"""``pre_migrate`` and ``post_migrate`` for Alembic environments.

Django sends them around ``migrate``; Alembic has no signals, only the
``env.py`` every project owns. One call there does it: instead of ::

    with context.begin_transaction():
        context.run_migrations()

write ::

    from sa_signals.migrations import run_migrations
    run_migrations(context)

Both signals carry ``sender`` (the Alembic ``Config``), ``direction``
(``"upgrade"`` or ``"downgrade"``), ``revision`` (the target, as given:
``"head"``, ``"-1"``, an id) and ``using`` (the connection; ``None`` when Alembic
only writes SQL, ``--sql``). A receiver may write rows, say default data, and
they are committed: with the migrations where DDL is transactional
(PostgreSQL), right after the signal where Alembic commits each migration
separately (SQLite, MariaDB), even when there was nothing to migrate. Other
commands that run ``env.py`` (``check``, ``revision --autogenerate``,
``current``, ``stamp``) send nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from sa_signals.signals import post_migrate, pre_migrate

__all__ = ["AlembicContext", "run_migrations"]

_DIRECTIONS = ("upgrade", "downgrade")


class AlembicContext(Protocol):
    """What ``run_migrations`` needs of Alembic's ``context``: the module an
    ``env.py`` imports (``from alembic import context``), or an ``EnvironmentContext``."""

    @property
    def config(self) -> Config: ...
    def get_context(self) -> MigrationContext: ...
    def begin_transaction(self) -> AbstractContextManager[Any]: ...
    def run_migrations(self, **kw: Any) -> None: ...
    def is_offline_mode(self) -> bool: ...


def run_migrations(context: AlembicContext, **kwargs: Any) -> None:
    """Run the migrations in a transaction, sending ``pre_migrate`` before and
    ``post_migrate`` after them; ``kwargs`` go to ``context.run_migrations()``."""
    migration_context = context.get_context()
    # Alembic hands env.py the command's own function: upgrade() or downgrade().
    command = getattr(migration_context.opts.get("fn"), "__name__", None)
    with context.begin_transaction():
        if command not in _DIRECTIONS:
            context.run_migrations(**kwargs)
            return
        connection = None if context.is_offline_mode() else migration_context.connection
        named = {
            "direction": command,
            "revision": migration_context.opts.get("destination_rev"),
            "using": connection,
        }
        # Alembic commits its own transaction only when it runs every migration
        # in one (transactional DDL, not one transaction per migration).
        alembic_commits = migration_context.impl.transactional_ddl and not (
            migration_context.opts.get("transaction_per_migration", False)
        )
        with _kept(connection, alembic_commits):
            pre_migrate.send(context.config, **named)
        context.run_migrations(**kwargs)
        with _kept(connection, alembic_commits):
            post_migrate.send(context.config, **named)


@contextmanager
def _kept(connection: Connection | None, alembic_commits: bool) -> Iterator[None]:
    """Commit what the receivers wrote, unless Alembic's transaction will.

    Otherwise the connection may be in a transaction no one commits: Alembic's
    reads of the version table begin one (SQLAlchemy's autobegin), and with
    nothing to migrate it is rolled back when the connection closes. Alembic's
    own rule for a migration where DDL is not transactional is the same: commit
    whatever is open at the end of it.
    """
    yield
    if connection is not None and not alembic_commits and connection.in_transaction():
        connection.commit()
