"""sa-signals keeps nothing of a flush alive once it is done.

After a flush, a session holds persistent instances weakly: an instance nobody
else refers to is freed at once, and ``commit()`` has nothing left to expire.
What sa-signals records during a flush (the instances to announce) must let go
as promptly, by reference counting alone, not whenever the garbage collector
next runs: the collector is switched off in these tests to tell the two apart.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from sa_signals import post_delete, post_save, pre_delete, pre_save
from tests.models import Order

Released = Callable[[], bool]


@pytest.fixture(autouse=True)
def receivers_that_keep_nothing() -> Iterator[list[str]]:
    """Receivers of every model signal, which only note what they were sent."""
    heard: list[str] = []
    signals = {"pre_save": pre_save, "post_save": post_save}
    signals |= {"pre_delete": pre_delete, "post_delete": post_delete}
    notes = {}
    for name, signal in signals.items():

        def note(name: str = name, **kwargs: Any) -> None:
            heard.append(name)

        notes[name] = signal.connect(note, sender=Order, weak=False)
    yield heard
    for name, signal in signals.items():
        signal.disconnect(notes[name], sender=Order)


@pytest.fixture(autouse=True)
def no_garbage_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def watch(instance: Any) -> Released:
    reference = weakref.ref(instance)
    return lambda: reference() is None


def test_an_inserted_instance_is_freed_after_the_flush(
    session: Session, receivers_that_keep_nothing: list[str]
) -> None:
    order = Order(reference="A-1")
    session.add(order)
    released = watch(order)
    del order

    session.flush()

    assert receivers_that_keep_nothing == ["pre_save", "post_save"]
    assert released()


def test_an_updated_instance_is_freed_after_the_flush(
    session: Session, receivers_that_keep_nothing: list[str]
) -> None:
    session.add(Order(reference="A-1"))
    session.commit()
    order = session.scalars(select(Order)).one()
    order.status = "paid"
    released = watch(order)
    del order
    receivers_that_keep_nothing.clear()

    session.flush()

    assert receivers_that_keep_nothing == ["pre_save", "post_save"]
    assert released()


def test_a_deleted_instance_is_freed_after_the_commit(
    session: Session, receivers_that_keep_nothing: list[str]
) -> None:
    """SQLAlchemy itself keeps a deleted instance until the commit."""
    session.add(Order(reference="A-1"))
    session.commit()
    order = session.scalars(select(Order)).one()
    session.delete(order)
    released = watch(order)
    del order
    receivers_that_keep_nothing.clear()

    session.commit()

    assert receivers_that_keep_nothing == ["pre_delete", "post_delete"]
    assert released()
