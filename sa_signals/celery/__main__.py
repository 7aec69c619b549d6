"""``python -m sa_signals.celery relay --db URL --app MODULE:APP [--loop]``

Publishes the outbox's pending events through the Celery app's broker: once, or
``--loop`` until stopped, waiting ``--interval`` seconds when nothing is pending
and backing off (up to ``--max-interval``) while the broker is out. Several
relays may run at once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from sa_signals.celery.outbox import standalone_outbox_table
from sa_signals.celery.relay import claimable, relay_outbox

logger = logging.getLogger("sa_signals")

T = TypeVar("T", int, float)


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    engine = create_engine(options.db, pool_pre_ping=True)
    if engine.dialect.is_async:
        raise SystemExit(f"--db takes a synchronous driver's URL, not {options.db!r}")
    app = _load_app(options.app)
    try:
        if not options.loop:
            published = relay_outbox(
                engine, app, batch_size=options.batch_size, schema=options.schema
            )
            print(f"published {published} event(s)")
            return 0
        with contextlib.suppress(KeyboardInterrupt):
            _loop(engine, app, options)
        return 0
    finally:
        engine.dispose()


def _loop(engine: Engine, app: Celery[Any], options: argparse.Namespace) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    wait = options.interval
    while not stop.is_set():
        try:
            published = relay_outbox(
                engine, app, batch_size=options.batch_size, schema=options.schema
            )
            still_pending = _pending(engine, options.schema) if not published else 0
        except SQLAlchemyError as error:  # the database, for a moment: keep going
            logger.warning("The outbox could not be read (%s); trying again.", error)
            published, still_pending = 0, 1
        if published:
            logger.info("published %d event(s)", published)
            wait = options.interval
        elif still_pending:
            wait = min(wait * 2, options.max_interval)  # something is out: back off
        else:
            wait = options.interval
        stop.wait(wait)


def _pending(engine: Engine, schema: str | None) -> int:
    """The events a relay could take now (not those set aside after a refusal)."""
    table = standalone_outbox_table(schema)
    with engine.connect() as connection:
        query = select(func.count()).select_from(table).where(claimable(table, datetime.now(UTC)))
        return connection.scalar(query) or 0


def _load_app(path: str) -> Celery[Any]:
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise SystemExit(f"--app takes MODULE:APP (such as myproject.tasks:app), not {path!r}")
    app = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(app, Celery):
        raise SystemExit(f"--app {path!r} is not a Celery application")
    # The modules the app's configuration names (include=, imports=, autodiscovered
    # tasks), as a worker imports them: the relay publishes only the events of
    # background receivers that its app knows.
    app.loader.import_default_modules()
    return app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sa_signals.celery")
    commands = parser.add_subparsers(dest="command", required=True)
    relay = commands.add_parser("relay", help="publish the outbox's pending events")
    relay.add_argument("--db", required=True, help="SQLAlchemy URL of the database")
    relay.add_argument("--app", required=True, help="the Celery app, as MODULE:APP")
    relay.add_argument("--schema", help="the outbox's schema, if it has one")
    relay.add_argument("--loop", action="store_true", help="keep relaying until stopped")
    relay.add_argument(
        "--interval", type=_positive(float), default=1.0, help="seconds between runs"
    )
    relay.add_argument(
        "--max-interval", type=_positive(float), default=60.0, help="longest back-off"
    )
    relay.add_argument("--batch-size", type=_positive(int), default=500)
    return parser


def _positive(kind: type[T]) -> Callable[[str], T]:
    def parse(text: str) -> T:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not above zero")
        return value

    return parse


if __name__ == "__main__":
    sys.exit(main())
