"""m2m_changed for relationship(secondary=...) collections, as Django sends it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import SAWarning
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import FlushError

from sa_signals import m2m_changed
from tests.conftest import Recorder
from tests.models import (
    Article,
    Label,
    Order,
    Person,
    Tag,
    article_label,
    friendship,
    order_tag,
)

Listen = Callable[..., Recorder]


def actions(recorder: Recorder) -> list[tuple[str, Any, Any]]:
    return [(call["action"], call["instance"], call["pk_set"]) for call in recorder.calls]


@pytest.fixture
def order_and_tags(session: Session) -> tuple[Order, Tag, Tag, Tag]:
    order = Order(reference="A-1")
    tags = Tag(name="gift"), Tag(name="urgent"), Tag(name="fragile")
    session.add_all([order, *tags])
    session.commit()
    return (order, *tags)


def test_adding_sends_pre_add_and_post_add_around_the_write(
    session: Session, engine: Engine, listen: Listen, order_and_tags: Any
) -> None:
    order, gift, urgent, _ = order_and_tags
    rows_seen = []

    def count_rows(action: str, **kwargs: Any) -> None:
        with Session(engine) as other:
            rows_seen.append((action, len(other.execute(select(order_tag)).all())))

    changed = listen(m2m_changed, sender=order_tag)
    changed.side_effect = count_rows
    order.tags.extend([gift, urgent])
    session.commit()

    assert actions(changed) == [
        ("pre_add", order, {gift.id, urgent.id}),
        ("post_add", order, {gift.id, urgent.id}),
    ]
    call = changed.calls[0]
    assert call["sender"] is order_tag
    assert call["reverse"] is False
    assert call["model"] is Tag
    assert call["session"] is session
    assert call["using"] is session.get_bind(Order.__mapper__)
    assert sorted(call["objects"], key=id) == sorted([gift, urgent], key=id)
    # Every row of this flush is in by post_add (visible to others after the commit).
    assert [action for action, _ in rows_seen] == ["pre_add", "post_add"]


def test_a_new_instance_created_with_its_collection_sends_pre_add_and_post_add(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    _, gift, _, _ = order_and_tags
    changed = listen(m2m_changed, sender=order_tag)
    new_tag = Tag(name="new")
    order = Order(reference="A-2", tags=[gift, new_tag])
    session.add(order)
    session.commit()

    # pre_add comes before the INSERTs: neither the order nor the new tag has a key yet.
    assert actions(changed) == [
        ("pre_add", order, {gift.id}),
        ("post_add", order, {gift.id, new_tag.id}),
    ]
    assert changed.calls[0]["reverse"] is False


def test_a_new_instance_on_the_other_side_sends_from_there_reversed(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    order, _, _, _ = order_and_tags
    changed = listen(m2m_changed, sender=order_tag)
    tag = Tag(name="new", orders=[order])
    session.add(tag)
    session.commit()

    assert actions(changed) == [("pre_add", tag, {order.id}), ("post_add", tag, {order.id})]
    assert changed.calls[0]["reverse"] is True


def test_what_a_pre_add_receiver_adds_is_announced_too_once(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    order, gift, urgent, _ = order_and_tags
    changed = listen(m2m_changed, sender=order_tag)

    def add_urgent_to_gifts(action: str, instance: Order, **kwargs: Any) -> None:
        if action == "pre_add" and urgent not in instance.tags:
            instance.tags.append(urgent)  # written by the same flush

    changed.side_effect = add_urgent_to_gifts
    order.tags.append(gift)
    session.commit()

    assert actions(changed) == [
        ("pre_add", order, {gift.id}),
        ("pre_add", order, {urgent.id}),
        ("post_add", order, {gift.id}),
        ("post_add", order, {urgent.id}),
    ]
    assert sorted(session.scalars(select(order_tag.c.tag_id))) == sorted([gift.id, urgent.id])


def tag_ids_written(session: Session, order: Order) -> list[Any]:
    """The order's association rows as the database has them now, read on the
    session's connection without the autoflush that would write what is pending."""
    query = select(order_tag.c.tag_id).where(order_tag.c.order_id == order.id)
    return sorted(session.connection().scalars(query))


