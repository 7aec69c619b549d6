"""Table 5: background receivers on Celery, through the outbox, against the
usual ``task.delay()`` after the commit.

Two measurements, per database, with a real broker (Redis; ``--broker-url``):

* **Delivery**: one ``session.commit()`` of N new items, each with a
  ``post_save`` receiver run in the background, timed until every event is with
  the broker; ``@task_receiver`` (the event written into the outbox in the
  transaction, published after the commit, marked sent) as a ratio to
  ``task.delay()`` from an ``on_commit=True`` receiver, which loses the event
  when the broker is down at that moment. What the ratio prices is the
  guarantee: an extra row per event, written in the transaction, and marked
  once the broker has it.
* **Relay**: ``relay_outbox()`` over a backlog of N pending events, in events
  per second, as a ratio to a bare loop of ``app.send_task()`` publishing the
  same events: what claiming and marking cost on top of publishing.

Each variant runs in a worker process of its own (see ``benchmarks.variants``),
interleaved round by round as in table 2. Every sample checks that the broker
received exactly N messages, then empties the queue; nothing consumes them.
"""

from __future__ import annotations

import functools
import os

from benchmarks.context import Context
from benchmarks.harness import (
    DATABASE_LABELS,
    Samples,
    Summary,
    Table,
    Target,
    format_duration,
    format_ratio,
    format_summary,
    interleave,
    labelled,
)
from benchmarks.pool import WorkerError, WorkerProcess
from benchmarks.variants import CELERY_VARIANTS

__all__ = ["run"]

RELAY, SEND_TASK = "relay", "send_task_loop"


def run(context: Context) -> tuple[list[Table], list[Target]]:
    options = context.options
    objects = options.outbox_objects
    table = Table(
        f"Table 5: background receivers on Celery (Redis), N = {objects:,} events per commit",
        ["measurement", *[DATABASE_LABELS[name] for name in context.databases.names]],
    )
    unreachable = _unreachable(options.broker_url)
    if unreachable is not None:
        reason = f"Not measured: the broker {options.broker_url} is unreachable ({unreachable})."
        if os.environ.get("SA_SIGNALS_REQUIRE_SERVICES") == "1":
            raise RuntimeError(f"{reason} SA_SIGNALS_REQUIRE_SERVICES=1")
        table.notes.append(reason)
        return [table], []
    pool = context.workers.get(CELERY_VARIANTS)
    delivery: dict[str, Samples] = {}
    relay: dict[str, Samples] = {}
    for database in context.databases.names:
        arguments = (pool, database, objects, options.broker_url)
        delivery[database] = interleave(
            CELERY_VARIANTS,
            functools.partial(_commit_sample, *arguments),
            rounds=options.rounds,
            warmup=options.warmup,
            progress=labelled(context.progress, f"table 5, {database}, delivery"),
        )
        relay[database] = interleave(
            (RELAY, SEND_TASK),
            functools.partial(_relay_sample, *arguments),
            rounds=options.rounds,
            warmup=options.warmup,
            progress=labelled(context.progress, f"table 5, {database}, relay"),
        )
    names = context.databases.names
    table.add(
        "commit, `task.delay()` from an on_commit=True receiver",
        *[f"1.00x ({format_duration(delivery[d].of('delay_on_commit').median)})" for d in names],
    )
    table.add(
        "commit, `@task_receiver` (outbox), ratio to `task.delay()`",
        *[
            f"{format_ratio(delivery[d].ratio('outbox', 'delay_on_commit'))} "
            f"({format_duration(delivery[d].of('outbox').median)})"
            for d in names
        ],
    )
    table.add(
        "µs added per event by the outbox",
        *[
            format_summary(
                delivery[d].difference("outbox", "delay_on_commit").scaled(1e6 / objects), "µs"
            )
            for d in names
        ],
    )
    table.add(
        "`relay_outbox()`, events per second",
        *[format_summary(_per_second(relay[d], RELAY, objects), "/s", 0) for d in names],
    )
    table.add(
        "bare `app.send_task()` loop, events per second",
        *[format_summary(_per_second(relay[d], SEND_TASK, objects), "/s", 0) for d in names],
    )
    table.add(
        "`relay_outbox()` time, ratio to the bare loop",
        *[format_ratio(relay[d].ratio(RELAY, SEND_TASK)) for d in names],
    )
    table.notes.append(
        f"Median [min-max] of {options.rounds} interleaved rounds. A commit is timed until "
        "every event is with the broker; each sample checks the broker received N messages. "
        "No target: the outbox's price is the guarantee that a committed change is delivered "
        "(README, 'Background receivers on Celery')."
    )
    table.notes.extend(context.databases.notes)
    return [table], []


Pool = dict[str, WorkerProcess]


def _commit_sample(pool: Pool, database: str, objects: int, broker: str, variant: str) -> float:
    return _sample(pool, database, objects, broker, variant, "commit")


def _relay_sample(pool: Pool, database: str, objects: int, broker: str, measure: str) -> float:
    return _sample(pool, database, objects, broker, "outbox", measure)


def _sample(
    pool: Pool, database: str, objects: int, broker: str, variant: str, measure: str
) -> float:
    reply = pool[variant].request(
        "celery", database=database, measure=measure, objects=objects, broker=broker
    )
    if not reply["published"] == reply["queued"] == objects:
        raise WorkerError(
            f"{variant} ({measure}): {objects} events, {reply['published']} published, "
            f"{reply['queued']} in the queue: the variant does not measure what it claims"
        )
    return float(reply["seconds"])


def _per_second(samples: Samples, variant: str, objects: int) -> Summary:
    """Events per second, from seconds per batch (the range flips: the slowest
    batch is the fewest events per second)."""
    seconds = samples.of(variant)
    return Summary(objects / seconds.median, objects / seconds.high, objects / seconds.low)


def _unreachable(broker_url: str) -> str | None:
    """Why the broker cannot be reached, or ``None``: asked before any worker
    starts, so that a missing broker is one clear line, not a traceback."""
    from kombu import Connection

    try:
        with Connection(broker_url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:  # any failure to connect is the reason
        return str(error) or type(error).__name__
    return None
