"""The variants tables 2 to 4 compare, each run in a process of its own.

A process that imported sa-signals cannot be made to forget it: its listeners
stay on ``Session``, and a mapper that ever had a receiver keeps its listeners.
So every variant lives in its own long-lived worker process (see
``benchmarks.worker``), set up once at start as an application would be at
import time, and the coordinator asks the workers for one sample at a time,
in interleaved order.

Receivers are "one per kind of write": ``post_save`` and ``post_delete`` both
connected, as the hand-written listener registers ``after_insert``,
``after_update`` and ``after_delete``. A receiver only counts its calls, which
the coordinator checks, so that a variant that silently stopped sending would
not look fast.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CELERY_VARIANTS", "DJANGO_VARIANTS", "SA_VARIANTS", "VARIANTS", "Variant"]


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    imports_sa_signals: bool
    django: bool = False
    # receiver calls per object written, by operation ("insert", "update",
    # "delete" for a flush; "bulk_delete" for an ORM-enabled DELETE statement)
    calls_per_object: tuple[tuple[str, int], ...] = ()

    def expected_calls(self, operation: str, objects: int) -> int:
        return dict(self.calls_per_object).get(operation, 0) * objects


_ONE_EACH = (("insert", 1), ("update", 1), ("delete", 1), ("bulk_delete", 1))
_TWO_EACH = (("insert", 2), ("update", 2), ("delete", 2), ("bulk_delete", 2))

VARIANTS = {
    variant.name: variant
    for variant in (
        Variant("plain", "plain SQLAlchemy (sa_signals not imported)", False),
        Variant("imported", "sa-signals imported, no receivers", True),
        Variant("other", "receivers on another model only", True),
        Variant(
            "receiver", "1 receiver (post_save; post_delete)", True, calls_per_object=_ONE_EACH
        ),
        Variant(
            "pre_post",
            "pre_save + post_save (pre_ + post_delete)",
            True,
            calls_per_object=_TWO_EACH,
        ),
        Variant(
            "on_commit",
            "1 on_commit=True receiver",
            True,
            calls_per_object=_ONE_EACH,
        ),
        Variant(
            "tracing_off",
            "1 receiver, tracing turned on and off again",
            True,
            calls_per_object=_ONE_EACH,
        ),
        Variant(
            "traced",
            "1 receiver, traced (OpenTelemetry SDK, spans not exported)",
            True,
            calls_per_object=_ONE_EACH,
        ),
        Variant(
            "listener",
            "hand-written after_insert/_update/_delete listener",
            False,
            # a bulk DELETE statement fires no mapper event
            calls_per_object=(("insert", 1), ("update", 1), ("delete", 1)),
        ),
        Variant("delay_on_commit", "task.delay() from an on_commit=True receiver", True),
        Variant("outbox", "@task_receiver: the outbox", True),
        Variant("django", "Django save()/delete(), no receiver", False, django=True),
        Variant(
            "django_receiver",
            "Django save()/delete(), 1 receiver",
            False,
            django=True,
            calls_per_object=_ONE_EACH,
        ),
    )
}

CELERY_VARIANTS = ("delay_on_commit", "outbox")  # table 5 only
SA_VARIANTS = tuple(
    name for name, variant in VARIANTS.items() if not variant.django and name not in CELERY_VARIANTS
)
DJANGO_VARIANTS = tuple(name for name, variant in VARIANTS.items() if variant.django)
