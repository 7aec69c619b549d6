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

``execution_options(sa_signals=False)`` runs one statement untouched, with no
signal and no extra query; ``signals_disabled(session)`` does so for a block.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Delete, Update, event, select, tuple_
from sqlalchemy.engine import Result
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
    cls = mapper.class_
    if orm_execute_state.is_delete:
        if pre_delete.is_listened_for(cls) or post_delete.is_listened_for(cls):
            return _delete_with_signals(orm_execute_state, mapper)
    elif pre_bulk_update.is_listened_for(cls) or post_bulk_update.is_listened_for(cls):
        return _update_with_signals(orm_execute_state, mapper)
    return None


def _delete_with_signals(state: ORMExecuteState, mapper: Mapper[Any]) -> Result[Any]:
    statement = state.statement
    assert isinstance(statement, Delete)
    session, cls = state.session, mapper.class_
    # Every column (post_delete receivers read them after the row is gone), no
    # eager joins (FOR UPDATE cannot lock the nullable side of an outer join).
    query = select(cls).options(undefer("*"), lazyload("*")).with_for_update()
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    instances = session.execute(query, execution_options={OPT_OUT: False}).scalars().all()
    using = session.get_bind(mapper)
    for instance in instances:
        pre_delete.send(cls, instance=instance, using=using, origin=statement, session=session)
    result = state.invoke_statement(
        statement=statement.where(_primary_key_in(mapper, [_identity(i) for i in instances]))
    )
    for instance in instances:
        post_delete.send(cls, instance=instance, using=using, origin=statement, session=session)
    return result


def _update_with_signals(state: ORMExecuteState, mapper: Mapper[Any]) -> Result[Any]:
    statement = state.statement
    assert isinstance(statement, Update)
    session, cls = state.session, mapper.class_
    parameters = state.parameters
    by_primary_key = isinstance(parameters, list) and statement.whereclause is None
    if by_primary_key:
        assert isinstance(parameters, list)
        pks: list[Any] | None = [_key_from_parameters(mapper, row) for row in parameters]
    else:
        pks = None
    pre_bulk_update.send(cls, statement=statement, pks=pks, session=session)

    if by_primary_key:
        result = state.invoke_statement()
        updated = pks or []
        if not session.get_bind(mapper).dialect.supports_sane_multi_rowcount:
            # SQLAlchemy could not check that every key had its row: ask.
            updated = _existing(session, mapper, updated)
    elif _returns_updated_rows(state, statement, mapper):
        result = state.invoke_statement(execution_options={"synchronize_session": "fetch"})
        updated = [_key(mapper, row) for row in result.returned_defaults_rows or []]  # type: ignore[attr-defined]
    else:
        updated = _matching(session, mapper, statement)
        result = state.invoke_statement(
            statement=statement.where(_primary_key_in(mapper, [_as_tuple(k) for k in updated]))
        )
    post_bulk_update.send(cls, statement=statement, pks=updated, session=session)
    return result


# -- primary keys ----------------------------------------------------------------------------


def _returns_updated_rows(state: ORMExecuteState, statement: Update, mapper: Mapper[Any]) -> bool:
    """Whether SQLAlchemy's "fetch" synchronization will hand back the updated
    rows' keys through RETURNING: the database must have UPDATE ... RETURNING, and
    the program must neither have asked for another synchronization nor have a
    RETURNING of its own."""
    dialect = state.session.get_bind(mapper).dialect
    asked = state.execution_options.get("synchronize_session", "auto")
    own_returning = bool(statement.returning_column_descriptions)
    return bool(dialect.update_returning) and asked in ("auto", "fetch") and not own_returning


def _matching(session: Session, mapper: Mapper[Any], statement: Update) -> list[Any]:
    """Keys of the rows the UPDATE will match, locked until the transaction ends
    so that they still match when it runs."""
    query = select(*mapper.primary_key).with_for_update()
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    connection = session.connection(bind_arguments={"mapper": mapper})
    return [_key(mapper, row) for row in connection.execute(query)]


def _existing(session: Session, mapper: Mapper[Any], pks: list[Any]) -> list[Any]:
    """The given keys whose rows exist: those an UPDATE by primary key updated."""
    if not pks:
        return []
    connection = session.connection(bind_arguments={"mapper": mapper})
    query = select(*mapper.primary_key).where(_primary_key_in(mapper, map(_as_tuple, pks)))
    found = {_key(mapper, row) for row in connection.execute(query)}
    return [pk for pk in pks if pk in found]


def _primary_key_in(mapper: Mapper[Any], identities: Any) -> Any:
    columns = list(mapper.primary_key)
    identities = list(identities)
    if len(columns) == 1:
        return columns[0].in_([identity[0] for identity in identities])
    return tuple_(*columns).in_(identities)


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
