"""ORM-enabled bulk statements: DELETE sends pre_delete/post_delete per row, as
Django's QuerySet.delete(); UPDATE sends pre_bulk_update/post_bulk_update with
the keys of exactly the rows it updated; INSERT sends nothing, as bulk_create()."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, delete, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import Session, with_loader_criteria

from sa_signals import (
    post_bulk_update,
    post_delete,
    post_save,
    pre_bulk_update,
    pre_delete,
    pre_save,
    signals_disabled,
)
from sa_signals.testing import capture
from tests.conftest import Recorder
from tests.models import Employee, Manager, Order, Truck, Vehicle

Listen = Callable[..., Recorder]


@pytest.fixture
def orders(session: Session) -> list[Order]:
    orders = [Order(reference=f"A-{n}", status="new" if n < 3 else "paid") for n in range(5)]
    session.add_all(orders)
    session.commit()
    return orders


def references(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.scalars(select(Order.reference)))


# -- DELETE ---------------------------------------------------------------------------------


def test_a_bulk_delete_sends_the_delete_signals_for_each_row(
    session: Session, engine: Engine, listen: Listen, orders: list[Order]
) -> None:
    before, after = listen(pre_delete, sender=Order), listen(post_delete, sender=Order)
    seen = []
    after.side_effect = lambda instance, **kwargs: seen.append(instance.reference)
    statement = delete(Order).where(Order.status == "new")
    ids = [order.id for order in orders[:3]]

    result = session.execute(statement)
    session.commit()

    assert result.rowcount == 3  # type: ignore[attr-defined]
    assert sorted(seen) == ["A-0", "A-1", "A-2"]  # columns readable after the row is gone
    assert sorted(call["instance"].id for call in before.calls) == ids
    assert all(call["origin"] is statement for call in before.calls + after.calls)
    assert references(engine) == ["A-3", "A-4"]


def test_each_row_comes_as_a_fresh_instance_and_the_sessions_own_are_left_alone(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    # As Django's collector builds fresh instances: the statement's session, and
    # what SQLAlchemy leaves expired in it, stay exactly as without receivers.
    deleted = listen(pre_delete, sender=Order)
    order_id = orders[0].id
    session.expire(orders[0])

    session.execute(delete(Order).where(Order.reference == "A-0"))

    (call,) = deleted.calls
    assert call["instance"] is not orders[0]
    assert (call["instance"].id, call["instance"].reference) == (order_id, "A-0")
    assert call["instance"] not in session
    assert inspect(orders[0]).expired_attributes >= {"reference", "status"}


def test_rows_are_loaded_only_when_a_receiver_listens_to_the_model(
    session: Session, listen: Listen, orders: list[Order], statements: list[str]
) -> None:
    listen(post_save, sender=Order)  # not a delete receiver
    session.execute(delete(Order).where(Order.status == "new"))
    assert [sql.split()[0] for sql in statements] == ["DELETE"]


def test_a_deferred_delete_receiver_hears_the_rows_after_the_commit(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    deferred = listen(post_delete, sender=Order, on_commit=True)
    session.execute(delete(Order).where(Order.status == "paid"))
    assert deferred.calls == []
    session.commit()
    assert len(deferred.calls) == 2


def test_a_failing_pre_delete_keeps_every_row(
    session: Session, engine: Engine, listen: Listen, orders: list[Order]
) -> None:
    def refuse(**kwargs: Any) -> None:
        raise PermissionError("orders are never deleted")

    listen(pre_delete, sender=Order).side_effect = refuse
    with pytest.raises(PermissionError):
        session.execute(delete(Order))
    session.rollback()
    assert len(references(engine)) == 5


def test_a_row_of_a_joined_subclass_comes_with_its_own_tables_columns(
    session: Session, listen: Listen
) -> None:
    session.add(Manager(name="M"))
    session.commit()
    seen: list[int] = []
    listen(pre_delete, sender=Manager).side_effect = lambda instance, **_: seen.append(
        instance.budget  # a column of the subclass's table, on a detached instance
    )

    # Without ON DELETE CASCADE, the databases enforcing foreign keys refuse it.
    with contextlib.suppress(IntegrityError):
        session.execute(delete(Employee).where(Employee.name == "M"))
    session.rollback()

    assert seen == [100]


def test_the_statements_loader_criteria_choose_the_rows_announced_too(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    # As a tenant or soft-delete filter adds them, in the statement or a hook.
    deleted, updated = listen(pre_delete, sender=Order), listen(post_bulk_update, sender=Order)
    not_a0 = with_loader_criteria(Order, Order.reference != "A-0")
    ids = sorted(order.id for order in orders[1:3])

    session.execute(update(Order).where(Order.status == "new").values(total=1).options(not_a0))
    session.execute(delete(Order).where(Order.status == "new").options(not_a0))

    assert sorted(updated.calls[0]["pks"]) == ids
    assert sorted(call["instance"].reference for call in deleted.calls) == ["A-1", "A-2"]


def test_the_legacy_query_delete_sends_them_too(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    deleted = listen(post_delete, sender=Order)
    session.query(Order).filter(Order.status == "paid").delete()
    assert len(deleted.calls) == 2


def test_each_row_is_sent_by_its_own_class(session: Session) -> None:
    # Single-table inheritance: delete(Vehicle) deletes trucks too.
    session.add_all([Vehicle(name="van"), Truck(name="lorry")])
    session.commit()

    with (
        capture(post_delete, sender=Truck) as trucks,
        capture(post_delete, sender=Vehicle) as vehicles,
    ):
        session.execute(delete(Vehicle))

    assert [(call["sender"], call["instance"].name) for call in trucks] == [(Truck, "lorry")]
    assert [(call["sender"], call["instance"].name) for call in vehicles] == [(Vehicle, "van")]


def test_a_failing_post_delete_rolls_the_statement_back(
    session: Session, engine: Engine, listen: Listen, orders: list[Order]
) -> None:
    def refuse(**kwargs: Any) -> None:
        raise PermissionError("too late to say no, yet no")

    listen(post_delete, sender=Order).side_effect = refuse
    with pytest.raises(PermissionError):
        session.execute(delete(Order))

    session.commit()  # nothing of the statement is left to commit
    assert len(references(engine)) == 5


def test_a_failing_receiver_inside_a_savepoint_loses_only_the_savepoint(
    session: Session, engine: Engine, listen: Listen, orders: list[Order]
) -> None:
    def refuse(**kwargs: Any) -> None:
        raise PermissionError("no")

    listen(pre_delete, sender=Order).side_effect = refuse
    session.add(Order(reference="B-1"))
    with pytest.raises(PermissionError), session.begin_nested():
        session.execute(delete(Order).where(Order.status == "paid"))
    session.commit()

    assert len(references(engine)) == 6


def test_bound_parameters_reach_the_rows_loaded_first(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    deleted = listen(pre_delete, sender=Order)
    session.execute(delete(Order).where(Order.reference == bindparam("ref")), {"ref": "A-0"})
    assert [call["instance"].reference for call in deleted.calls] == ["A-0"]


@pytest.mark.parametrize("synchronize", ["evaluate", "fetch", "auto", False])
def test_every_session_synchronization_still_works(
    session: Session, listen: Listen, orders: list[Order], synchronize: Any
) -> None:
    listen(post_delete, sender=Order)
    listen(post_bulk_update, sender=Order)
    options = {"synchronize_session": synchronize}

    session.execute(
        update(Order).where(Order.status == "paid").values(status="gone"),
        execution_options=options,
    )
    session.execute(delete(Order).where(Order.status == "new"), execution_options=options)
    session.query(Order).filter(Order.reference == "A-4").delete(synchronize_session=synchronize)
    session.commit()

    assert [order.reference for order in session.scalars(select(Order))] == ["A-3"]


def test_a_bulk_delete_of_more_rows_than_a_statement_takes_parameters(
    session: Session, engine: Engine
) -> None:
    # PostgreSQL refuses more than 65,535 bound parameters in one statement.
    rows = 70_000
    session.execute(insert(Order), [{"reference": f"R-{n}"} for n in range(rows)])
    session.commit()

    with capture(post_delete, sender=Order) as deleted:
        result = session.execute(delete(Order))
        session.commit()

    assert result.rowcount == rows  # type: ignore[attr-defined]
    assert len(deleted) == rows
    assert references(engine) == []


# -- UPDATE ---------------------------------------------------------------------------------


def test_a_bulk_update_reports_exactly_the_rows_it_updated(
    session: Session, orders: list[Order], backend: str, statements: list[str]
) -> None:
    statement = update(Order).where(Order.status == "new").values(status="cancelled")

    with (
        capture(pre_bulk_update, sender=Order) as before,
        capture(post_bulk_update, sender=Order) as after,
    ):
        result = session.execute(statement)

    assert result.rowcount == 3  # type: ignore[attr-defined]
    (pre,) = before
    assert pre["statement"] is statement
    assert pre["pks"] is None  # the WHERE form: not known before it runs
    assert pre["session"] is session
    (post,) = after
    assert sorted(post["pks"]) == sorted(order.id for order in orders[:3])
    # The keys are read first, locked where the database can; the UPDATE is the program's.
    # (Reading order.id above reloaded the expired orders: SQL of the test's own.)
    update_at = next(i for i, sql in enumerate(statements) if sql.startswith("UPDATE orders"))
    select_keys, run = statements[update_at - 1 : update_at + 1]
    assert select_keys.startswith("SELECT orders.id FROM orders WHERE orders.status")
    assert ("FOR UPDATE" in select_keys) is (backend != "sqlite")
    assert run.startswith("UPDATE orders SET status")
    assert "RETURNING" not in run


def test_rows_the_autoflush_writes_first_are_the_statements_too(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    # The autoflush before the statement INSERTs and UPDATEs rows of the same
    # table: those are its own, not the statement's, and the statement then
    # matches them.
    before, after = listen(pre_bulk_update, sender=Order), listen(post_bulk_update, sender=Order)
    late = Order(reference="late", status="new")
    session.add(late)
    orders[3].status = "new"

    session.execute(update(Order).where(Order.status == "new").values(status="cancelled"))

    assert len(before.calls) == 1
    (call,) = after.calls
    expected = [order.id for order in orders[:4]] + [late.id]
    assert sorted(call["pks"]) == sorted(expected)


def test_a_bulk_update_matching_nothing_reports_no_rows(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    after = listen(post_bulk_update, sender=Order)
    session.execute(update(Order).where(Order.status == "lost").values(status="found"))
    assert after.calls[0]["pks"] == []


def test_the_by_primary_key_form_knows_its_keys_beforehand(
    session: Session, orders: list[Order]
) -> None:
    with (
        capture(pre_bulk_update, sender=Order) as before,
        capture(post_bulk_update, sender=Order) as after,
    ):
        session.execute(
            update(Order),
            [{"id": orders[0].id, "status": "shipped"}, {"id": orders[1].id, "status": "shipped"}],
        )
    assert before[0]["pks"] == after[0]["pks"] == [orders[0].id, orders[1].id]


def test_without_rowcounts_the_keys_whose_rows_exist_are_asked_for(
    session: Session,
    engine: Engine,
    listen: Listen,
    orders: list[Order],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Some drivers cannot count the rows of an executemany; SQLAlchemy then cannot
    # tell that a key had no row, and sa-signals asks the database instead.
    monkeypatch.setattr(engine.dialect, "supports_sane_multi_rowcount", False)
    after = listen(post_bulk_update, sender=Order)
    missing = max(order.id for order in orders) + 100
    session.execute(
        update(Order),
        [{"id": orders[0].id, "status": "shipped"}, {"id": missing, "status": "shipped"}],
    )
    assert after.calls[0]["pks"] == [orders[0].id]


def test_the_by_primary_key_form_with_criteria_of_its_own_reports_the_rows_they_let_through(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    # Each row is updated only if it still has the status the program read.
    after = listen(post_bulk_update, sender=Order)

    session.execute(
        update(Order).where(Order.status == bindparam("read_status")),
        [
            {"id": orders[0].id, "status": "shipped", "read_status": "new"},
            {"id": orders[1].id, "status": "shipped", "read_status": "paid"},  # stale
        ],
        execution_options={"synchronize_session": None},
    )

    assert after.calls[0]["pks"] == [orders[0].id]


def test_a_deferred_pre_bulk_update_waits_for_the_commit_even_as_the_first_statement(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    deferred = listen(pre_bulk_update, sender=Order, on_commit=True)
    session.execute(update(Order).values(status="archived"))  # begins the transaction
    session.rollback()
    assert deferred.calls == []


def test_the_session_is_synchronised_as_sqlalchemy_would(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    listen(post_bulk_update, sender=Order)
    session.execute(update(Order).where(Order.status == "new").values(status="cancelled"))
    assert orders[0].status == "cancelled"


def test_a_deferred_bulk_update_receiver_hears_it_after_the_commit(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    deferred = listen(post_bulk_update, sender=Order, on_commit=True)
    session.execute(update(Order).values(status="archived"))
    assert deferred.calls == []
    session.commit()
    assert len(deferred.calls[0]["pks"]) == 5


def test_the_legacy_query_update_sends_them_too(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    after = listen(post_bulk_update, sender=Order)
    session.query(Order).filter(Order.status == "paid").update({"status": "refunded"})
    assert len(after.calls[0]["pks"]) == 2


# -- the same statements inside select().from_statement() -------------------------------------


def test_a_delete_returning_its_rows_through_from_statement_is_announced_too(
    session: Session, listen: Listen, orders: list[Order]
) -> None:
    before, after = listen(pre_delete, sender=Order), listen(post_delete, sender=Order)
    statement = delete(Order).where(Order.status == "new").returning(Order)

    returned = session.scalars(select(Order).from_statement(statement)).all()

    assert sorted(order.id for order in returned) == [order.id for order in orders[:3]]
    assert sorted(call["instance"].id for call in before.calls) == [o.id for o in orders[:3]]
    assert [call["instance"] for call in after.calls] == [call["instance"] for call in before.calls]
    assert all(call["origin"] is statement for call in before.calls + after.calls)


def test_an_update_returning_its_rows_through_from_statement_is_announced_too(
    session: Session, engine: Engine, orders: list[Order]
) -> None:
    statement = update(Order).where(Order.status == "new").values(status="x").returning(Order)

    with (
        capture(pre_bulk_update, sender=Order) as before,
        capture(post_bulk_update, sender=Order) as after,
    ):
        if engine.dialect.update_returning:
            returned = session.scalars(select(Order).from_statement(statement)).all()
        else:  # MariaDB has no UPDATE ... RETURNING: the database refuses it
            with pytest.raises(ProgrammingError, match="RETURNING"):
                session.scalars(select(Order).from_statement(statement))
            returned = []

    assert [call["statement"] for call in before] == [statement]
    if engine.dialect.update_returning:
        assert sorted(o.id for o in returned) == sorted(after[0]["pks"])
        assert sorted(after[0]["pks"]) == [order.id for order in orders[:3]]
    else:
        assert after == []


# -- opting out, and INSERT ------------------------------------------------------------------


def test_a_statement_can_opt_out(
    session: Session, orders: list[Order], statements: list[str]
) -> None:
    with (
        capture(pre_delete, sender=Order) as deleted,
        capture(pre_bulk_update, sender=Order) as updated,
    ):
        session.execute(update(Order).values(status="x"), execution_options={"sa_signals": False})
        session.execute(delete(Order), execution_options={"sa_signals": False})
        with signals_disabled(session):
            session.execute(update(Order).values(status="y"))
    assert deleted == updated == []
    assert [sql.split()[0] for sql in statements] == ["UPDATE", "DELETE", "UPDATE"]


def test_a_bulk_insert_sends_nothing_as_bulk_create(session: Session) -> None:
    with capture(pre_save, sender=Order) as before, capture(post_save, sender=Order) as after:
        session.execute(insert(Order), [{"reference": "B-1"}, {"reference": "B-2"}])
    assert before == after == []
