"""Django, as the yardstick: the dispatcher and ``save()`` that sa-signals mirrors.

Django is a benchmark-only dependency (``pip install 'Django>=5.2,<5.3'``),
imported by nothing but this module, which the dispatch table and the Django
worker processes import. It runs in-process, configured with
``settings.configure()``: an in-memory SQLite database and one model with an
explicit ``app_label``, the same columns as ``benchmarks.models.Item``.
``DEBUG`` stays off, or Django would keep every query it ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["DjangoFlushes", "configure"]


def configure() -> None:
    """Set Django up once per process (again is a no-op)."""
    import django  # type: ignore[import-untyped]
    from django.conf import settings  # type: ignore[import-untyped]

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=[],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


class DjangoFlushes:
    """The same writes as the SQLAlchemy workers make, Django's way: one
    ``save()`` (or ``delete()``) per object inside ``transaction.atomic()``, and
    ``QuerySet.delete()`` for the bulk DELETE."""

    def __init__(self, receiver: Callable[..., Any] | None) -> None:
        configure()
        from django.db import connection, models  # type: ignore[import-untyped]
        from django.db.models.signals import (  # type: ignore[import-untyped]
            post_delete,
            post_save,
        )

        class BenchItem(models.Model):  # type: ignore[misc]
            name = models.CharField(max_length=100)
            quantity = models.IntegerField()
            note = models.CharField(max_length=200, null=True)

            class Meta:
                app_label = "benchmarks"
                db_table = "bench_item"

        with connection.schema_editor() as editor:
            editor.create_model(BenchItem)
        self.model: Any = BenchItem
        if receiver is not None:
            post_save.connect(receiver, sender=BenchItem, weak=False)
            post_delete.connect(receiver, sender=BenchItem, weak=False)

    def prepare(self, operation: str, rows: list[dict[str, Any]]) -> Callable[[], None]:
        """Set ``len(rows)`` objects up for ``operation`` (built, or inserted and
        loaded), and return what is timed: the writes, as in the SQLAlchemy
        workers, where only ``commit()`` is."""
        from django.db import connection, transaction

        model = self.model
        with connection.cursor() as cursor:  # no Collector, no signal: not part of the sample
            cursor.execute(f"DELETE FROM {model._meta.db_table}")
        if operation == "insert":
            objects = [model(**row) for row in rows]
        elif operation in ("update", "delete"):
            model.objects.bulk_create([model(**row) for row in rows])
            objects = list(model.objects.all())
        elif operation == "bulk_delete":
            model.objects.bulk_create([model(**row) for row in rows])
        else:
            raise ValueError(f"unknown operation {operation!r}")

        def save() -> None:
            with transaction.atomic():
                for instance in objects:
                    instance.save()

        def delete() -> None:
            with transaction.atomic():
                for instance in objects:
                    instance.delete()

        def bulk_delete() -> None:
            with transaction.atomic():
                model.objects.filter(quantity__gte=0).delete()

        if operation == "update":
            for instance in objects:
                instance.quantity += 1
        return {"insert": save, "update": save, "delete": delete, "bulk_delete": bulk_delete}[
            operation
        ]
