"""pre_save and post_save, on every database: what is sent, when, and with what."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import UnmappedInstanceError

from sa_signals import ModelSignal, post_delete, post_save, pre_save
from sa_signals.testing import capture
from tests.conftest import Recorder
from tests.models import (
    AuditEntry,
    Customer,
    Document,
    Employee,
    Manager,
    Note,
    Order,
    OrderLine,
    Parcel,
    Part,
    Profile,
    Record,
    Shipment,
    Widget,
)

Listen = Callable[..., Recorder]


def stored(engine: Engine, statement: Any) -> list[Any]:
    """What another session reads from the database."""
    with Session(engine) as session:
        return list(session.scalars(statement))


# -- creating ------------------------------------------------------------------------


def test_post_save_follows_an_insert_with_created_and_the_primary_key(
    session: Session, listen: Listen
) -> None:
    saved = listen(post_save, sender=Order)
    order = Order(reference="A-1")
    session.add(order)
    session.flush()

    (call,) = saved.calls
    assert call["signal"] is post_save
    assert call["sender"] is Order
    assert call["instance"] is order
    assert call["created"] is True
    assert call["update_fields"] is None
    assert call["changes"] == {}
    assert call["raw"] is False
    assert call["session"] is session
    assert call["using"] is session.get_bind(Order.__mapper__)
    assert order.id is not None


def test_post_save_sees_server_defaults(session: Session, listen: Listen) -> None:
    seen = []
    saved = listen(post_save, sender=Order)
    saved.side_effect = lambda instance, **kwargs: seen.append(instance.created_at)
    session.add(Order(reference="A-1"))
    session.flush()
    assert seen[0] is not None


def test_pre_save_comes_before_the_insert_and_its_changes_are_written(
    session: Session, engine: Engine, listen: Listen
) -> None:
    seen_ids = []

    def normalise(instance: Order, **kwargs: Any) -> None:
        seen_ids.append(instance.id)
        instance.reference = instance.reference.upper()

    listen(pre_save, sender=Order).side_effect = normalise
    session.add(Order(reference="a-1"))
    session.commit()

    assert seen_ids == [None]
    assert stored(engine, select(Order.reference)) == ["A-1"]


def test_pre_save_may_add_objects_and_change_relationships_in_the_same_flush(
    session: Session, engine: Engine, listen: Listen, statements: list[str]
) -> None:
    def fill_in(instance: Order, session: Session, **kwargs: Any) -> None:
        session.add(AuditEntry(action="order placed"))
        instance.lines.append(OrderLine(product="gift wrap"))

    listen(pre_save, sender=Order).side_effect = fill_in
    audit_saves = listen(pre_save, sender=AuditEntry)
    line_saves = listen(post_save, sender=OrderLine)
    session.add(Order(reference="A-1"))
    session.flush()
    flushed = len(statements)
    session.commit()

    assert not [sql for sql in statements[flushed:] if sql.startswith("INSERT")]  # all in one flush
    assert stored(engine, select(AuditEntry.action)) == ["order placed"]
    assert stored(engine, select(OrderLine.product)) == ["gift wrap"]
    assert len(audit_saves.calls) == 1
    assert len(line_saves.calls) == 1


def test_post_save_may_add_objects_which_commit_writes(
    session: Session, engine: Engine, listen: Listen
) -> None:
    def create_profile(instance: Customer, created: bool, session: Session, **kwargs: Any) -> None:
        if created:
            session.add(Profile(customer=instance, bio="new here"))

    listen(post_save, sender=Customer).side_effect = create_profile
    session.add(Customer(name="Ada"))
    session.commit()

    assert stored(engine, select(Profile.bio)) == ["new here"]


def test_post_save_may_flush_and_query_like_djangos_create(
    session: Session, engine: Engine, listen: Listen
) -> None:
    profile_ids = []

    def create_profile(instance: Customer, session: Session, **kwargs: Any) -> None:
        profile = Profile(customer=instance)
        session.add(profile)
        session.flush()  # no "Session is already flushing"
        profile_ids.append(profile.id)
        assert session.scalars(select(Profile)).all() == [profile]

    listen(post_save, sender=Customer).side_effect = create_profile
    profile_saves = listen(post_save, sender=Profile)
    session.add(Customer(name="Ada"))
    session.commit()

    assert profile_ids[0] is not None
    assert [call["created"] for call in profile_saves.calls] == [True]
    assert stored(engine, select(Profile.id)) == profile_ids


def test_post_save_changes_to_the_instance_are_written_by_commit(
    session: Session, engine: Engine, listen: Listen
) -> None:
    def confirm(instance: Order, created: bool, **kwargs: Any) -> None:
        if created:
            instance.status = "confirmed"

    saves = listen(post_save, sender=Order)
    saves.side_effect = confirm
    session.add(Order(reference="A-1"))
    session.commit()

    assert stored(engine, select(Order.status)) == ["confirmed"]
    assert [call["created"] for call in saves.calls] == [True, False]


# -- updating ----------------------------------------------------------------------------


def test_an_update_sends_created_false_with_update_fields_and_changes(session: Session) -> None:
    order = Order(reference="A-1", total=Decimal("10.00"))
    session.add(order)
    session.flush()

    with capture(pre_save, sender=Order) as before, capture(post_save, sender=Order) as after:
        order.status = "paid"
        order.total = Decimal("12.50")
        session.flush()

    assert before[0]["update_fields"] == frozenset({"status", "total"})
    (call,) = after
    assert call["created"] is False
    assert call["update_fields"] == frozenset({"status", "total"})
    assert call["changes"] == {
        "status": ("new", "paid"),
        "total": (Decimal("10.00"), Decimal("12.50")),
    }


def test_changes_carry_the_real_old_value_of_an_expired_attribute(session: Session) -> None:
    order = Order(reference="A-1")
    session.add(order)
    session.commit()  # expires everything: SQLAlchemy no longer knows "new"

    with capture(post_save, sender=Order) as saved:
        order.status = "shipped"  # assigned without being loaded first
        session.commit()

    assert saved[0]["changes"] == {"status": ("new", "shipped")}


def test_assigning_a_loaded_attribute_its_value_sends_nothing_and_writes_nothing(
    session: Session, statements: list[str]
) -> None:
    order = Order(reference="A-1")
    session.add(order)
    session.commit()

    with capture(pre_save, sender=Order) as before, capture(post_save, sender=Order) as after:
        assert order.status == "new"  # loaded: SQLAlchemy sees no change
        order.status = "new"
        session.commit()

    assert before == after == []
    assert not [sql for sql in statements if sql.lstrip().upper().startswith("UPDATE")]


def test_an_expired_attribute_assigned_its_value_is_written_so_it_is_reported(
    session: Session, statements: list[str]
) -> None:
    # SQLAlchemy cannot compare with a value it does not hold, and writes it: a
    # version counter is bumped, an onupdate runs. Signals mirror the SQL.
    order = Order(reference="A-1")
    session.add(order)
    session.commit()  # expired

    with capture(pre_save, sender=Order) as before, capture(post_save, sender=Order) as after:
        order.reference = "A-1"
        session.commit()

    assert [call["update_fields"] for call in before] == [frozenset({"reference"})]
    (call,) = after
    assert call["changes"] == {"reference": ("A-1", "A-1")}  # the real old value, fetched
    assert [sql for sql in statements if sql.lstrip().upper().startswith("UPDATE")]


def test_a_change_to_a_collection_alone_sends_nothing_for_the_parent(session: Session) -> None:
    order = Order(reference="A-1")
    session.add(order)
    session.flush()

    with capture(post_save, sender=Order) as saved:
        order.lines.append(OrderLine(product="pen"))
        session.flush()

    assert saved == []


def test_generated_columns_are_in_update_fields_and_changes(session: Session) -> None:
    document = Document(title="Draft")
    session.add(document)
    session.commit()

    with capture(post_save, sender=Document) as saved:
        document.title = "Final"
        session.commit()

    (call,) = saved
    assert call["update_fields"] == frozenset({"title", "edited_at", "version"})
    assert call["changes"]["title"] == ("Draft", "Final")
    assert call["changes"]["version"] == (1, 2)
    old_edit, new_edit = call["changes"]["edited_at"]
    assert old_edit is None
    assert new_edit is not None


def test_a_foreign_key_written_by_the_flush_alone_is_an_update_with_both_signals(
    session: Session, listen: Listen
) -> None:
    first, second = Shipment(carrier="UPS"), Shipment(carrier="DHL")
    parcel = Parcel()
    first.parcels.append(parcel)
    session.add_all([first, second])
    session.commit()
    before, after = listen(pre_save, sender=Parcel), listen(post_save, sender=Parcel)

    second.parcels.append(parcel)  # no backref: the parcel itself is untouched
    session.commit()

    assert before.instances == after.instances == [parcel]
    assert after.calls[0]["changes"] == {"shipment_id": (first.id, second.id)}


def test_rows_are_reported_in_the_order_they_were_written(session: Session, listen: Listen) -> None:
    saved = listen(post_save)
    customer = Customer(name="Ada")
    session.add(Order(reference="A-1", customer=customer, lines=[OrderLine(product="pen")]))
    session.flush()

    assert [type(instance) for instance in saved.instances] == [Customer, Order, OrderLine]


@pytest.mark.filterwarnings("ignore:The `objects` parameter of `Session.flush` is deprecated")
def test_flushing_some_objects_announces_only_those(session: Session, listen: Listen) -> None:
    saved = listen(pre_save)
    wanted, other = Note(text="flushed now"), Note(text="later")
    session.add_all([wanted, other])
    session.flush([wanted])
    assert saved.instances == [wanted]
    session.flush()
    assert saved.instances == [wanted, other]


# -- senders -------------------------------------------------------------------------------


def test_the_sender_is_the_instances_own_class(session: Session, listen: Listen) -> None:
    employees, managers = listen(post_save, sender=Employee), listen(post_save, sender=Manager)
    boss = Manager(name="Grace", budget=10)
    session.add_all([Employee(name="Alan"), boss])
    session.flush()
    assert [call["instance"].name for call in employees.calls] == ["Alan"]
    assert managers.instances == [boss]
    assert managers.calls[0]["sender"] is Manager


def test_an_update_of_a_joined_subclass_reports_columns_of_both_tables(session: Session) -> None:
    boss = Manager(name="Grace", budget=10)
    session.add(boss)
    session.commit()

    with capture(post_save, sender=Manager) as saved:
        boss.name, boss.budget = "Grace H.", 20
        session.commit()

    assert saved[0]["changes"] == {"name": ("Grace", "Grace H."), "budget": (10, 20)}


def test_connecting_for_a_class_that_is_not_mapped_fails_at_once() -> None:
    class NotMapped:
        pass

    def receiver(**kwargs: Any) -> None: ...

    with pytest.raises(TypeError, match=r"receiver for sender .*NotMapped.* not one"):
        post_save.connect(receiver, sender=NotMapped)


def test_connecting_for_a_mapper_rather_than_its_class_fails_at_once() -> None:
    # Signals are sent by the instance's class: a receiver for the Mapper would never run.
    def receiver(**kwargs: Any) -> None: ...

    with pytest.raises(TypeError, match="connect for the mapped class itself, sender=Order"):
        post_save.connect(receiver, sender=inspect(Order))


def test_model_signals_are_model_signals() -> None:
    assert isinstance(post_save, ModelSignal)


# -- what the flush decides on its own ---------------------------------------------------


def test_pre_save_and_post_save_agree_on_update_fields(session: Session) -> None:
    document = Document(title="Draft")
    session.add(document)
    session.commit()

    with capture(pre_save, sender=Document) as before, capture(post_save, sender=Document) as after:
        document.title = "Final"
        session.commit()

    assert before[0]["update_fields"] == after[0]["update_fields"]


def test_changes_hold_the_values_written_even_when_a_receiver_changes_them_later(
    session: Session, listen: Listen
) -> None:
    first, second = Order(reference="A-1"), Order(reference="A-2")
    session.add_all([first, second])
    session.flush()
    first.status = second.status = "paid"

    def meddle(instance: Order, **kwargs: Any) -> None:
        (second if instance is first else first).status = "meddled"

    saved = listen(post_save, sender=Order)
    saved.side_effect = meddle
    session.flush()

    assert [call["changes"]["status"] for call in saved.calls[:2]] == [("new", "paid")] * 2


def test_values_the_database_generates_are_fetched_in_one_query_per_class(
    session: Session, listen: Listen, statements: list[str]
) -> None:
    documents = [Document(title=f"Draft {n}") for n in range(20)]
    session.add_all(documents)
    session.commit()
    for document in documents:
        assert document.title  # loaded: no old value to fetch
    saved = listen(post_save, sender=Document)

    for document in documents:
        document.title += " (final)"
    statements.clear()
    session.flush()

    selects = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 1  # edited_at, set by the database, is read back once
    assert all(call["changes"]["edited_at"][1] is not None for call in saved.calls)


def test_what_the_database_computed_stays_expired_as_sqlalchemy_leaves_it(
    session: Session, listen: Listen, statements: list[str]
) -> None:
    order = Order(reference="A-1", total=Decimal("1.00"))
    session.add(order)
    session.commit()
    assert order.total == Decimal("1.00")  # loaded: the old value is known
    saved = listen(post_save, sender=Order)

    order.total = Order.total + 1  # a SQL expression: the database computes it
    session.flush()

    assert saved.calls[0]["changes"]["total"] == (Decimal("1.00"), Decimal("2.00"))
    assert "total" in inspect(order).expired_attributes  # as without receivers
    statements.clear()
    assert order.total == Decimal("2.00")
    assert len(statements) == 1  # SQLAlchemy's own load, on access


def test_reassigning_the_same_related_object_after_a_commit_is_written_and_reported(
    session: Session, statements: list[str]
) -> None:
    customer = Customer(name="Ada")
    order = Order(reference="A-1", customer=customer)
    session.add(order)
    session.commit()  # everything expired: SQLAlchemy writes the foreign key again

    with capture(post_save, sender=Order) as after:
        order.customer = customer
        session.commit()

    (call,) = after
    assert call["update_fields"] == frozenset({"customer_id"})
    assert call["changes"] == {"customer_id": (customer.id, customer.id)}
    assert [sql for sql in statements if sql.startswith("UPDATE orders")]


def test_flag_modified_still_forces_an_update_which_is_reported(session: Session) -> None:
    document = Document(title="Draft")
    session.add(document)
    session.commit()
    assert document.version == 1

    with capture(post_save, sender=Document) as saved:
        flag_modified(document, "title")  # the documented way to force an UPDATE
        session.commit()

    assert document.version == 2
    (call,) = saved
    assert call["changes"]["title"] == ("Draft", "Draft")


def test_an_object_added_by_another_before_flush_listener_gets_pre_save(
    session: Session, listen: Listen
) -> None:
    def audit(session: Session, flush_context: Any, instances: Any) -> None:
        if any(isinstance(instance, Order) for instance in session.new):
            session.add(AuditEntry(action="order placed"))

    event.listen(session, "before_flush", audit)  # runs after sa-signals' own
    before, after = listen(pre_save, sender=AuditEntry), listen(post_save, sender=AuditEntry)
    session.add(Order(reference="A-1"))
    session.flush()

    assert len(before.calls) == len(after.calls) == 1


def test_a_foreign_key_written_by_a_post_update_is_reported(session: Session) -> None:
    widget, spare, favorite = Widget(name="w"), Part(), Part()
    session.add_all([widget, spare, favorite])
    session.commit()

    with capture(pre_save, sender=Widget) as before, capture(post_save, sender=Widget) as after:
        widget.favorite = favorite
        session.commit()

    assert before[0]["update_fields"] == frozenset({"favorite_id"})
    (call,) = after
    assert call["update_fields"] == frozenset({"favorite_id"})
    assert call["changes"] == {"favorite_id": (None, favorite.id)}


def test_a_child_written_by_a_one_to_many_post_update_gets_post_save(session: Session) -> None:
    # UPDATE part SET widget_id=... in SQLAlchemy's separate statement: the part
    # was not changed before the flush, so its UPDATE gets post_save alone.
    widget, part = Widget(name="w"), Part()
    session.add_all([widget, part])
    session.commit()

    with capture(pre_save, sender=Part) as before, capture(post_save, sender=Part) as after:
        widget.parts.append(part)
        session.commit()

    assert before == []
    (call,) = after
    assert (call["instance"], call["created"]) == (part, False)
    assert call["update_fields"] == frozenset({"widget_id"})
    assert call["changes"] == {"widget_id": (None, widget.id)}


def test_a_version_counter_the_application_maintains_is_not_reported_unless_written(
    session: Session,
) -> None:
    record = Record(title="a", revision="r1")
    session.add(record)
    session.commit()

    with capture(post_save, sender=Record) as saved:
        record.title = "b"
        session.commit()

    assert saved[0]["update_fields"] == frozenset({"title"})


def test_a_delete_and_an_add_of_the_same_key_are_reported_as_the_program_asked(
    session: Session, listen: Listen
) -> None:
    old = Order(id=1, reference="old")
    session.add(old)
    session.commit()
    heard: list[tuple[str, Any, Any]] = []
    listen(post_delete, sender=Order).side_effect = lambda instance, **kwargs: heard.append(
        ("post_delete", instance, None)
    )
    listen(post_save, sender=Order).side_effect = lambda instance, created, **kwargs: heard.append(
        ("post_save", instance, created)
    )

    session.delete(old)
    new = Order(id=1, reference="new")
    session.add(new)
    session.commit()  # SQLAlchemy writes one UPDATE: a "row switch"

    assert heard == [("post_delete", old, None), ("post_save", new, True)]


@pytest.mark.filterwarnings("ignore:The `objects` parameter:sqlalchemy.exc.SADeprecationWarning")
def test_flushing_an_object_that_is_not_mapped_raises_sqlalchemys_own_error(
    session: Session, listen: Listen
) -> None:
    listen(pre_save, sender=Order)
    listen(post_save)
    session.add(Order(reference="pending"))  # something to flush, or SQLAlchemy looks no further
    with pytest.raises(UnmappedInstanceError):
        session.flush([object()])
