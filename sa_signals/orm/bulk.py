"""ORM-enabled bulk UPDATE and DELETE statements.

``session.execute(delete(Order).where(...))`` and ``update(...)`` (and the legacy
``Query.delete()``/``Query.update()``) never go through the unit of work: no
mapper event fires, only the session's ``do_orm_execute``.

sa-signals watches these statements and never changes them: not their WHERE,
their RETURNING or their parameters, not their ``synchronize_session``, not the
moment SQLAlchemy autoflushes before them. What it must know, the rows a
statement is about to touch, it reads with one SELECT of its own, in the
statement's transaction, right before the statement and after the autoflush
the statement asks for; where the database can, the SELECT locks those rows
(``FOR UPDATE`` of the statement's table), which the statement would lock
moments later anyway, so that they are still the rows it touches.

* A bulk DELETE sends ``pre_delete``/``post_delete`` for each row, as Django's
  ``QuerySet.delete()`` does, with each row as a fresh instance of its own class,
  as Django's collector makes them: loaded (every column) by a session of
  sa-signals' own on the statement's connection, so that the program's session
  and the instances in it are left exactly as SQLAlchemy leaves them. ``origin``
  is the statement, as Django's is the QuerySet.
* A bulk UPDATE sends ``pre_bulk_update`` and ``post_bulk_update`` with the
  primary keys of the rows it updates: from the parameters of the
  by-primary-key form (checked against the statement's own criteria, or
  against the table when the driver cannot count an executemany's rows), from
  the SELECT otherwise.
* A bulk INSERT sends nothing, as Django's ``bulk_create()`` sends nothing.

A receiver that raises aborts the statement as it aborts a flush: the innermost
transaction is rolled back, so nothing of the statement stays.

``execution_options(sa_signals=False)`` runs one statement with no signal and no
extra query; ``signals_disabled(session)`` does so for a block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Delete, Update, bindparam, event, select
from sqlalchemy.engine import Result
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, lazyload, undefer
from sqlalchemy.sql import Select

from sa_signals.orm.columns import marked
from sa_signals.orm.internals import autoflush, resolved_statement, runs_as_orm
from sa_signals.signals import (
    post_bulk_update,
    post_delete,
    pre_bulk_update,
    pre_delete,
)
from sa_signals.switches import signals_disabled, signals_enabled

__all__: list[str] = []

OPT_OUT = "sa_signals"  # execution option: False runs the statement with no signal


@event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state: ORMExecuteState) -> Result[Any] | None:
    # A Core statement on a Table, run through the session, is not the ORM's.
    if not (state.is_update or state.is_delete) or not state.is_orm_statement:
        return None
    mapper = state.bind_mapper
    if mapper is None or state.execution_options.get(OPT_OUT) is False:
        return None
    if not signals_enabled(state.session):
        return None
    statement = resolved_statement(state.statement)
    if not isinstance(statement, Update | Delete) or not runs_as_orm(statement):
        return None
    if isinstance(statement, Delete):
        # The rows may be instances of subclasses (single-table inheritance),
        # each the sender of its own signals.
        classes = [m.class_ for m in mapper.self_and_descendants]
        if any(pre_delete.is_listened_for(c) or post_delete.is_listened_for(c) for c in classes):
            return _delete_with_signals(state, mapper, statement)
    elif isinstance(statement, Update) and (
        pre_bulk_update.is_listened_for(mapper.class_)
        or post_bulk_update.is_listened_for(mapper.class_)
    ):
        return _update_with_signals(state, mapper, statement)
    return None


def _delete_with_signals(
    state: ORMExecuteState, mapper: Mapper[Any], statement: Delete
) -> Result[Any]:
    session = state.session
    connection = _connection_after_autoflush(state)
    # Every column (post_delete receivers read them after the row is gone), no
    # eager joins (FOR UPDATE cannot lock the nullable side of an outer join).
    query = _locking(
        select(_target(statement, mapper)).options(undefer("*"), lazyload("*")),
        statement,
        connection.dialect.name,
    )
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    with Session(bind=connection, autoflush=False, expire_on_commit=False) as reader:
        with signals_disabled(reader):
            instances = reader.scalars(query, _single_parameters(state)).all()
        reader.expunge_all()
    using = connection.engine

    def send(signal: Any) -> None:
        for instance in instances:
            signal.send(
                type(instance), instance=instance, using=using, origin=statement, session=session
            )

    with _rolled_back_on_failure(session):
        send(pre_delete)
        result = state.invoke_statement()
        send(post_delete)
    return result


def _update_with_signals(
    state: ORMExecuteState, mapper: Mapper[Any], statement: Update
) -> Result[Any]:
    session, cls = state.session, mapper.class_
    connection = _connection_after_autoflush(state)  # a deferred receiver waits for its commit
    # A list of parameter sets naming the primary key is the by-primary-key form.
    rows: list[dict[str, Any]] | None = (
        state.parameters if isinstance(state.parameters, list) else None
    )
    pks = None
    if rows is not None and all(_names_primary_key(mapper, row) for row in rows):
        pks = [_key_from_parameters(mapper, row) for row in rows]

    with _rolled_back_on_failure(session):
        pre_bulk_update.send(cls, statement=statement, pks=pks, session=session)
        if rows is not None:
            updated = _updated_by_each(state, connection, mapper, statement, rows, pks)
        else:
            updated = _matching(connection, mapper, statement, _single_parameters(state))
        result = state.invoke_statement()
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


def _connection_after_autoflush(state: ORMExecuteState) -> Any:
    """The statement's connection, once the session has autoflushed as the
    statement itself would (SQLAlchemy does it right after this event): the
    SELECT must see the rows as the statement will."""
    session = state.session
    if state.execution_options.get("autoflush", True):
        autoflush(session)
    return session.connection(bind_arguments=state.bind_arguments)


def _target(statement: Update | Delete, mapper: Mapper[Any]) -> Any:
    """What the statement is against: the class, or an alias of it."""
    return statement.entity_description.get("entity") or mapper.class_


def _locking(query: Select[Any], statement: Update | Delete, dialect: str) -> Select[Any]:
    """``query``, marked as sa-signals' own, locking its rows until the
    transaction ends where the database can: those of the statement's own table
    only, where it can say so."""
    query = marked(query)
    if dialect == "sqlite":  # no FOR UPDATE: SQLite locks the whole database on write
        return query
    if dialect == "postgresql":
        return query.with_for_update(of=statement.table)
    return query.with_for_update()


def _single_parameters(state: ORMExecuteState) -> dict[str, Any] | None:
    """The statement's bound parameters, for a SELECT with the same WHERE."""
    parameters = state.parameters
    return parameters if isinstance(parameters, dict) else None


