"""ORM-enabled bulk UPDATE and DELETE statements.

``session.execute(delete(Order).where(...))`` and ``update(...)`` (and the legacy
``Query.delete()``/``Query.update()``, and the same statements inside
``select(Order).from_statement(...)`` or a ``lambda_stmt()``) never go through
the unit of work: no mapper event fires, only the session's ``do_orm_execute``.

sa-signals watches these statements and never changes them: not their WHERE,
their RETURNING or their parameters, not their ``synchronize_session``, not the
moment SQLAlchemy autoflushes before them. What it must know, the rows a
statement is about to touch, it reads with one SELECT of its own when the
statement reaches its connection (``before_execute``): after every
``do_orm_execute`` hook and the autoflush, in the statement's transaction, on
its connection (on each shard's, with horizontal sharding). Where the database
can, the SELECT locks those rows (``FOR UPDATE`` of the statement's table),
which the statement would lock moments later anyway, so that they are still
the rows it touches. The pre_* signals are sent then, the post_* ones after the
statement.

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

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Delete, Engine, Update, bindparam, event, select
from sqlalchemy.engine import Result
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, lazyload, undefer, with_polymorphic
from sqlalchemy.sql import Select

from sa_signals.columns import marked
from sa_signals.internals import loader_options, resolved_statement, runs_as_orm
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
    if not state.is_orm_statement:
        return None
    statement = resolved_statement(state.statement)  # of a from_statement() too
    if not isinstance(statement, Update | Delete) or not runs_as_orm(statement):
        return None
    mapper = state.bind_mapper
    if mapper is None or state.execution_options.get(OPT_OUT) is False:
        return None
    if not signals_enabled(state.session):
        return None
    if isinstance(statement, Delete):
        # The rows may be instances of subclasses (single-table inheritance),
        # each the sender of its own signals.
        classes = [m.class_ for m in mapper.self_and_descendants]
        if not any(
            pre_delete.is_listened_for(c) or post_delete.is_listened_for(c) for c in classes
        ):
            return None
    elif not (
        pre_bulk_update.is_listened_for(mapper.class_)
        or post_bulk_update.is_listened_for(mapper.class_)
    ):
        return None
    _listen_to_connections()
    watched = _Watched(state.session, mapper, statement, state.parameters)
    token = _watched.set(watched)
    try:
        result = state.invoke_statement()  # its own errors are SQLAlchemy's to handle
    finally:
        _watched.reset(token)
    watched.send_after()
    return result


class _Watched:
    """One bulk statement, from its ``do_orm_execute`` to its result.

    Other ``do_orm_execute`` hooks may still change its options, and SQLAlchemy
    autoflushes only after them: the rows it will touch can be read only once
    it reaches its connection.
    """

    def __init__(
        self, session: Session, mapper: Mapper[Any], statement: Update | Delete, parameters: Any
    ) -> None:
        self.session = session
        self.mapper = mapper
        self.statement = statement
        self.parameters = parameters
        self.connections: list[Connection] = []  # one per shard, with horizontal sharding
        self.instances: list[Any] = []  # of a DELETE
        self.updated: list[Any] = []  # keys, of an UPDATE

    def is_this(self, clause: Any) -> bool:
        """Whether ``clause`` is this statement as SQLAlchemy hands it to a
        connection (annotated, or one per table for the by-primary-key form),
        not a statement of the autoflush before it, which is on a plain Table."""
        return (
            isinstance(clause, type(self.statement))
            and runs_as_orm(clause)
            and (
                clause.table.is_derived_from(self.statement.table)
                or self.statement.table.is_derived_from(clause.table)
            )
        )

    def send_before(self, connection: Connection, clause: Any) -> None:
        """Read the rows, and send the pre_* signals. ``clause`` is the statement
        as it reaches the connection, with what later hooks gave it; a list of
        parameter sets reaches it as SQLAlchemy's own by-primary-key UPDATEs."""
        rows = self.parameters if isinstance(self.parameters, list) else None
        criteria = clause if rows is None else self.statement
        if isinstance(self.statement, Delete):
            instances = _rows_about_to_go(connection, self.mapper, criteria, self.parameters)
            self.instances += instances
            self._send(pre_delete, instances, connection)
            return
        pks = _keys_in_parameters(self.mapper, rows)
        with _receivers_running(self.session):
            pre_bulk_update.send(
                self.mapper.class_, statement=self.statement, pks=pks, session=self.session
            )
        if rows is None:
            updated = _matching(connection, self.mapper, criteria, self.parameters)
        else:
            updated = _updated_by_each(connection, self.mapper, criteria, rows, pks)
        # An UPDATE ... FROM a join matches a row once per joined row.
        self.updated = list(dict.fromkeys([*self.updated, *updated]))

    def send_after(self) -> None:
        if not self.connections:  # it never reached the database
            return
        if isinstance(self.statement, Delete):
            self._send(post_delete, self.instances, self.connections[0])
            return
        with _receivers_running(self.session):
            post_bulk_update.send(
                self.mapper.class_, statement=self.statement, pks=self.updated, session=self.session
            )

    def _send(self, signal: Any, instances: list[Any], connection: Connection) -> None:
        with _receivers_running(self.session):
            for instance in list(instances):
                signal.send(
                    type(instance),
                    instance=instance,
                    using=connection.engine,
                    origin=self.statement,
                    session=self.session,
                )


