"""pre_init and post_init: around the constructor, and on each load from the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from sa_signals import post_init, pre_init
from sa_signals.testing import capture
from tests.conftest import Recorder
from tests.models import Employee, Manager, Order
from tests.subprocesses import WATCHED_AND_IGNORED, run_fresh

Listen = Callable[..., Recorder]


def test_pre_init_comes_before_the_constructor_with_its_arguments(listen: Listen) -> None:
    seen = []
    listen(pre_init, sender=Order).side_effect = lambda kwargs, **_: seen.append(dict(kwargs))
    Order(reference="A-1", status="paid")
    assert seen == [{"reference": "A-1", "status": "paid"}]


def test_pre_init_may_change_what_the_constructor_gets(listen: Listen) -> None:
    def default_status(kwargs: dict[str, Any], **_: Any) -> None:
        kwargs.setdefault("status", "draft")

    listen(pre_init, sender=Order).side_effect = default_status
    assert Order(reference="A-1").status == "draft"


def test_post_init_comes_after_the_constructor(listen: Listen) -> None:
    seen = []
    listen(post_init, sender=Order).side_effect = lambda instance, **_: seen.append(
        instance.reference
    )
    order = Order(reference="A-1")
    assert seen == ["A-1"]
    assert order.reference == "A-1"


def test_a_subclass_calling_super_init_is_constructed_once(listen: Listen) -> None:
    before, after = listen(pre_init, sender=Manager), listen(post_init, sender=Manager)
    of_employees = listen(post_init, sender=Employee)
    boss = Manager(name="Grace")
    assert len(before.calls) == 1
    assert after.instances == [boss]
    assert boss.budget == 100  # post_init saw the finished instance
    assert of_employees.calls == []  # the sender is the exact class


def test_post_init_is_sent_once_per_instance_loaded(session: Session, listen: Listen) -> None:
    session.add_all([Order(reference="A-1"), Order(reference="A-2")])
    session.commit()
    session.expunge_all()
    loaded = listen(post_init, sender=Order)

    orders = session.scalars(select(Order).order_by(Order.reference)).all()
    assert loaded.instances == orders
    assert all(call["session"] is session for call in loaded.calls)

    session.scalars(select(Order)).all()  # identity-map hits: no new instance
    session.get(Order, orders[0].id)
    session.expire(orders[0])
    assert orders[0].reference == "A-1"  # a refresh: no new instance
    assert len(loaded.calls) == 2


@pytest.mark.parametrize("load", [True, False])
def test_post_init_is_sent_for_the_instance_a_merge_makes(
    session: Session, listen: Listen, load: bool
) -> None:
    detached = Order(reference="A-1")
    session.add(detached)
    session.commit()
    session.refresh(detached)
    session.expunge(detached)
    made = listen(post_init, sender=Order)

    merged = session.merge(detached, load=load)  # load=False: no SELECT, no context

    assert merged is not detached
    assert made.instances == [merged]
    assert made.calls[0]["session"] is session
    assert merged.reference == "A-1"


def test_post_init_is_sent_for_a_new_object_merged(session: Session, listen: Listen) -> None:
    new = Order(reference="A-1")
    made = listen(post_init, sender=Order)

    merged = session.merge(new)

    assert made.instances == [merged]
    assert made.calls[0]["session"] is session
    assert merged in session.new


def test_post_init_of_a_constructor_carries_no_session() -> None:
    with capture(post_init, sender=Order) as constructed:
        Order(reference="A-1")
    assert constructed[0]["session"] is None


def test_a_class_nobody_listens_to_keeps_sqlalchemys_constructor() -> None:
    run_fresh(
        """
        import sa_signals

        plain = Ignored.__init__
        seen = []
        def receiver(instance, **kwargs):
            seen.append(instance)
        sa_signals.post_init.connect(receiver, sender=Watched)
        assert Ignored.__init__ is plain
        assert Watched.__init__ is not plain
        watched = Watched()
        assert seen == [watched]
        """,
        prelude=WATCHED_AND_IGNORED,
    )


def test_any_sender_reaches_classes_mapped_before_and_after_connecting() -> None:
    run_fresh(
        """
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
        import sa_signals

        class Base(DeclarativeBase):
            pass

        class Before(Base):
            __tablename__ = "before"
            id: Mapped[int] = mapped_column(primary_key=True)

        seen = []
        def receiver(sender, **kwargs):
            seen.append(sender)
        sa_signals.post_init.connect(receiver)

        class After(Base):
            __tablename__ = "after"
            id: Mapped[int] = mapped_column(primary_key=True)

        Before(); After()
        assert seen == [Before, After], seen
        """
    )


@pytest.mark.parametrize("sender", ["Thing", "None"])
def test_init_signals_go_on_for_a_class_mapped_again(sender: str) -> None:
    run_fresh(
        f"""
        from sqlalchemy import Column, Integer, Table
        from sqlalchemy.orm import registry
        import sa_signals

        class Thing:
            pass

        def mapped():
            mapping = registry()
            table = Table("thing", mapping.metadata, Column("id", Integer, primary_key=True))
            mapping.map_imperatively(Thing, table)
            return mapping

        first = mapped()
        seen = []
        def receiver(signal, sender, **kwargs):
            seen.append(signal)
        sa_signals.pre_init.connect(receiver, sender={sender})
        sa_signals.post_init.connect(receiver, sender={sender})
        Thing()
        first.dispose()  # as clear_mappers() does: Thing's own constructor is back
        mapped()
        Thing()
        pre, post = sa_signals.pre_init, sa_signals.post_init
        assert seen == [pre, post, pre, post], seen
        """
    )
