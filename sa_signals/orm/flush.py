"""pre_save, post_save, pre_delete and post_delete, from SQLAlchemy's flush.

Where each is sent, and why there:

* ``pre_save`` and ``pre_delete`` go out from the session's ``before_flush``, the
  only moment where a receiver may change the instance, its relationships, and
  ``session.add()`` other objects with all of it written by the same flush.
  Receivers do add and change objects, so announcing repeats until a round finds
  nothing new.
* A few writes are decided inside the flush only (a foreign key copied into a
  child that the program never touched). Their ``pre_save`` comes from the
  mapper's ``before_update``, where only the row's own columns may still change.
* ``post_save`` and ``post_delete`` are recorded by the mapper's ``after_insert``,
  ``after_update`` and ``after_delete``, in the order the rows were written and
  while the attribute history still says what was written, then sent from
  ``after_flush_postexec``: identities are final there, and what a receiver
  changes or adds is written by the commit's next flush (or at once, if the
  receiver flushes).

A receiver's exception must leave nothing of the flush behind, on the ``flush()``
path and the ``commit()`` path alike. SQLAlchemy rolls back the innermost
transaction for an exception raised inside the flush, but not for one raised by a
``before_flush`` listener. So an exception from ``pre_save`` or ``pre_delete`` is
kept and raised again from the first mapper event of the flush, before any row
of a class with receivers is written, where SQLAlchemy's own handling applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import NO_VALUE, InstanceState, Mapper, Session, UOWTransaction
from sqlalchemy.orm.exc import UnmappedColumnError
from sqlalchemy.orm.interfaces import MANYTOONE

from sa_signals.orm.columns import (
    ConnectionFor,
    column_keys,
    fetch_columns,
    load_unloaded_columns,
    session_connection,
    unknown_old_values,
)
from sa_signals.orm.deletes import delete_orphans, origins
from sa_signals.orm.hooks import MapperHooks
from sa_signals.signals import post_delete, post_save, pre_delete, pre_save
from sa_signals.switches import is_raw, signals_enabled

__all__: list[str] = []

_SAVE_SIGNALS = (pre_save, post_save)
_DELETE_SIGNALS = (pre_delete, post_delete)
_FLUSHES = "sa_signals.flushes"

# A receiver that changes an object in every round would never stop the
# announcing loop; SQLAlchemy stops its own commit loop after 100 flushes.
_MAX_ROUNDS = 100


@dataclass(eq=False)
class _Saved:
    """A row the flush inserted or updated, for post_save."""

    instance: Any  # held strongly: after the flush, the session holds it weakly
    created: bool
    old_values: dict[str, Any]  # of the columns an UPDATE wrote


@dataclass(eq=False)
class _Deleted:
    """A row the flush deleted, for post_delete."""

    instance: Any
    origin: Any


@dataclass(eq=False)
class _Flush:
    """What sa-signals knows of one flush of one session."""

    session: Session
    flush_context: UOWTransaction
    raw: bool
    # state -> created, for every instance pre_save was sent for (or skipped)
    announced_saves: dict[InstanceState[Any], bool] = field(default_factory=dict)
    # state -> origin, for every instance pre_delete was sent for
    announced_deletes: dict[InstanceState[Any], Any] = field(default_factory=dict)
    # columns an UPDATE will write and their old values, between before_ and after_update
    planned_updates: dict[InstanceState[Any], dict[str, Any]] = field(default_factory=dict)
    # old values fetched for generated columns (onupdate, version) that were not loaded
    fetched_old_values: dict[InstanceState[Any], dict[str, Any]] = field(default_factory=dict)
    # what was written, in the order it was written; keyed so recording is idempotent
    written: dict[InstanceState[Any], _Saved | _Deleted] = field(default_factory=dict)
    failure: Exception | None = None
    dispatching: bool = False
    _binds: dict[Mapper[Any], Any] = field(default_factory=dict)
    _listening: dict[tuple[str, type], bool] = field(default_factory=dict)

    def listens(self, family: str, cls: type) -> bool:
        """Whether any receiver of the family (``"save"``, ``"delete"``) hears ``cls``;
        asked per object, answered once per class and flush."""
        answer = self._listening.get((family, cls))
        if answer is None:
            signals = _SAVE_SIGNALS if family == "save" else _DELETE_SIGNALS
            answer = any(signal.is_listened_for(cls) for signal in signals)
            self._listening[(family, cls)] = answer
        return answer

    def using(self, mapper: Mapper[Any]) -> Any:
        """The bind the mapper's rows are written through, as Django's ``using``."""
        bind = self._binds.get(mapper)
        if bind is None:
            bind = self._binds[mapper] = self.session.get_bind(mapper)
        return bind

    def raise_failure(self) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure


# -- finding the flush in progress ---------------------------------------------------


def _flush_of(state: InstanceState[Any]) -> _Flush | None:
    """The record of the flush writing ``state``, if sa-signals keeps one. A
    dispatching record is an outer flush whose receiver flushes now, untracked."""
    session = state.session
    stack: list[_Flush] | None = session.info.get(_FLUSHES) if session is not None else None
    if not stack or stack[-1].dispatching:
        return None
    return stack[-1]


def _any_receivers() -> bool:
    return any(signal.receivers for signal in (*_SAVE_SIGNALS, *_DELETE_SIGNALS))


# -- before the flush: pre_save and pre_delete ------------------------------------------


@event.listens_for(Session, "before_flush")
def _before_flush(
    session: Session, flush_context: UOWTransaction, instances: Iterable[Any] | None
) -> None:
    stack = session.info.get(_FLUSHES)
    if stack:
        # A record that is not dispatching belongs to a flush that failed before
        # after_flush_postexec; a dispatching one is an outer flush whose
        # receiver is flushing now.
        stack[:] = [flush for flush in stack if flush.dispatching]
    if not _any_receivers() or not signals_enabled(session):
        return
    flush = _Flush(session, flush_context, raw=is_raw(session))
    session.info.setdefault(_FLUSHES, []).append(flush)
    try:
        _announce(flush, None if instances is None else {inspect(i) for i in instances})
    except Exception as error:
        flush.failure = error  # raised from inside the flush: see the module docstring


def _announce(flush: _Flush, only: set[InstanceState[Any]] | None) -> None:
    session = flush.session
    for _ in range(_MAX_ROUNDS):
        if any(signal.receivers for signal in _DELETE_SIGNALS):
            delete_orphans(session)
        saves = _saves_to_announce(flush, only)
        deletes = _deletes_to_announce(flush, only)
        if not saves and not deletes:
            break
        for state, created in saves:
            _send_pre_save(flush, state, created)
        for state, origin in deletes:
            _send_pre_delete(flush, state, origin)
    else:
        raise RuntimeError(
            f"pre_save/pre_delete receivers changed objects in each of {_MAX_ROUNDS} rounds "
            "of one flush; is a receiver modifying a different object every time?"
        )
    _prepare_post_delete(flush, session_connection(session))


def _saves_to_announce(
    flush: _Flush, only: set[InstanceState[Any]] | None
) -> list[tuple[InstanceState[Any], bool]]:
    session = flush.session
    new = _unannounced(flush, (inspect(i) for i in session.new), only, flush.announced_saves)
    changed = [
        state
        for state in (inspect(i) for i in session.dirty)
        if (only is None or state in only) and flush.listens("save", state.class_)
    ]
    # Every round: a receiver may have assigned an expired attribute of an
    # instance announced earlier.
    _resolve_old_values(flush, changed, session_connection(session))
    updated = [
        state
        for state in changed
        if state not in flush.announced_saves and _columns_to_write(state)
    ]
    return [(state, True) for state in new] + [(state, False) for state in updated]


def _resolve_old_values(
    flush: _Flush, states: Iterable[InstanceState[Any]], connection_for: ConnectionFor
) -> None:
    """Fetch, in one query per class, what SQLAlchemy does not know of the rows
    about to be updated: the old value of columns assigned while expired (recorded
    as the committed value, see ``sa_signals.orm.columns``), and, for post_save's
    ``changes``, of generated columns that are not loaded."""
    wanted = {}
    for state in states:
        keys = unknown_old_values(state)
        if post_save.is_listened_for(state.class_):
            fetched = flush.fetched_old_values.get(state, {})
            keys += [
                key
                for key in _generated_on_update(state.mapper, _columns_to_write(state) | set(keys))
                if key not in state.dict and key not in fetched
            ]
        if keys:
            wanted[state] = keys
    for state, values in fetch_columns(connection_for, wanted).items():
        for key, value in values.items():
            if state.committed_state.get(key) is NO_VALUE:
                # committed_state holds the value before the pending change; both
                # SQLAlchemy's history and its UPDATE compare against it. No public
                # API sets it while keeping the pending value, which is what we need.
                state.committed_state[key] = value
            else:
                flush.fetched_old_values.setdefault(state, {})[key] = value


def _deletes_to_announce(
    flush: _Flush, only: set[InstanceState[Any]] | None
) -> list[tuple[InstanceState[Any], Any]]:
    marked = (inspect(i) for i in flush.session.deleted)
    deleted = _unannounced(flush, marked, only, flush.announced_deletes, family="delete")
    if not deleted:
        return []
    origin_of = origins(flush.session)
    return [(state, origin_of[state]) for state in deleted]


def _unannounced(
    flush: _Flush,
    states: Iterable[InstanceState[Any]],
    only: set[InstanceState[Any]] | None,
    announced: dict[InstanceState[Any], Any],
    family: str = "save",
) -> list[InstanceState[Any]]:
    return [
        state
        for state in states
        if state not in announced
        and (only is None or state in only)
        and flush.listens(family, state.class_)
    ]


def _send_pre_save(flush: _Flush, state: InstanceState[Any], created: bool) -> None:
    flush.announced_saves[state] = created
    if pre_save.is_listened_for(state.class_):
        pre_save.send(
            state.class_,
            instance=state.obj(),
            raw=flush.raw,
            using=flush.using(state.mapper),
            update_fields=None if created else frozenset(_columns_to_write(state)),
            session=flush.session,
        )


def _send_pre_delete(flush: _Flush, state: InstanceState[Any], origin: Any) -> None:
    flush.announced_deletes[state] = origin
    if pre_delete.is_listened_for(state.class_):
        pre_delete.send(
            state.class_,
            instance=state.obj(),
            using=flush.using(state.mapper),
            origin=origin,
            session=flush.session,
        )


def _prepare_post_delete(flush: _Flush, connection_for: Any) -> None:
    """post_delete receivers read every column; once the row is gone, an expired
    one could never be loaded again."""
    load_unloaded_columns(
        connection_for,
        [state for state in flush.announced_deletes if post_delete.is_listened_for(state.class_)],
    )


# -- which columns an UPDATE writes ------------------------------------------------------


def _columns_to_write(state: InstanceState[Any]) -> set[str]:
    """The column attributes an UPDATE of ``state`` would write as things stand:
    those with a net change, including foreign keys of many-to-one relationships
    changed but not yet copied into their columns."""
    mapper = state.mapper
    attrs = state.attrs
    keys = {key for key in column_keys(mapper) if attrs[key].history.has_changes()}
    for relationship in mapper.relationships:
        if relationship.direction is MANYTOONE and attrs[relationship.key].history.has_changes():
            keys.update(_keys_of_columns(mapper, relationship.local_columns))
    return keys


def _keys_of_columns(mapper: Mapper[Any], columns: Iterable[Any]) -> set[str]:
    keys = set()
    for column in columns:
        with suppress(UnmappedColumnError):  # a column the mapper leaves out
            keys.add(mapper.get_property_by_column(column).key)
    return keys


def _generated_on_update(mapper: Mapper[Any], changed: set[str]) -> set[str]:
    """Columns an UPDATE writes although nobody assigned them: Python or SQL
    ``onupdate`` defaults of the tables being updated, and the version counter."""
    tables = {mapper.column_attrs[key].columns[0].table for key in changed}
    generated = {
        prop.key
        for prop in mapper.column_attrs
        if isinstance(column := prop.columns[0], Column)
        and column.onupdate is not None
        and column.table in tables
    }
    if mapper.version_id_col is not None:
        generated |= _keys_of_columns(mapper, [mapper.version_id_col])
    return generated - changed


def _plan_update(flush: _Flush, connection: Connection, state: InstanceState[Any]) -> None:
    """Record the columns the coming UPDATE writes, with their old values."""
    _resolve_old_values(flush, [state], lambda _: connection)  # only what is still unknown
    old_values = {}  # in the order of the mapper's columns
    for key in column_keys(state.mapper):
        history = state.attrs[key].history
        if history.has_changes():
            old_values[key] = history.deleted[0] if history.deleted else None
    if not old_values:
        return  # no net change: SQLAlchemy emits no UPDATE, Django-style receivers hear nothing
    fetched = flush.fetched_old_values.get(state, {})
    generated = _generated_on_update(state.mapper, set(old_values))
    for key in column_keys(state.mapper):
        if key in generated:
            old_values[key] = state.dict[key] if key in state.dict else fetched.get(key)
    flush.planned_updates[state] = old_values


# -- inside the flush: mapper events -------------------------------------------------------
# Each may run twice for one object (see MapperHooks.install), so each is idempotent.


def _before_insert(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is not None:
        flush.raise_failure()


def _before_update(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is None:
        return
    flush.raise_failure()
    if not flush.listens("save", state.class_):
        return
    _resolve_old_values(flush, [state], lambda _: connection)
    if state not in flush.announced_saves and _columns_to_write(state):
        # Written only because of the flush itself (a foreign key copied in).
        _send_pre_save(flush, state, created=False)
    _plan_update(flush, connection, state)


def _before_delete(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is None:
        return
    flush.raise_failure()
    if flush.listens("delete", state.class_) and state not in flush.announced_deletes:
        # Found by the flush itself (a cascade from a delete-orphan's own children).
        _send_pre_delete(flush, state, origin=state.obj())
        if post_delete.is_listened_for(state.class_):
            load_unloaded_columns(lambda _: connection, [state])


def _after_insert(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is not None and post_save.is_listened_for(state.class_):
        flush.written[state] = _Saved(state.obj(), created=True, old_values={})


def _after_update(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is None:
        return
    old_values = flush.planned_updates.get(state)
    if old_values is not None and post_save.is_listened_for(state.class_):
        flush.written[state] = _Saved(state.obj(), created=False, old_values=old_values)


def _after_delete(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is not None and post_delete.is_listened_for(state.class_):
        origin = flush.announced_deletes.get(state, state.obj())
        flush.written[state] = _Deleted(state.obj(), origin)


MapperHooks(
    {
        "before_insert": _before_insert,
        "before_update": _before_update,
        "before_delete": _before_delete,
        "after_insert": _after_insert,
        "after_update": _after_update,
        "after_delete": _after_delete,
    },
    signals=(*_SAVE_SIGNALS, *_DELETE_SIGNALS),
    raw=True,
)


# -- after the flush: post_save and post_delete ----------------------------------------------


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    stack = session.info.get(_FLUSHES)
    if stack and stack[-1].flush_context is flush_context:
        # Still inside the flush's own error handling: a kept pre_save failure
        # that no mapper event raised (rows only of classes without receivers).
        stack[-1].raise_failure()


@event.listens_for(Session, "after_flush_postexec")
def _after_flush_postexec(session: Session, flush_context: UOWTransaction) -> None:
    stack = session.info.get(_FLUSHES)
    if not stack or stack[-1].flush_context is not flush_context:
        return
    flush = stack[-1]
    flush.dispatching = True
    try:
        with _receivers_may_flush(session):
            for written in flush.written.values():
                if isinstance(written, _Saved):
                    _send_post_save(flush, written)
                else:
                    _send_post_delete(flush, written)
    finally:
        del stack[stack.index(flush) :]


@contextmanager
def _receivers_may_flush(session: Session) -> Iterator[None]:
    """Let post_save receivers flush, as Django's ``create()`` writes at once.

    The flush is complete when after_flush_postexec runs, except for ending its
    own subtransaction; only the ``_flushing`` flag still refuses a new flush (and
    autoflush). A receiver's flush nests cleanly: it opens and closes a
    subtransaction of its own and sends its own signals.
    """
    flushing = session._flushing
    session._flushing = False
    try:
        yield
    finally:
        session._flushing = flushing


def _send_post_save(flush: _Flush, saved: _Saved) -> None:
    instance = saved.instance
    changes = {key: (old, getattr(instance, key)) for key, old in saved.old_values.items()}
    post_save.send(
        type(instance),
        instance=instance,
        created=saved.created,
        raw=flush.raw,
        using=flush.using(inspect(instance).mapper),
        update_fields=None if saved.created else frozenset(saved.old_values),
        changes=changes,
        session=flush.session,
    )


def _send_post_delete(flush: _Flush, deleted: _Deleted) -> None:
    instance = deleted.instance
    post_delete.send(
        type(instance),
        instance=instance,
        using=flush.using(inspect(instance).mapper),
        origin=deleted.origin,
        session=flush.session,
    )