# The bulk statement this thread or task is running, if any.
_watched: ContextVar[_Watched | None] = ContextVar("sa_signals_bulk_statement", default=None)


def _statement_reaches_its_connection(
    connection: Connection, clause: Any, multiparams: Any, params: Any, options: Any
) -> None:
    watched = _watched.get()
    if watched is None:
        return
    clause = resolved_statement(clause)
    if not watched.is_this(clause) or connection in watched.connections:
        return
    # A by-primary-key UPDATE of joined inheritance writes each table of its
    # rows: the same rows, read once per connection.
    watched.connections.append(connection)
    watched.send_before(connection, clause)


_listening_lock = threading.Lock()
_listening = False


def _listen_to_connections() -> None:
    """Listen to the statements of every connection from the first bulk
    statement a receiver hears on: until then, SQLAlchemy's fast path."""
    global _listening
    with _listening_lock:
        if not _listening:
            event.listen(Engine, "before_execute", _statement_reaches_its_connection)
            _listening = True


@contextmanager
def _receivers_running(session: Session) -> Iterator[None]:
    """While receivers run: a statement of theirs is not the one watched, and
    an exception of theirs undoes the statement, as it undoes a flush (the
    innermost transaction is rolled back before it propagates). The statement's
    own errors are left to SQLAlchemy and the program."""
    token = _watched.set(None)
    try:
        yield
    except BaseException:
        transaction = session.get_nested_transaction() or session.get_transaction()
        if transaction is not None and transaction.is_active:
            transaction.rollback()
        raise
    finally:
        _watched.reset(token)


def _rows_about_to_go(
    connection: Connection, mapper: Mapper[Any], statement: Update | Delete, parameters: Any
) -> list[Any]:
    """The rows a DELETE is about to remove, as fresh detached instances of
    their own classes: loaded by a session of sa-signals' own on the statement's
    connection, which leaves the program's session as SQLAlchemy leaves it."""
    # Every column (post_delete receivers read them after the row is gone), no
    # eager joins (FOR UPDATE cannot lock the nullable side of an outer join).
    target = _target(statement, mapper)
    if target is mapper.class_ and len(mapper.self_and_descendants) > 1:
        # Rows of subclasses come with their own tables' columns, which a
        # detached instance could never load later.
        target = with_polymorphic(mapper.class_, "*")
    query = _locking(
        select(target).options(undefer("*"), lazyload("*")), statement, connection.dialect.name
    )
    query = _same_criteria(query, statement)
    # Joined to the statement's transaction as it is, a SAVEPOINT open or not:
    # it reads, and it is never committed or rolled back.
    reader = Session(bind=connection, autoflush=False, join_transaction_mode="rollback_only")
    with reader:
        with signals_disabled(reader):
            # unique(): a DELETE ... USING a join matches a row once per joined row.
            instances = list(reader.scalars(query, _single(parameters)).unique().all())
        reader.expunge_all()
    return instances


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


