"""The Alembic environment of the demo database.

The database is ``DATABASE_URL`` (or the demo's SQLite file), the schema is
``examples.blog.models``, and migrations run through
``sa_signals.migrations.run_migrations`` so that ``pre_migrate`` and
``post_migrate`` are sent around every upgrade and downgrade.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import NullPool

from examples.blog.database import database_url, open_engine
from examples.blog.models import Base
from sa_signals.migrations import run_migrations
from sa_signals.types import UTCDateTime

if context.config.config_file_name is not None:
    # Keep loggers configured before this point (sa_signals' among them) working.
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes sa-signals' column type with its import."""
    if kind == "type" and isinstance(item, UTCDateTime):
        autogen_context.imports.add("from sa_signals.types import UTCDateTime")
        return "UTCDateTime()"
    return False


options: dict[str, Any] = {
    "target_metadata": target_metadata,
    # SQLite can alter a table only by copying it: batch mode does that.
    "render_as_batch": True,
    "render_item": render_item,
}

if context.is_offline_mode():
    context.configure(url=database_url(), literal_binds=True, **options)
    run_migrations(context)
else:
    engine = open_engine(poolclass=NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        run_migrations(context)
    engine.dispose()
