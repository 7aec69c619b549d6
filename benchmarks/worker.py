"""One variant's worker process: ``python -m benchmarks.worker '<json config>'``.

The process sets its variant up once, as an application does at import time
(imports sa-signals or not, connects receivers or registers a listener), then
answers the coordinator's requests, one JSON line in, one JSON line out, until
its stdin closes. Only one worker runs a sample at a time: the others wait on
their stdin, so that they do not compete for the machine's cores.

Every sample starts from the same state (the table emptied, the rows an update
or delete needs inserted through Core), builds or loads its objects, and times
only what sa-signals can change: ``session.commit()``, which flushes, commits,
and runs deferred receivers.

The objects of the set-up (modules, mappers, engines) are frozen out of the
garbage collector's reach (``gc.freeze()``): a full collection, which would
otherwise scan them all, costs tens of milliseconds here and lands at random
in one sample or another; what remains is the flush's own garbage.

Under callgrind (``"mark": true``) the timed region is bracketed by calls of
``sys.getswitchinterval()``, which nothing else calls: the coordinator runs the
process with ``--dump-before=sys_getswitchinterval``, so that callgrind writes
the instructions of exactly the timed region to a file of its own.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, delete, event, select
from sqlalchemy.orm import Mapper, Session

from benchmarks.models import Base, Item, Other, item_rows, new_items, reset, seed
from benchmarks.variants import VARIANTS, Variant

if TYPE_CHECKING:  # Celery is imported by table 5's variants only
    from benchmarks.celery_side import CeleryBench

__all__: list[str] = []


class Counter:
    """How many times the receiver ran, over the process's life."""

    calls = 0