def _same_criteria(query: Select[Any], statement: Update | Delete) -> Select[Any]:
    """``query`` with the statement's WHERE and its loader criteria."""
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    return query.options(*loader_options(statement))


def _single(parameters: Any) -> dict[str, Any] | None:
    """The statement's one set of bound parameters, for a SELECT with its WHERE."""
    return parameters if isinstance(parameters, dict) else None


# -- primary keys ----------------------------------------------------------------------------


def _primary_key_columns(statement: Update | Delete, mapper: Mapper[Any]) -> list[Any]:
    target = _target(statement, mapper)
    return [getattr(target, mapper.get_property_by_column(c).key) for c in mapper.primary_key]


def _matching(
    connection: Connection, mapper: Mapper[Any], statement: Update | Delete, parameters: Any
) -> list[Any]:
    """Keys of the rows the UPDATE is about to match, locked where the database can."""
    query = _locking(
        select(*_primary_key_columns(statement, mapper)), statement, connection.dialect.name
    )
    query = _same_criteria(query, statement)
    return [_key(mapper, row) for row in connection.execute(query, _single(parameters))]


def _updated_by_each(
    connection: Connection,
    mapper: Mapper[Any],
    statement: Update | Delete,
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
        query = query.where(*_primary_key_is(columns))
    query = _same_criteria(query, statement)
    updated = []
    for position, row in enumerate(rows):
        own = {} if pks is None else dict(_pk_parameters(pks[position]))
        updated += [_key(mapper, found) for found in connection.execute(query, {**row, **own})]
    return updated


def _existing(
    connection: Connection, mapper: Mapper[Any], statement: Update | Delete, pks: list[Any]
) -> list[Any]:
    """The given keys whose rows exist: those an UPDATE by primary key updates."""
    columns = _primary_key_columns(statement, mapper)
    query = marked(select(*columns)).where(*_primary_key_is(columns))
    return [pk for pk in pks if connection.execute(query, dict(_pk_parameters(pk))).first()]


def _keys_in_parameters(mapper: Mapper[Any], rows: list[dict[str, Any]] | None) -> list[Any] | None:
    """The keys of the by-primary-key form, a list of parameter sets each
    naming the primary key; ``None`` for any other form."""
    names = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
    if rows is None or not all(name in row for row in rows for name in names):
        return None
    return [_key_from_parameters(mapper, row) for row in rows]


def _primary_key_is(columns: list[Any]) -> list[Any]:
    """``pk = :param`` for each key column, bound by ``_pk_parameters``."""
    return [column == bindparam(f"_sa_signals_pk_{i}") for i, column in enumerate(columns)]


def _pk_parameters(key: Any) -> Iterator[tuple[str, Any]]:
    """The parameters of ``_primary_key_is`` for one key."""
    values = key if isinstance(key, tuple) else (key,)
    return ((f"_sa_signals_pk_{i}", value) for i, value in enumerate(values))


def _key(mapper: Mapper[Any], row: Any) -> Any:
    """A primary key as Django's ``pk``: the value itself, or a tuple when composite."""
    values = tuple(row)
    return values[0] if len(mapper.primary_key) == 1 else values


def _key_from_parameters(mapper: Mapper[Any], row: dict[str, Any]) -> Any:
    values = tuple(row[mapper.get_property_by_column(column).key] for column in mapper.primary_key)
    return values[0] if len(values) == 1 else values
