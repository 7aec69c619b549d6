"""ORM-enabled bulk UPDATE and DELETE statements.

``session.execute(delete(Order).where(...))`` and ``update(...)`` (and the legacy
``Query.delete()``/``Query.update()``) never go through the unit of work: no
mapper event fires, only the session's ``do_orm_execute``.

* A bulk DELETE sends ``pre_delete``/``post_delete`` for each row, as Django's
  ``QuerySet.delete()`` does. That needs the rows as objects, so when (and only
  when) a delete receiver listens to the model, they are loaded first (one
  SELECT, locking them ``FOR UPDATE`` where the database can), and the DELETE is
  restricted to their primary keys: exactly the rows announced are deleted.
  ``origin`` is the statement, as Django's is the QuerySet.
* A bulk UPDATE sends ``pre_bulk_update`` and ``post_bulk_update`` with the
  primary keys of the rows it updated: from the parameters of the
  by-primary-key form, from ``RETURNING`` where the database has UPDATE ...
  RETURNING (PostgreSQL, SQLite), and from a SELECT ... FOR UPDATE of the
  matching keys before the UPDATE elsewhere (MariaDB).
* A bulk INSERT sends nothing, as Django's ``bulk_create()`` sends nothing.

A receiver that raises aborts the statement as it aborts a flush: the innermost
transaction is rolled back, so nothing of the statement stays.

``execution_options(sa_signals=False)`` runs one statement untouched, with no
signal and no extra query; ``signals_disabled(session)`` does so for a block.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Delete, Update, any_, bindparam, event, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, lazyload, undefer
from sqlalchemy.orm.attributes import instance_state

from sa_signals.signals import (
    post_bulk_update,
    post_delete,
    pre_bulk_update,
    pre_delete,
)
from sa_signals.switches import signals_enabled

__all__: list[str] = []

OPT_OUT = "sa_signals"  # execution option: False runs the statement untouched


@event.listens_for(Session, "do_orm_execute")
def _bulk_statement(orm_execute_state: ORMExecuteState) -> Result[Any] | None:
    if not (orm_execute_state.is_update or orm_execute_state.is_delete):
        return None
    mapper = orm_execute_state.bind_mapper
    if mapper is None or orm_execute_state.execution_options.get(OPT_OUT) is False:
        return None
    if not signals_enabled(orm_execute_state.session):
        return None
    if orm_execute_state.is_delete:
        # The rows may be instances of subclasses (single-table inheritance),
        # each the sender of its own signals.
        classes = [m.class_ for m in mapper.self_and_descendants]
        if any(pre_delete.is_listened_for(c) or post_delete.is_listened_for(c) for c in classes):
            return _delete_with_signals(orm_execute_state, mapper)
    elif pre_bulk_update.is_listened_for(mapper.class_) or post_bulk_update.is_listened_for(
        mapper.class_
    ):
        return _update_with_signals(orm_execute_state, mapper)
    return None


def _delete_with_signals(state: ORMExecuteState, mapper: Mapper[Any]) -> Result[Any]:
    statement = state.statement
    assert isinstance(statement, Delete)
    session = state.session
    # Every column (post_delete receivers read them after the row is gone), no
    # eager joins (FOR UPDATE cannot lock the nullable side of an outer join).
    query = select(mapper).options(undefer("*"), lazyload("*")).with_for_update()
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    instances = (
        session.execute(query, _single_parameters(state), execution_options={OPT_OUT: False})
        .scalars()
        .all()
    )
    using = session.get_bind(mapper)

    def send(signal: Any) -> None:
        for instance in instances:
            signal.send(
                type(instance), instance=instance, using=using, origin=statement, session=session
            )

    with _rolled_back_on_failure(session):
        send(pre_delete)
        dialect = using.dialect
        restriction = _primary_key_in(mapper, [_identity(i) for i in instances], dialect)
        result = state.invoke_statement(
            statement=statement.where(restriction),
            execution_options=_synchronization_for(state),
        )
        send(post_delete)
    return result


def _update_with_signals(state: ORMExecuteState, mapper: Mapper[Any]) -> Result[Any]:
    statement = state.statement
    assert isinstance(statement, Update)
    session, cls = state.session, mapper.class_
    dialect = session.get_bind(mapper).dialect
    # Begin the transaction now: a deferred receiver waits for its commit.
    session.connection(bind_arguments={"mapper": mapper})
    # A list of parameter sets is the by-primary-key form: one row per set.
    rows: list[dict[str, Any]] | None = (
        state.parameters if isinstance(state.parameters, list) else None
    )
    pks = None if rows is None else [_key_from_parameters(mapper, row) for row in rows]

    with _rolled_back_on_failure(session):
        pre_bulk_update.send(cls, statement=statement, pks=pks, session=session)
        if rows is not None and pks is not None:
            if statement.whereclause is not None:
                # Criteria of its own (a version check, say) may leave a key's row alone.
                updated = _matching_each(session, mapper, statement, rows)
            elif not dialect.supports_sane_multi_rowcount:
                # SQLAlchemy could not check that every key had its row: ask.
                updated = _existing(session, mapper, pks)
            else:
                updated = pks
            result = state.invoke_statement()
        elif _returns_updated_rows(state, statement, dialect):
            result = state.invoke_statement(execution_options={"synchronize_session": "fetch"})
            updated = [_key(mapper, row) for row in result.returned_defaults_rows or []]  # type: ignore[attr-defined]
        else:
            updated = _matching(session, mapper, statement, _single_parameters(state))
            result = state.invoke_statement(
                statement=statement.where(
                    _primary_key_in(mapper, [_as_tuple(k) for k in updated], dialect)
                ),
                execution_options=_synchronization_for(state),
            )
        post_bulk_update.send(cls, statement=statement, pks=updated, session=session)
    return result


@contextmanager
def _rolled_back_on_failure(session: Session) -> Iterator[None]:
    """A receiver's exception undoes the statement, as it undoes a flush: the
    innermost transaction is rolled back before the exception propagates."""
    try:
        yield
    except BaseException:
        transaction = session.get_nested_transaction() or session.get_transaction()
        if transaction is not None and transaction.is_active:
            transaction.rollback()
        raise


def _single_parameters(state: ORMExecuteState) -> dict[str, Any] | None:
    """The statement's bound parameters, for a SELECT with the same WHERE."""
    parameters = state.parameters
    return parameters if isinstance(parameters, dict) else None


