"""pre_delete and post_delete: explicit, cascaded and orphaned deletions, with origin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect, select
from sqlalchemy.exc import SAWarning
from sqlalchemy.orm import Session

from sa_signals import post_delete, post_save, pre_delete, pre_save
from sa_signals.testing import capture
from tests.conftest import Recorder
from tests.models import Order, OrderLine, Parcel, Shipment, Ticket

Listen = Callable[..., Recorder]


def an_order_with_lines(session: Session, *products: str) -> Order:
    order = Order(reference="A-1", lines=[OrderLine(product=product) for product in products])
    session.add(order)
    session.commit()
    return order


def test_an_explicit_delete_is_its_own_origin(session: Session) -> None:
    order = an_order_with_lines(session)

    with capture(pre_delete, sender=Order) as before, capture(post_delete, sender=Order) as after:
        session.delete(order)
        session.flush()

    for calls in (before, after):
        (call,) = calls
        assert call["sender"] is Order
        assert call["instance"] is order
        assert call["origin"] is order
        assert call["session"] is session
        assert call["using"] is session.get_bind(Order.__mapper__)


def test_pre_delete_comes_before_the_row_is_gone(
    session: Session, engine: Engine, listen: Listen
) -> None:
    order = an_order_with_lines(session)
    rows_seen = []

    def count_rows(**kwargs: Any) -> None:
        with Session(engine) as other:
            rows_seen.append(len(other.scalars(select(Order)).all()))

    listen(pre_delete, sender=Order).side_effect = count_rows
    session.delete(order)
    session.commit()
    assert rows_seen == [1]


def test_cascaded_children_have_the_deleted_parent_as_origin(
    session: Session, listen: Listen
) -> None:
    order = an_order_with_lines(session, "pen", "ink")
    lines = list(order.lines)
    before, after = listen(pre_delete, sender=OrderLine), listen(post_delete, sender=OrderLine)

    session.delete(order)
    session.commit()

    assert sorted(before.instances, key=id) == sorted(lines, key=id)
    assert sorted(after.instances, key=id) == sorted(lines, key=id)
    assert {id(call["origin"]) for call in before.calls + after.calls} == {id(order)}


def test_a_delete_orphan_is_deleted_with_itself_as_origin_and_no_pre_save(
    session: Session, engine: Engine, listen: Listen
) -> None:
    order = an_order_with_lines(session, "pen", "ink")
    pen = order.lines[0]
    saves = listen(pre_save, sender=OrderLine), listen(post_save, sender=OrderLine)
    before, after = listen(pre_delete, sender=OrderLine), listen(post_delete, sender=OrderLine)

    order.lines.remove(pen)
    session.commit()

    assert saves[0].calls == saves[1].calls == []
    assert before.instances == after.instances == [pen]
    assert before.calls[0]["origin"] is pen
    assert stored_products(engine) == ["ink"]


def test_an_orphan_of_a_collection_without_backref_is_found_too(
    session: Session, listen: Listen
) -> None:
    shipment = Shipment(carrier="UPS", parcels=[Parcel(weight=1), Parcel(weight=2)])
    session.add(shipment)
    session.commit()
    light = shipment.parcels[0]
    deleted = listen(pre_delete, sender=Parcel)
    saved = listen(pre_save, sender=Parcel)

    shipment.parcels.remove(light)
    session.commit()

    assert deleted.instances == [light]
    assert saved.calls == []


def test_orphaned_by_emptying_the_many_to_one(session: Session, listen: Listen) -> None:
    order = an_order_with_lines(session, "pen")
    pen = order.lines[0]
    deleted = listen(post_delete, sender=OrderLine)

    pen.order = None  # type: ignore[assignment]
    session.commit()

    assert deleted.instances == [pen]


def test_post_delete_reads_every_column_even_those_expired_before_the_delete(
    session: Session, listen: Listen
) -> None:
    order = an_order_with_lines(session)  # committed: every attribute expired
    seen = []
    listen(post_delete, sender=Order).side_effect = lambda instance, **kwargs: seen.append(
        (instance.reference, instance.status, instance.created_at is not None)
    )

    session.delete(order)
    session.commit()

    assert seen == [("A-1", "new", True)]


def test_pre_delete_and_post_delete_are_sent_in_order(session: Session, listen: Listen) -> None:
    order = an_order_with_lines(session, "pen")
    events: list[str] = []
    listen(pre_delete).side_effect = lambda sender, **kwargs: events.append(
        f"pre_delete {sender.__name__}"
    )
    listen(post_delete).side_effect = lambda sender, **kwargs: events.append(
        f"post_delete {sender.__name__}"
    )

    session.delete(order)
    session.flush()

    assert events[:2] == ["pre_delete Order", "pre_delete OrderLine"]
    # Children's rows go first: the foreign key demands it.
    assert events[2:] == ["post_delete OrderLine", "post_delete Order"]


def stored_products(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(OrderLine.product).order_by(OrderLine.product)))


def test_an_orphan_gets_no_pre_save_even_when_only_save_receivers_listen(
    session: Session,
) -> None:
    order = an_order_with_lines(session, "pen")
    pen = order.lines[0]

    with (
        capture(pre_save, sender=OrderLine) as before,
        capture(post_save, sender=OrderLine) as after,
    ):
        order.lines.remove(pen)
        session.commit()

    assert before == after == []


def test_an_orphan_that_left_the_session_is_left_alone(
    session: Session, engine: Engine, listen: Listen
) -> None:
    shipment = Shipment(carrier="UPS", parcels=[Parcel(weight=1), Parcel(weight=2)])
    session.add(shipment)
    session.commit()
    listen(pre_delete)  # any delete receiver at all
    light = shipment.parcels[0]
    shipment.parcels.remove(light)
    session.expunge(light)

    with pytest.warns(SAWarning, match="not in session"):  # SQLAlchemy's own word
        session.commit()

    with Session(engine) as other:
        assert len(other.scalars(select(Parcel)).all()) == 2


def test_post_delete_reads_columns_expired_before_which_stay_expired_after(
    session: Session, listen: Listen
) -> None:
    ticket = Ticket(title="printer on fire")
    session.add(ticket)
    session.commit()
    session.refresh(ticket)
    session.expire(ticket, ["title"])  # SQLAlchemy's flush of the DELETE does not load it
    seen: list[str] = []
    listen(post_delete, sender=Ticket).side_effect = lambda instance, **_: seen.append(
        instance.title
    )
    expired: list[Any] = []

    def record(target: Any, attrs: Any) -> None:
        expired.append(attrs)

    event.listen(Ticket, "expire", record)
    try:
        session.delete(ticket)
        session.flush()
    finally:
        event.remove(Ticket, "expire", record)

    assert seen == ["printer on fire"]  # read once the row is gone
    assert "title" in inspect(ticket).expired_attributes  # as SQLAlchemy leaves it
    assert expired == []  # and no expiry of sa-signals' own to be seen
