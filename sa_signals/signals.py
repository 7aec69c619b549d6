"""The model signals, declared in one place, each with the moment it is sent.

They are sent for every mapped class by every kind of session once
``sa_signals`` is imported; ``sa_signals.orm`` translates SQLAlchemy's events
into them. ``sender`` is always the instance's own class, and every model signal
carries ``session``, the ``Session`` doing the work (an ``AsyncSession``'s
``sync_session``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import blinker
from sqlalchemy import Table, inspect
from sqlalchemy.orm import Mapper

from sa_signals.dispatch import Receiver, Signal, describe
from sa_signals.transaction import defer

__all__ = [
    "ModelSignal",
    "m2m_changed",
    "post_bulk_update",
    "post_delete",
    "post_init",
    "post_migrate",
    "post_save",
    "pre_bulk_update",
    "pre_delete",
    "pre_init",
    "pre_migrate",
    "pre_save",
]

F = TypeVar("F", bound=Receiver)


class ModelSignal(Signal):
    """A signal about instances of mapped classes, sent with the ``session``
    doing the work.

    Connecting checks the sender at once: a class that is not mapped (an
    abstract base, a typo, a plain class) would otherwise never hear anything,
    which is the kind of silence nobody debugs quickly.

    ``connect(..., on_commit=True)`` defers a receiver until the session's
    transaction commits (``deferrable=False`` for signals sent outside any
    transaction).
    """

    def __init__(
        self, doc: str | None = None, *, use_caching: bool = False, deferrable: bool = True
    ) -> None:
        super().__init__(doc, use_caching=use_caching)
        self.can_defer = deferrable

    def connect(
        self,
        receiver: F,
        sender: Any = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
        *,
        on_commit: bool = False,
    ) -> F:
        if sender is not None and sender is not blinker.ANY:
            self._check_sender(sender, receiver)
        return super().connect(receiver, sender, weak, dispatch_uid, on_commit=on_commit)

    def _defer(
        self,
        receiver: Receiver,
        kwargs: dict[str, Any],
        around: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        defer(receiver, kwargs, around)

    def _check_sender(self, sender: Any, receiver: Receiver) -> None:
        if isinstance(sender, Mapper):  # signals are sent by type(instance): never a Mapper
            raise TypeError(
                f"Cannot connect {describe(receiver)} for sender {sender!r}: connect for "
                f"the mapped class itself, sender={sender.class_.__name__}."
            )
        if not isinstance(sender, type) or not isinstance(inspect(sender, raiseerr=False), Mapper):
            raise TypeError(
                f"Cannot connect {describe(receiver)} for sender {sender!r}: model signals "
                "are sent by mapped classes, and it is not one (an abstract base class? "
                "then connect each subclass, or sender=None)."
            )


class AssociationSignal(ModelSignal):
    """A signal about many-to-many collections: its sender is the association
    ``Table`` of a ``relationship(secondary=...)``, as Django's is the through model."""

    def _check_sender(self, sender: Any, receiver: Receiver) -> None:
        if not isinstance(sender, Table):
            raise TypeError(
                f"Cannot connect {describe(receiver)} for sender {sender!r}: m2m_changed is "
                "sent by the association Table of a relationship(secondary=...)."
            )


pre_init = ModelSignal(
    doc="""Sent when a mapped class's constructor is called, before it runs.

    Keyword arguments: ``sender, args, kwargs, session`` (``None``). Changing
    ``kwargs`` changes what the constructor receives.
    """,
    deferrable=False,
)

post_init = ModelSignal(
    doc="""Sent after a mapped class's constructor has run, and after an instance is
    loaded from the database (once per loaded instance, not when an expired one
    is refreshed).

    Keyword arguments: ``sender, instance, session`` (the loading session, or
    ``None`` for a constructor call).
    """,
    deferrable=False,
)

pre_save = ModelSignal(
    doc="""Sent at flush, before an instance's INSERT or UPDATE.

    Keyword arguments: ``sender, instance, raw, using, update_fields, session``.
    The receiver may change the instance, its relationships, and ``session.add()``
    other objects: all of it is written by the same flush.
    """
)

post_save = ModelSignal(
    doc="""Sent at flush, after an instance's INSERT or UPDATE, inside the transaction.

    Keyword arguments: ``sender, instance, created, raw, using, update_fields,
    changes, session``. The primary key and server defaults are available; what the
    receiver adds to the session is written before ``commit()`` returns.
    """
)

pre_delete = ModelSignal(
    doc="""Sent at flush, before an instance's DELETE, including ORM cascades and
    delete-orphans.

    Keyword arguments: ``sender, instance, using, origin, session``.
    """
)

post_delete = ModelSignal(
    doc="""Sent at flush, after an instance's DELETE, inside the transaction.

    Keyword arguments: ``sender, instance, using, origin, session``. Every column
    value the instance had can still be read.
    """
)

m2m_changed = AssociationSignal(
    doc="""Sent at flush around the INSERT and DELETE of a many-to-many
    collection's association rows.

    Keyword arguments: ``sender`` (the association ``Table``), ``instance`` (whose
    collection changed), ``action`` (``pre_add``, ``post_add``, ``pre_remove``,
    ``post_remove``, ``pre_clear``, ``post_clear``), ``reverse``, ``model`` (the
    class on the other side), ``pk_set``, ``using``, ``objects``, ``session``.
    """
)

pre_bulk_update = ModelSignal(
    doc="""Sent before an ORM-enabled ``update()`` statement runs.

    Keyword arguments: ``sender, statement, pks, session``; ``pks`` is the list of
    primary keys for the by-primary-key form, ``None`` for the ``WHERE`` form.
    """
)

post_bulk_update = ModelSignal(
    doc="""Sent after an ORM-enabled ``update()`` statement ran.

    Keyword arguments: ``sender, statement, pks, session``; ``pks`` is the list of
    primary keys of exactly the rows the statement updated.
    """
)

pre_migrate = Signal(
    doc="""Sent before an Alembic upgrade or downgrade runs its migrations (from
    ``sa_signals.migrations.run_migrations``), inside the migration transaction.

    Keyword arguments: ``sender`` (the Alembic ``Config``), ``direction``
    (``"upgrade"`` or ``"downgrade"``), ``revision`` (the target), ``using`` (the
    connection).
    """
)

post_migrate = Signal(
    doc="""Sent after an Alembic upgrade or downgrade ran its migrations, inside
    the migration transaction; same keyword arguments as ``pre_migrate``.
    """
)