@pytest.mark.parametrize(
    "fragile_stays", [True, False], ids=["an element is left", "the collection is emptied"]
)
def test_what_a_pre_remove_receiver_removes_is_announced_too_once(
    session: Session, listen: Listen, order_and_tags: Any, fragile_stays: bool
) -> None:
    """A pre_remove receiver that removes one more element (as a Django receiver
    calling ``remove()`` would) gets its own pre_remove/post_remove pair, and its
    removal is written by the flush that announced it, not left for a later one.
    When that empties the collection, nobody called ``clear()``: it is still a
    removal, and the element removed first is not announced again."""
    order, gift, urgent, fragile = order_and_tags
    left = [fragile] if fragile_stays else []
    order.tags.extend([gift, urgent, *left])
    session.commit()
    changed = listen(m2m_changed, sender=order_tag)

    def no_urgent_without_gift(action: str, instance: Order, **kwargs: Any) -> None:
        if action == "pre_remove" and gift not in instance.tags and urgent in instance.tags:
            instance.tags.remove(urgent)

    changed.side_effect = no_urgent_without_gift
    order.tags.remove(gift)
    session.flush()

    assert actions(changed) == [
        ("pre_remove", order, {gift.id}),
        ("pre_remove", order, {urgent.id}),
        ("post_remove", order, {gift.id}),
        ("post_remove", order, {urgent.id}),
    ]
    assert changed.calls[1]["objects"] == [urgent]
    assert not session.dirty  # nothing left over for another flush
    assert tag_ids_written(session, order) == [tag.id for tag in left]


