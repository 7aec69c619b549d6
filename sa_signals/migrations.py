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
(PostgreSQL), in a transaction of their own where Alembic commits each
migration separately (SQLite, MariaDB). Other commands that run ``env.py``
(``check``, ``revision --autogenerate``, ``current``) send nothing.
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
        with _transaction_on(connection):
            pre_migrate.send(context.config, **named)
        context.run_migrations(**kwargs)
        with _transaction_on(connection):
            post_migrate.send(context.config, **named)


@contextmanager
def _transaction_on(connection: Connection | None) -> Iterator[None]:
    """The migration transaction if one is open; otherwise one of its own, since
    where DDL is not transactional Alembic opens one per migration, and what a
    receiver writes between them would be rolled back with the connection."""
    if connection is None or connection.in_transaction():
        yield
        return
    with connection.begin():
        yield