def _synchronization_for(state: ORMExecuteState) -> dict[str, Any]:
    """How the restricted statement synchronizes the session: "fetch", unless the
    program asked for none. The rows' keys come back through RETURNING (through
    a SELECT for an UPDATE on MariaDB), where "evaluate" would test every object
    of the session against every key, a cost that grows with their product."""
    if state.execution_options.get("synchronize_session", "auto") in (False, None):
        return {}
    return {"synchronize_session": "fetch"}


# -- primary keys ----------------------------------------------------------------------------


def _returns_updated_rows(state: ORMExecuteState, statement: Update, dialect: Dialect) -> bool:
    """Whether SQLAlchemy's "fetch" synchronization will hand back the updated
    rows' keys through RETURNING: the database must have UPDATE ... RETURNING, and
    the program must neither have asked for another synchronization nor have a
    RETURNING of its own."""
    asked = state.execution_options.get("synchronize_session", "auto")
    own_returning = bool(statement.returning_column_descriptions)
    return bool(dialect.update_returning) and asked in ("auto", "fetch") and not own_returning


def _matching(
    session: Session, mapper: Mapper[Any], statement: Update, parameters: dict[str, Any] | None
) -> list[Any]:
    """Keys of the rows the UPDATE will match, locked until the transaction ends
    so that they still match when it runs."""
    query = select(*mapper.primary_key).with_for_update()
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    connection = session.connection(bind_arguments={"mapper": mapper})
    return [_key(mapper, row) for row in connection.execute(query, parameters)]


def _matching_each(
    session: Session, mapper: Mapper[Any], statement: Update, rows: list[dict[str, Any]]
) -> list[Any]:
    """The keys of the by-primary-key form whose rows the statement's own criteria
    match, row by row (the criteria may use each row's parameters), locked."""
    assert statement.whereclause is not None
    columns = list(mapper.primary_key)
    query = (
        select(*columns)
        .where(*(column == bindparam(f"_sa_signals_pk_{i}") for i, column in enumerate(columns)))
        .where(statement.whereclause)
        .with_for_update()
    )
    connection = session.connection(bind_arguments={"mapper": mapper})
    updated = []
    for row in rows:
        key = _key_from_parameters(mapper, row)
        own = {f"_sa_signals_pk_{i}": value for i, value in enumerate(_as_tuple(key))}
        if connection.execute(query, {**row, **own}).first() is not None:
            updated.append(key)
    return updated


def _existing(session: Session, mapper: Mapper[Any], pks: list[Any]) -> list[Any]:
    """The given keys whose rows exist: those an UPDATE by primary key updated."""
    if not pks:
        return []
    connection = session.connection(bind_arguments={"mapper": mapper})
    restriction = _primary_key_in(mapper, [_as_tuple(pk) for pk in pks], connection.dialect)
    found = {
        _key(mapper, row)
        for row in connection.execute(select(*mapper.primary_key).where(restriction))
    }
    return [pk for pk in pks if pk in found]


def _primary_key_in(
    mapper: Mapper[Any], identities: Sequence[tuple[Any, ...]], dialect: Dialect
) -> Any:
    """``pk IN (...)``. PostgreSQL takes at most 65,535 parameters per statement,
    so there a single key column is compared with ``= ANY(array)``: one parameter,
    however many rows."""
    attributes = [mapper.get_property_by_column(c).class_attribute for c in mapper.primary_key]
    if len(attributes) > 1:
        return tuple_(*attributes).in_(identities)
    (attribute,) = attributes
    values = [identity[0] for identity in identities]
    if dialect.name == "postgresql":
        return attribute == any_(bindparam(None, values, type_=ARRAY(attribute.type)))
    return attribute.in_(values)


def _identity(instance: Any) -> tuple[Any, ...]:
    return tuple(instance_state(instance).identity or ())


def _key(mapper: Mapper[Any], row: Any) -> Any:
    """A primary key as Django's ``pk``: the value itself, or a tuple when composite."""
    values = tuple(row)
    return values[0] if len(mapper.primary_key) == 1 else values


def _as_tuple(key: Any) -> tuple[Any, ...]:
    return key if isinstance(key, tuple) else (key,)


def _key_from_parameters(mapper: Mapper[Any], row: dict[str, Any]) -> Any:
    values = tuple(row[mapper.get_property_by_column(column).key] for column in mapper.primary_key)
    return values[0] if len(values) == 1 else values