# -- primary keys ----------------------------------------------------------------------------


def _primary_key_columns(statement: Update | Delete, mapper: Mapper[Any]) -> list[Any]:
    target = _target(statement, mapper)
    return [getattr(target, mapper.get_property_by_column(c).key) for c in mapper.primary_key]


def _matching(
    connection: Any, mapper: Mapper[Any], statement: Update, parameters: dict[str, Any] | None
) -> list[Any]:
    """Keys of the rows the UPDATE is about to match, locked where the database can."""
    query = _locking(
        select(*_primary_key_columns(statement, mapper)), statement, connection.dialect.name
    )
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    return [_key(mapper, row) for row in connection.execute(query, parameters)]


def _updated_by_each(
    state: ORMExecuteState,
    connection: Any,
    mapper: Mapper[Any],
    statement: Update,
    rows: list[dict[str, Any]],
    pks: list[Any] | None,
) -> list[Any]:
    """The keys an UPDATE with a list of parameter sets is about to update."""
    if pks is not None and statement.whereclause is None:
        if connection.dialect.supports_sane_multi_rowcount:
            return pks  # SQLAlchemy raises if a key has no row
        return _existing(connection, mapper, statement, pks)
    # Criteria of their own (a version check, say) may leave a row alone: ask,
    # row by row, with each row's parameters.
    columns = _primary_key_columns(statement, mapper)
    query = _locking(select(*columns), statement, connection.dialect.name)
    if pks is not None:
        query = query.where(
            *(column == bindparam(f"_sa_signals_pk_{i}") for i, column in enumerate(columns))
        )
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    updated = []
    for position, row in enumerate(rows):
        own = {} if pks is None else dict(_pk_parameters(pks[position]))
        updated += [_key(mapper, found) for found in connection.execute(query, {**row, **own})]
    return updated


def _existing(connection: Any, mapper: Mapper[Any], statement: Update, pks: list[Any]) -> list[Any]:
    """The given keys whose rows exist: those an UPDATE by primary key updates."""
    columns = _primary_key_columns(statement, mapper)
    query = marked(select(*columns)).where(
        *(column == bindparam(f"_sa_signals_pk_{i}") for i, column in enumerate(columns))
    )
    return [pk for pk in pks if connection.execute(query, dict(_pk_parameters(pk))).first()]


def _pk_parameters(key: Any) -> Iterator[tuple[str, Any]]:
    values = key if isinstance(key, tuple) else (key,)
    return ((f"_sa_signals_pk_{i}", value) for i, value in enumerate(values))


def _key(mapper: Mapper[Any], row: Any) -> Any:
    """A primary key as Django's ``pk``: the value itself, or a tuple when composite."""
    values = tuple(row)
    return values[0] if len(mapper.primary_key) == 1 else values


def _names_primary_key(mapper: Mapper[Any], row: dict[str, Any]) -> bool:
    return all(mapper.get_property_by_column(column).key in row for column in mapper.primary_key)


def _key_from_parameters(mapper: Mapper[Any], row: dict[str, Any]) -> Any:
    values = tuple(row[mapper.get_property_by_column(column).key] for column in mapper.primary_key)
    return values[0] if len(values) == 1 else values
