"""Watch, never steer: a bulk UPDATE or DELETE does, returns, raises and leaves
in the session exactly what it does without receivers. Each scenario runs
twice on the same rows, without receivers and with them, and everything the
program can see is compared: its result or exception, the SQL it sent (less
sa-signals' own SELECTs, marked ``sa_signals_select``), the rows, and the
state of the session's objects."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    Table,
    bindparam,
    delete,
    event,
    inspect,
    lambda_stmt,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from sa_signals import post_bulk_update, post_delete, pre_bulk_update, pre_delete
from sa_signals.columns import SELECT_OPTION
from tests.models import Order

Scenario = Callable[[Session, list[int]], Any]


def seed(session: Session) -> list[int]:
    """Five orders, with the same keys in both runs."""
    orders = [
        Order(id=n + 1, reference=f"A-{n}", status="new" if n < 3 else "paid") for n in range(5)
    ]
    session.add_all(orders)
    session.commit()
    return [order.id for order in orders]


def seen_by_the_program(engine: Engine, session: Session, scenario: Scenario) -> dict[str, Any]:
    """Everything ``scenario`` shows the program, its writes undone afterwards."""
    ids = seed(session)
    sql: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        context = args[1]  # (parameters, context, executemany)
        if not context.execution_options.get(SELECT_OPTION) and statement != "BEGIN":
            sql.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        try:
            result: Any = scenario(session, ids)
        except Exception as error:  # its words: SQLAlchemy names FROMs in no fixed order
            result = (type(error).__name__, sorted(re.findall(r"\w+", str(error).split("\n")[0])))
        objects = sorted(
            (
                inspect(o).identity,
                sorted(inspect(o).expired_attributes),
                inspect(o).deleted or inspect(o).was_deleted,
                {k: v for k, v in inspect(o).dict.items() if k in ("id", "status", "reference")},
            )
            for o in session.identity_map.values()
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    try:  # the rows as the scenario's transaction sees them, before it is undone
        rows = [tuple(row) for row in session.connection().execute(STATUSES)]
    except Exception as error:
        rows = [(type(error).__name__,)]
    session.rollback()
    session.execute(delete(Order).execution_options(sa_signals=False))
    session.commit()
    return {"result": result, "sql": sql, "objects": objects, "rows": rows}


ORDERS = Table("orders", Order.metadata)  # the Table alone, as Core sees it
STATUSES = select(ORDERS.c.id, ORDERS.c.status).order_by(ORDERS.c.id)


@pytest.fixture
def receivers() -> Iterator[Callable[[], None]]:
    """``receivers()`` connects one receiver to each bulk signal, for the rest of the test."""
    connected: list[tuple[Any, Any]] = []

    def connect() -> None:
        for signal in (pre_delete, post_delete, pre_bulk_update, post_bulk_update):

            def receiver(**kwargs: Any) -> None: ...

            signal.connect(receiver, sender=Order, weak=False)
            connected.append((signal, receiver))

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver, sender=Order)


def returning_entities(session: Session, ids: list[int]) -> Any:
    statement: Any = update(Order).where(Order.status == "new").values(status="x")
    statement = statement.returning(Order)
    return sorted((o.id, o.status) for o in session.scalars(statement))


def returning_star(session: Session, ids: list[int]) -> Any:
    statement = delete(Order).where(Order.status == "paid").returning(literal_column("*"))
    return sorted(row[:3] for row in session.execute(statement))


def an_update_in_from_statement(session: Session, ids: list[int]) -> Any:
    statement = update(Order).where(Order.status == "new").values(status="x").returning(Order)
    return sorted(
        (o.id, o.status) for o in session.scalars(select(Order).from_statement(statement))
    )


def a_delete_in_from_statement(session: Session, ids: list[int]) -> Any:
    session.get(Order, ids[0])  # in the session, as the program may have it
    statement = delete(Order).where(Order.status == "new").returning(Order)
    return sorted(o.id for o in session.scalars(select(Order).from_statement(statement)))


def evaluate_after_a_pending_edit(session: Session, ids: list[int]) -> Any:
    # Loaded, then edited and not flushed: the statement's autoflush writes the
    # edit first, so the edited row matches too.
    orders = session.scalars(select(Order).order_by(Order.id)).all()
    orders[3].status = "new"
    session.execute(
        update(Order).where(Order.status == "new").values(status="gone"),
        execution_options={"synchronize_session": "evaluate"},
    )
    return [order.status for order in orders]


def no_synchronization(session: Session, ids: list[int]) -> Any:
    orders = session.scalars(select(Order).order_by(Order.id)).all()
    orders[4].status = "new"
    session.execute(
        delete(Order).where(Order.status == "new"),
        execution_options={"synchronize_session": False},
    )
    return [inspect(order).deleted for order in orders]


def executemany_with_its_own_where(session: Session, ids: list[int]) -> Any:
    statement = (
        update(Order).where(Order.id == bindparam("b_id")).values(status=bindparam("b_status"))
    )
    session.execute(
        statement, [{"b_id": ids[0], "b_status": "one"}, {"b_id": ids[1], "b_status": "two"}]
    )
    return None


def a_lambda_statement(session: Session, ids: list[int]) -> Any:
    session.execute(lambda_stmt(lambda: update(Order).values(status="all")))
    return None


def an_aliased_target(session: Session, ids: list[int]) -> Any:
    alias = aliased(Order)
    session.execute(update(alias).where(alias.status == "paid").values(status="settled"))
    return None


def a_core_delete_through_the_session(session: Session, ids: list[int]) -> Any:
    # A Table's DELETE with ORM criteria runs as Core: SQLAlchemy leaves the
    # session's object as it was, expired and in the identity map.
    order = session.get(Order, ids[0])
    session.expire(order)
    session.execute(ORDERS.delete().where(Order.id == ids[0]))
    return session.get(Order, ids[0]) is order


def a_later_hook_turning_autoflush_off(session: Session, ids: list[int]) -> Any:
    @event.listens_for(session, "do_orm_execute")
    def no_autoflush(state: Any) -> None:
        state.update_execution_options(autoflush=False)

    orders = session.scalars(select(Order).order_by(Order.id)).all()
    orders[3].status = "new"  # not flushed before the statement: it stays "paid"
    session.execute(
        update(Order).where(Order.status == "new").values(status="gone"),
        execution_options={"synchronize_session": False},
    )
    event.remove(session, "do_orm_execute", no_autoflush)
    return None


def a_routing_session(session: Session, ids: list[int]) -> Any:
    asked: list[str] = []

    class RoutingSession(Session):
        def get_bind(self, **kw: Any) -> Any:  # type: ignore[override]
            asked.append(type(kw.get("clause")).__name__)
            return super().get_bind(**kw)

    outer = session.connection()
    with RoutingSession(bind=outer, join_transaction_mode="create_savepoint") as routed:
        routed.execute(update(Order).values(status="routed"))
        routed.execute(delete(Order).where(Order.status == "nothing"))
        routed.commit()
    return asked


def an_error_of_the_statements_own(session: Session, ids: list[int]) -> Any:
    # The program catches the database's refusal and goes on: what it flushed
    # before is still there to commit (on the databases that allow it).
    session.add(Order(id=10, reference="flushed first"))
    session.flush()
    try:
        session.execute(update(Order).where(Order.id == ids[0]).values(id=ids[1]))
    except Exception as error:
        caught = type(error).__name__
    else:
        caught = None
    try:
        session.commit()
    except Exception as error:
        return caught, type(error).__name__
    return caught, None


SCENARIOS = [
    returning_entities,
    returning_star,
    an_update_in_from_statement,
    a_delete_in_from_statement,
    evaluate_after_a_pending_edit,
    no_synchronization,
    executemany_with_its_own_where,
    a_lambda_statement,
    an_aliased_target,
    a_core_delete_through_the_session,
    a_later_hook_turning_autoflush_off,
    a_routing_session,
    an_error_of_the_statements_own,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_receivers_change_nothing_the_program_sees(
    engine: Engine, session: Session, receivers: Callable[[], None], scenario: Scenario
) -> None:
    without = seen_by_the_program(engine, session, scenario)
    receivers()
    assert seen_by_the_program(engine, session, scenario) == without