def test_what_a_pre_add_receiver_removes_is_announced_as_a_removal(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    """A pre_add receiver may take an element out to make room for the new one:
    that removal is a pre_remove/post_remove pair of its own, written with the
    addition in the same flush, while the addition is still announced once."""
    order, gift, urgent, fragile = order_and_tags
    order.tags.extend([urgent, fragile])
    session.commit()
    changed = listen(m2m_changed, sender=order_tag)

    def a_gift_is_never_urgent(action: str, instance: Order, **kwargs: Any) -> None:
        if action == "pre_add" and urgent in instance.tags:
            instance.tags.remove(urgent)

    changed.side_effect = a_gift_is_never_urgent
    order.tags.append(gift)
    session.flush()

    assert actions(changed) == [
        ("pre_add", order, {gift.id}),
        ("pre_remove", order, {urgent.id}),
        ("post_add", order, {gift.id}),
        ("post_remove", order, {urgent.id}),
    ]
    assert not session.dirty
    assert tag_ids_written(session, order) == sorted([gift.id, fragile.id])


def test_a_change_from_the_other_side_is_reverse(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    order, gift, _, _ = order_and_tags
    changed = listen(m2m_changed, sender=order_tag)
    gift.orders.append(order)
    session.commit()

    assert actions(changed) == [("pre_add", gift, {order.id}), ("post_add", gift, {order.id})]
    assert changed.calls[0]["reverse"] is True
    assert changed.calls[0]["model"] is Order


def test_one_change_is_sent_once_from_the_side_it_was_made_on_with_both_sides_loaded(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    order, gift, urgent, _ = order_and_tags
    assert (order.tags, gift.orders, urgent.orders) == ([], [], [])  # all three loaded
    changed = listen(m2m_changed, sender=order_tag)

    order.tags.append(gift)
    urgent.orders.append(order)
    session.commit()

    assert sorted((c["action"], c["instance"].__class__.__name__) for c in changed.calls) == [
        ("post_add", "Order"),
        ("post_add", "Tag"),
        ("pre_add", "Order"),
        ("pre_add", "Tag"),
    ]
    by_instance = {call["instance"]: call["pk_set"] for call in changed.calls}
    assert by_instance == {order: {gift.id}, urgent: {order.id}}


def test_related_objects_not_written_yet_have_their_keys_in_post_add_only(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    order, gift, _, _ = order_and_tags
    changed = listen(m2m_changed, sender=order_tag)
    new = Tag(name="new")
    order.tags.extend([gift, new])
    session.commit()

    (pre, _), (post, _) = [(c, c["action"]) for c in changed.calls]
    assert pre["pk_set"] == {gift.id}  # the new tag has no key before the flush
    assert sorted(pre["objects"], key=id) == sorted([gift, new], key=id)
    assert post["pk_set"] == {gift.id, new.id}


def test_removing_and_replacing(session: Session, listen: Listen, order_and_tags: Any) -> None:
    order, gift, urgent, fragile = order_and_tags
    order.tags.extend([gift, urgent])
    session.commit()
    changed = listen(m2m_changed, sender=order_tag)

    order.tags.remove(gift)
    session.commit()
    assert actions(changed) == [
        ("pre_remove", order, {gift.id}),
        ("post_remove", order, {gift.id}),
    ]

    changed.calls.clear()
    order.tags = [urgent, fragile]  # Django's set(): the removals, then the additions
    session.commit()
    assert [call["action"] for call in changed.calls] == [
        "pre_add",
        "post_add",
    ]
    assert changed.calls[0]["pk_set"] == {fragile.id}


def test_emptying_a_collection_is_a_clear_with_no_pk_set(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    order, gift, urgent, _ = order_and_tags
    order.tags.extend([gift, urgent])
    session.commit()
    changed = listen(m2m_changed, sender=order_tag)

    order.tags.clear()
    session.commit()

    assert actions(changed) == [("pre_clear", order, None), ("post_clear", order, None)]
    assert sorted(changed.calls[0]["objects"], key=id) == sorted([gift, urgent], key=id)


def test_replacing_everything_removes_then_adds(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    order, gift, urgent, fragile = order_and_tags
    order.tags.append(gift)
    session.commit()
    changed = listen(m2m_changed, sender=order_tag)

    order.tags = [urgent, fragile]
    session.commit()

    assert [call["action"] for call in changed.calls] == [
        "pre_remove",
        "pre_add",
        "post_remove",
        "post_add",
    ]


def test_the_side_declaring_backref_is_forward(session: Session, listen: Listen) -> None:
    label, article = Label(), Article()
    session.add_all([label, article])
    session.commit()
    changed = listen(m2m_changed, sender=article_label)

    label.articles.append(article)
    session.commit()
    article.labels.remove(label)  # type: ignore[attr-defined]
    session.commit()

    assert [(c["action"], c["reverse"], c["model"]) for c in changed.calls] == [
        ("pre_add", False, Article),
        ("post_add", False, Article),
        ("pre_clear", True, Label),
        ("post_clear", True, Label),
    ]


def test_self_referential_sides_are_told_apart_by_column_order(
    session: Session, listen: Listen
) -> None:
    ada, grace = Person(), Person()
    session.add_all([ada, grace])
    session.commit()
    changed = listen(m2m_changed, sender=friendship)

    ada.friends.append(grace)
    grace.friends.append(ada)
    session.commit()

    # befriended_by joins on the first column: it is forward, friends is reverse.
    assert {call["reverse"] for call in changed.calls} == {True}
    changed.calls.clear()
    ada.befriended_by.remove(grace)
    session.commit()
    assert {call["reverse"] for call in changed.calls} == {False}


def test_a_failing_pre_add_leaves_nothing_behind(
    session: Session, engine: Engine, listen: Listen, order_and_tags: Any
) -> None:
    order, gift, _, _ = order_and_tags

    def refuse(action: str, **kwargs: Any) -> None:
        if action == "pre_add":
            raise PermissionError("no tags on paid orders")

    listen(m2m_changed, sender=order_tag).side_effect = refuse
    order.tags.append(gift)
    with pytest.raises(PermissionError):
        session.commit()
    session.rollback()
    with Session(engine) as other:
        assert other.execute(select(order_tag)).all() == []


def test_a_deferred_receiver_hears_post_add_after_the_commit(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    order, gift, _, _ = order_and_tags
    deferred = listen(m2m_changed, sender=order_tag, on_commit=True)
    order.tags.append(gift)
    session.flush()
    assert deferred.calls == []
    session.commit()
    assert [call["action"] for call in deferred.calls] == ["pre_add", "post_add"]


def test_the_sender_must_be_an_association_table() -> None:
    with pytest.raises(TypeError, match="association Table"):
        m2m_changed.connect(lambda **kwargs: None, sender=Order, weak=False)


# -- what SQLAlchemy writes no association row for ---------------------------------------


def test_a_none_appended_is_left_to_sqlalchemy_which_refuses_it_at_the_flush(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    order, *_ = order_and_tags
    changed = listen(m2m_changed, sender=order_tag)

    order.tags.append(None)  # type: ignore[arg-type]  # as SQLAlchemy lets it

    assert order.tags == [None]
    with pytest.raises(FlushError, match="Can't flush None value found in collection"):
        session.flush()
    session.rollback()
    assert changed.calls == []


def test_an_element_no_cascade_brings_into_the_session_is_not_announced(
    session: Session, listen: Listen, order_and_tags: Any
) -> None:
    order, gift, *_ = order_and_tags
    changed = listen(m2m_changed, sender=order_tag)
    stray = Tag(name="stray")
    order.tags.extend([gift, stray])
    session.expunge(stray)  # SQLAlchemy writes no row for it, and warns

    with pytest.warns(SAWarning, match="not in session"):
        session.flush()

    assert actions(changed) == [("pre_add", order, {gift.id}), ("post_add", order, {gift.id})]
    assert [call["objects"] for call in changed.calls] == [[gift], [gift]]