def receiver(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    """The receiver every variant connects: the cheapest one that still does
    something observable."""
    Counter.calls += 1


# -- setting a variant up ---------------------------------------------------------------------


def set_up(variant: Variant) -> Any:
    """Do what an application of this variant does at import time; returns the
    Django yardstick for a Django variant."""
    name = variant.name
    if variant.django:
        from benchmarks.django_yardstick import DjangoFlushes

        return DjangoFlushes(receiver if name == "django_receiver" else None)
    if name == "listener":
        _register_listener()
    if not variant.imports_sa_signals:
        return None
    import sa_signals

    every_model_signal = (
        sa_signals.pre_save,
        sa_signals.post_save,
        sa_signals.pre_delete,
        sa_signals.post_delete,
    )
    if name == "other":
        for signal in every_model_signal:
            signal.connect(receiver, sender=Other)
    elif name in ("receiver", "tracing_off", "traced"):
        sa_signals.post_save.connect(receiver, sender=Item)
        sa_signals.post_delete.connect(receiver, sender=Item)
        if name != "receiver":
            _turn_tracing_on(off_again=name == "tracing_off")
    elif name == "pre_post":
        for signal in every_model_signal:
            signal.connect(receiver, sender=Item)
    elif name == "on_commit":
        sa_signals.post_save.connect(receiver, sender=Item, on_commit=True)
        sa_signals.post_delete.connect(receiver, sender=Item, on_commit=True)
    return None


def _turn_tracing_on(off_again: bool) -> None:
    """OpenTelemetry's SDK with no exporter: the spans are made and dropped, so
    what is measured is the tracing, not an exporter's I/O."""
    from opentelemetry.sdk.trace import TracerProvider

    from sa_signals.tracing import disable_tracing, enable_tracing

    enable_tracing(tracer_provider=TracerProvider())
    if off_again:
        disable_tracing()


def _register_listener() -> None:
    """What a user would write without sa-signals: SQLAlchemy's mapper events,
    calling the same function with the arguments it needs."""

    def after_insert(mapper: Mapper[Any], connection: Any, target: Any) -> None:
        receiver(sender=type(target), instance=target, created=True)

    def after_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
        receiver(sender=type(target), instance=target, created=False)

    def after_delete(mapper: Mapper[Any], connection: Any, target: Any) -> None:
        receiver(sender=type(target), instance=target)

    event.listen(Item, "after_insert", after_insert)
    event.listen(Item, "after_update", after_update)
    event.listen(Item, "after_delete", after_delete)


# -- the requests -------------------------------------------------------------------------------


class Worker:
    def __init__(self, variant: Variant, urls: dict[str, str]) -> None:
        self.variant = variant
        self.urls = urls
        self.engines: dict[str, Engine] = {}
        self.django = set_up(variant)
        self.celery: CeleryBench | None = None  # table 5's variants, once given a broker
        if not variant.imports_sa_signals and "sa_signals" in sys.modules:
            raise RuntimeError(f"{variant.name}: sa_signals was imported after all")
        _freeze()

    def engine(self, database: str) -> Engine:
        engine = self.engines.get(database)
        if engine is None:
            engine = self.engines[database] = create_engine(self.urls[database])
            if database != "postgresql":  # created once by the coordinator, for every worker
                Base.metadata.create_all(engine)
            _freeze()
        return engine

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request["command"]
        handler: Callable[..., dict[str, Any]] = getattr(self, f"do_{command}")
        arguments = {key: value for key, value in request.items() if key != "command"}
        return handler(**arguments)

    def do_ready(self) -> dict[str, Any]:
        return {"pid": os.getpid()}

    def do_flush(
        self, database: str, operation: str, objects: int, mark: bool = False
    ) -> dict[str, Any]:
        if self.django is not None:
            if database != "sqlite-memory":
                raise ValueError("the Django yardstick runs on in-memory SQLite only")
            action = self.django.prepare(operation, item_rows(objects))
            calls_before = Counter.calls
            seconds = _timed(action, mark)
            return {"seconds": seconds, "calls": Counter.calls - calls_before}
        engine = self.engine(database)
        reset(engine)
        if operation != "insert":
            seed(engine, objects)
        with Session(engine) as session:
            if operation == "insert":
                session.add_all(new_items(objects))
            elif operation == "update":
                for item in session.scalars(select(Item)).all():
                    item.quantity += 1
            elif operation == "delete":
                for item in session.scalars(select(Item)).all():
                    session.delete(item)
            elif operation != "bulk_delete":
                raise ValueError(f"unknown operation {operation!r}")

            def action() -> None:
                if operation == "bulk_delete":
                    session.execute(delete(Item).where(Item.quantity >= 0))
                session.commit()

            calls_before = Counter.calls
            seconds = _timed(action, mark)
        return {"seconds": seconds, "calls": Counter.calls - calls_before}

    def do_celery(self, database: str, measure: str, objects: int, broker: str) -> dict[str, Any]:
        """One sample of table 5: ``measure`` is ``commit``, ``relay`` or
        ``send_task_loop`` (see ``benchmarks.celery_side``)."""
        if self.celery is None:
            from benchmarks.celery_side import CeleryBench

            self.celery = CeleryBench(self.variant.name, broker)
            _freeze()
        engine = self.engine(database)
        self.celery.prepare(engine)
        sample: Callable[..., dict[str, Any]] = getattr(self.celery, measure)
        return sample(engine, objects, lambda action: _timed(action, mark=False))

    def do_memory_peak(self, database: str, objects: int) -> dict[str, Any]:
        """Peak traced memory of building and flushing ``objects`` new items,
        above what the process held before; and the peak of the flush alone,
        above what it held when the flush began."""
        engine = self.engine(database)
        reset(engine)
        calls_before = Counter.calls
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            with Session(engine) as session:
                session.add_all(new_items(objects))
                before_flush, peak_so_far = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                session.commit()
                flush_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return {
            "peak": max(peak_so_far, flush_peak) - base,
            "flush_peak": flush_peak - before_flush,
            "calls": Counter.calls - calls_before,
        }

    def do_memory_deferred(self, database: str, objects: int) -> dict[str, Any]:
        """Traced memory left behind by creating and committing ``objects`` new
        items in a long-lived session, after the instances are dropped: measured
        from the end of a first, identical round (which sizes the session's own
        containers, such as the identity map's dict, that never shrink) to the end
        of a second."""
        engine = self.engine(database)
        reset(engine)
        tracemalloc.start()
        try:
            with Session(engine) as session:
                _create_and_commit(session, objects)
                _collect()
                base = tracemalloc.get_traced_memory()[0]
                calls_before = Counter.calls
                _create_and_commit(session, objects)
                _collect()
                growth = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        return {"growth": growth, "calls": Counter.calls - calls_before}

    def do_memory_receivers(self, receivers: int, weak_collected: bool) -> dict[str, Any]:
        """Traced memory left behind by connecting ``receivers`` receivers (100
        at a time, to ``pre_save`` and ``post_save``, for two models and for any
        sender), sending once, then disconnecting them, or (``weak_collected``)
        just dropping them, so that their weak references die; measured from the
        end of a first, identical round to the end of a second."""
        import sa_signals

        def cycle(count: int) -> None:
            senders = (Item, Other, None)
            for batch_start in range(0, count, 100):
                batch = [_make_receiver() for _ in range(min(100, count - batch_start))]
                for position, function in enumerate(batch):
                    signal = sa_signals.post_save if position % 2 else sa_signals.pre_save
                    signal.connect(function, sender=senders[position % 3])
                for signal in (sa_signals.pre_save, sa_signals.post_save):
                    signal.send(Item, instance=None)
                    signal.send(Other, instance=None)
                if not weak_collected:
                    for position, function in enumerate(batch):
                        signal = sa_signals.post_save if position % 2 else sa_signals.pre_save
                        if not signal.disconnect(function, sender=senders[position % 3]):
                            raise RuntimeError("a receiver was not disconnected")
                del batch
            _collect()
            # A weakly held receiver that died is forgotten at the next connect.
            for signal in (sa_signals.pre_save, sa_signals.post_save):
                signal.disconnect(dispatch_uid="benchmarks: prune")
            _collect()

        tracemalloc.start()
        try:
            cycle(receivers)  # the same once before: caches and containers reach their size
            base = tracemalloc.get_traced_memory()[0]
            cycle(receivers)
            growth = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        return {"growth": growth}


def _freeze() -> None:
    """Move everything alive now out of the collector's reach (see the module
    docstring)."""
    gc.collect()
    gc.freeze()


def _timed(action: Callable[[], None], mark: bool) -> float:
    """Seconds ``action()`` took; bracketed by the callgrind markers if ``mark``."""
    gc.collect()
    if mark:
        sys.getswitchinterval()
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    if mark:
        sys.getswitchinterval()
    return seconds


def _collect() -> None:
    """Collect twice: weak reference callbacks (SQLAlchemy's identity map uses
    them) run during a collection and may leave more to collect."""
    gc.collect()
    gc.collect()


def _make_receiver() -> Callable[..., None]:
    def connected(sender: Any, **kwargs: Any) -> None:
        return None

    return connected


def _create_and_commit(session: Session, count: int) -> None:
    session.add_all(new_items(count))
    session.commit()


def main() -> None:
    config = json.loads(sys.argv[1])
    # The protocol owns the real stdout; anything else printed goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    worker = Worker(VARIANTS[config["variant"]], config["urls"])
    for line in sys.stdin:
        try:
            reply = worker.handle(json.loads(line))
        except Exception:
            reply = {"error": traceback.format_exc()}
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
