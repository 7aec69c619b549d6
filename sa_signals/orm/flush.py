"""pre_save, post_save, pre_delete, post_delete (and m2m_changed), from the flush.

Where each is sent, and why there:

* ``pre_save`` and ``pre_delete`` go out from the session's ``before_flush``, the
  only moment where a receiver may change the instance, its relationships, and
  ``session.add()`` other objects with all of it written by the same flush.
  Receivers do add and change objects, so announcing repeats until a round finds
  nothing new.
* Some writes appear only inside the flush: a foreign key copied into a child the
  program never touched, an object added by another ``before_flush`` listener.
  Their ``pre_save`` comes from the mapper's ``before_insert``/``before_update``,
  where only the row's own columns may still change.
* ``post_save`` and ``post_delete`` are recorded by the mapper's ``after_insert``,
  ``after_update`` and ``after_delete``, in the order the rows were written and
  with the values written, then sent from ``after_flush_postexec``: identities are
  final there, and what a receiver changes or adds is written by the commit's next
  flush (or at once, if the receiver flushes).

A receiver's exception must leave nothing of the flush behind, on the ``flush()``
path and the ``commit()`` path alike. SQLAlchemy rolls back the innermost
transaction for an exception raised inside the flush, but not for one raised by a
``before_flush`` listener. So an exception from ``pre_save`` or ``pre_delete`` is
kept and raised again from the first mapper event of the flush, before any row
of a class with receivers is written, where SQLAlchemy's own handling applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstanceState, Mapper, Session, SessionTransaction, UOWTransaction
from sqlalchemy.orm.attributes import instance_state

from sa_signals.orm.columns import (
    fetch_columns,
    fetch_unloaded_columns,
    session_connection,
    values_lent,
)
from sa_signals.orm.deletes import delete_orphans, is_orphan, origins
from sa_signals.orm.hooks import MapperHooks
from sa_signals.orm.internals import post_updated
from sa_signals.orm.m2m import CollectionChanges
from sa_signals.orm.updates import (
    OldValues,
    columns_to_write,
    planned_update,
    post_updated_columns,
)
from sa_signals.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
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
    new_values: dict[str, Any]  # the values written, as far as they were known then


@dataclass(eq=False)
class _Deleted:
    """A row the flush deleted, for post_delete."""

    instance: Any
    origin: Any


@dataclass(eq=False)
class _Binds:
    """The bind each mapper's rows are written through, as Django's ``using``;
    asked per object, looked up once per mapper and flush."""

    session: Session
    _by_mapper: dict[Mapper[Any], Any] = field(default_factory=dict)

    def __call__(self, mapper: Mapper[Any]) -> Any:
        bind = self._by_mapper.get(mapper)
        if bind is None:
            bind = self._by_mapper[mapper] = self.session.get_bind(mapper)
        return bind


@dataclass(eq=False)
class _Flush:
    """What sa-signals knows of one flush of one session."""

    session: Session
    flush_context: UOWTransaction
    raw: bool
    # state -> created, for every instance pre_save was sent for (or considered)
    announced_saves: dict[InstanceState[Any], bool] = field(default_factory=dict)
    # state -> origin, for every instance pre_delete was sent for
    announced_deletes: dict[InstanceState[Any], Any] = field(default_factory=dict)
    # columns each UPDATE writes, with old values, from before_ to after_update
    planned_updates: dict[InstanceState[Any], dict[str, Any]] = field(default_factory=dict)
    old_values: OldValues = field(default_factory=OldValues)
    # what was written, in the order it was written
    written: dict[InstanceState[Any], _Saved | _Deleted] = field(default_factory=dict)
    # the columns deleted instances lacked, for post_delete receivers (values_lent)
    deleted_values: dict[InstanceState[Any], dict[str, Any]] = field(default_factory=dict)
    using: _Binds = field(init=False)
    collections: CollectionChanges = field(init=False)
    failure: Exception | None = None
    dispatching: bool = False
    _listening: dict[tuple[str, type], bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Not a bound method of this record: a reference cycle would keep the
        # record, and every instance it wrote, alive until the garbage collector
        # runs, where plain SQLAlchemy lets them go as soon as the flush is done.
        self.using = _Binds(self.session)
        self.collections = CollectionChanges(self.session, self.using)

    def listens(self, family: str, cls: type) -> bool:
        """Whether any receiver of the family (``"save"``, ``"delete"``) hears ``cls``;
        asked per object, answered once per class and flush."""
        answer = self._listening.get((family, cls))
        if answer is None:
            signals = _SAVE_SIGNALS if family == "save" else _DELETE_SIGNALS
            answer = any(signal.is_listened_for(cls) for signal in signals)
            self._listening[(family, cls)] = answer
        return answer

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


def _forget_failed_flushes(session: Session) -> None:
    """Drop the records of flushes that failed before after_flush_postexec (a
    dispatching record is an outer flush whose receiver is flushing now)."""
    stack = session.info.get(_FLUSHES)
    if stack:
        stack[:] = [flush for flush in stack if flush.dispatching]


def _any_receivers() -> bool:
    return any(signal.receivers for signal in (*_SAVE_SIGNALS, *_DELETE_SIGNALS, m2m_changed))


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    _forget_failed_flushes(session)


# -- before the flush: pre_save and pre_delete ------------------------------------------


@event.listens_for(Session, "before_flush")
def _before_flush(
    session: Session, flush_context: UOWTransaction, instances: Iterable[Any] | None
) -> None:
    _forget_failed_flushes(session)
    if not _any_receivers() or not signals_enabled(session):
        return
    flush = _Flush(session, flush_context, raw=is_raw(session))
    session.info.setdefault(_FLUSHES, []).append(flush)
    try:
        _announce(flush, None if instances is None else {instance_state(i) for i in instances})
    except Exception as error:
        flush.failure = error  # raised from inside the flush: see the module docstring


def _announce(flush: _Flush, only: set[InstanceState[Any]] | None) -> None:
    session = flush.session
    for _ in range(_MAX_ROUNDS):
        if any(signal.receivers for signal in _DELETE_SIGNALS):
            delete_orphans(session)
        saves = _saves_to_announce(flush, only)
        deletes = _deletes_to_announce(flush, only)
        for state, created in saves:
            _send_pre_save(flush, state, created)
        for state, origin in deletes:
            _send_pre_delete(flush, state, origin)
        collections = flush.collections.announce(only)
        if not saves and not deletes and not collections:
            break
    else:
        raise RuntimeError(
            f"pre_* receivers changed objects in each of {_MAX_ROUNDS} rounds of one flush; "
            "is a receiver modifying a different object every time?"
        )
    # post_delete receivers read every column; once the row is gone, an expired
    # one could never be loaded again. Fetched beside the instance, lent to it
    # while they run: SQLAlchemy's flush sees the instance as it left it.
    flush.deleted_values.update(
        fetch_unloaded_columns(
            session_connection(session),
            [s for s in flush.announced_deletes if post_delete.is_listened_for(s.class_)],
        )
    )


def _saves_to_announce(
    flush: _Flush, only: set[InstanceState[Any]] | None
) -> list[tuple[InstanceState[Any], bool]]:
    session = flush.session
    new = [
        state
        for state in map(instance_state, session.new)
        if flush.listens("save", state.class_)
        and state not in flush.announced_saves
        and (only is None or state in only)
    ]
    changed = [
        state
        for state in map(instance_state, session.dirty)
        if flush.listens("save", state.class_)
        and (only is None or state in only)
        and not (state.has_identity and is_orphan(state))  # to be deleted, not saved
    ]
    # Every round: a receiver may have assigned an expired attribute of an
    # instance announced earlier.
    flush.old_values.resolve(
        session_connection(session),
        changed,
        with_changes=any(post_save.is_listened_for(state.class_) for state in changed),
    )
    updated = [
        state for state in changed if state not in flush.announced_saves and columns_to_write(state)
    ]
    return [(state, True) for state in new] + [(state, False) for state in updated]


def _deletes_to_announce(
    flush: _Flush, only: set[InstanceState[Any]] | None
) -> list[tuple[InstanceState[Any], Any]]:
    deleted = [
        state
        for state in map(instance_state, flush.session.deleted)
        if flush.listens("delete", state.class_)
        and state not in flush.announced_deletes
        and (only is None or state in only)
    ]
    if not deleted:
        return []
    origin_of = origins(flush.session)
    return [(state, origin_of[state]) for state in deleted]


def _send_pre_save(flush: _Flush, state: InstanceState[Any], created: bool) -> None:
    flush.announced_saves[state] = created
    if pre_save.is_listened_for(state.class_):
        pre_save.send(
            state.class_,
            instance=state.obj(),
            raw=flush.raw,
            using=flush.using(state.mapper),
            update_fields=None if created else frozenset(columns_to_write(state)),
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


# -- inside the flush: mapper events -------------------------------------------------------


def _before_insert(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is None:
        return
    flush.raise_failure()
    if flush.listens("save", state.class_) and state not in flush.announced_saves:
        # Added during the flush (by another before_flush listener, say).
        _send_pre_save(flush, state, created=True)


def _before_update(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is None:
        return
    flush.raise_failure()
    if not flush.listens("save", state.class_) or flush.announced_saves.get(state) is True:
        return  # not listened to, or a row switch, reported as the insert it was asked as
    connection_for = _connection_for(connection)
    with_changes = post_save.is_listened_for(state.class_)
    flush.old_values.resolve(connection_for, [state], with_changes)
    if state not in flush.announced_saves and columns_to_write(state):
        # Written only because of the flush itself (a foreign key copied in).
        _send_pre_save(flush, state, created=False)
        flush.old_values.resolve(connection_for, [state], with_changes)
    flush.planned_updates[state] = planned_update(state, flush.old_values)


def _before_delete(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is None:
        return
    flush.raise_failure()
    if flush.listens("delete", state.class_) and state not in flush.announced_deletes:
        # Found by the flush itself (a cascade from a delete-orphan's own children).
        _send_pre_delete(flush, state, origin=state.obj())
        if post_delete.is_listened_for(state.class_):
            flush.deleted_values.update(
                fetch_unloaded_columns(_connection_for(connection), [state])
            )


def _after_insert(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is not None and post_save.is_listened_for(state.class_):
        flush.written[state] = _Saved(state.obj(), created=True, old_values={}, new_values={})


def _after_update(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is None:
        return
    if flush.announced_saves.get(state) is True:
        _record_row_switch(flush, state)
        return
    old_values = flush.planned_updates.get(state)
    if old_values and post_save.is_listened_for(state.class_):
        new_values = {key: state.dict[key] for key in old_values if key in state.dict}
        flush.written[state] = _Saved(state.obj(), False, old_values, new_values)


def _record_row_switch(flush: _Flush, state: InstanceState[Any]) -> None:
    """The program deleted a row and added an object with the same primary key;
    SQLAlchemy wrote a single UPDATE. Report what the program asked for, as
    Django would: the delete, then the insert."""
    instance = state.obj()
    key = state.mapper.identity_key_from_instance(instance)
    replaced = flush.session.identity_map.get(key)
    if replaced is not None:
        replaced_state = instance_state(replaced)
        if replaced_state in flush.announced_deletes and post_delete.is_listened_for(
            replaced_state.class_
        ):
            origin = flush.announced_deletes[replaced_state]
            flush.written[replaced_state] = _Deleted(replaced, origin)
    if post_save.is_listened_for(state.class_):
        flush.written[state] = _Saved(instance, created=True, old_values={}, new_values={})


def _after_delete(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> None:
    flush = _flush_of(state)
    if flush is not None and post_delete.is_listened_for(state.class_):
        origin = flush.announced_deletes.get(state, state.obj())
        flush.written[state] = _Deleted(state.obj(), origin)


def _connection_for(connection: Connection) -> Any:
    return lambda _mapper: connection


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


def _current(session: Session, flush_context: UOWTransaction) -> _Flush | None:
    stack = session.info.get(_FLUSHES)
    if stack and stack[-1].flush_context is flush_context:
        return stack[-1]  # type: ignore[no-any-return]
    return None


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    flush = _current(session, flush_context)
    if flush is None:
        return
    # Still inside the flush's own error handling: a kept pre_save failure that
    # no mapper event raised (the flush wrote rows of classes without receivers only).
    flush.raise_failure()
    _record_post_updates(flush)


def _record_post_updates(flush: _Flush) -> None:
    """Foreign keys SQLAlchemy wrote in a separate post-update statement, after
    the rows, without mapper events: still an UPDATE of the row, announced by
    post_save. The one-to-many side writes children that may not have been
    changed at all before the flush: they get no pre_save, since their UPDATE
    is known only once it is written."""
    for state, columns in post_updated(flush.flush_context):
        created = flush.announced_saves.get(state)
        if created or state in flush.announced_deletes or state.deleted or state.was_deleted:
            continue  # an INSERT's own post-update, or a row about to go
        if not post_save.is_listened_for(state.class_):
            continue
        keys = post_updated_columns(state, columns)
        if not keys:
            continue
        saved = flush.written.get(state)
        if not isinstance(saved, _Saved):
            saved = flush.written[state] = _Saved(state.obj(), False, {}, {})
        for key in keys:
            history = state.attrs[key].history
            saved.old_values[key] = history.deleted[0] if history.deleted else None
            saved.new_values[key] = state.dict.get(key)


@event.listens_for(Session, "after_flush_postexec")
def _after_flush_postexec(session: Session, flush_context: UOWTransaction) -> None:
    flush = _current(session, flush_context)
    if flush is None:
        return
    stack = session.info[_FLUSHES]
    flush.dispatching = True
    try:
        _load_generated_values(flush)
        with _receivers_may_flush(session), values_lent(flush.deleted_values):
            for written in flush.written.values():
                if isinstance(written, _Saved):
                    _send_post_save(flush, written)
                else:
                    _send_post_delete(flush, written)
            flush.collections.send_post()  # association rows are written last
    finally:
        del stack[stack.index(flush) :]


def _load_generated_values(flush: _Flush) -> None:
    """Values the database computed for the UPDATEs (a SQL expression assigned,
    a SQL ``onupdate``), which SQLAlchemy expired: fetched now for ``changes``,
    one query per class, before any receiver runs and could change the rows.
    The instances are left expired, as SQLAlchemy leaves them."""
    expired = {
        instance_state(saved.instance): set(saved.old_values) - set(saved.new_values)
        for saved in flush.written.values()
        if isinstance(saved, _Saved)
    }
    for state, values in fetch_columns(session_connection(flush.session), expired).items():
        saved = flush.written[state]
        assert isinstance(saved, _Saved)
        saved.new_values.update(values)


@contextmanager
def _receivers_may_flush(session: Session) -> Iterator[None]:
    """Let post_save receivers flush, as Django's ``create()`` writes at once.

    The flush is complete when after_flush_postexec runs, except for ending its
    own subtransaction; only the ``_flushing`` flag still refuses a new flush (and
    autoflush). A receiver's flush nests cleanly: it opens and closes a
    subtransaction of its own and sends its own signals. (Committing from a
    receiver would end the transaction this flush still belongs to: don't.)
    """
    flushing = session._flushing
    session._flushing = False
    try:
        yield
    finally:
        session._flushing = flushing


def _send_post_save(flush: _Flush, saved: _Saved) -> None:
    instance = saved.instance
    changes = {key: (old, saved.new_values.get(key, old)) for key, old in saved.old_values.items()}
    post_save.send(
        type(instance),
        instance=instance,
        created=saved.created,
        raw=flush.raw,
        using=flush.using(instance_state(instance).mapper),
        update_fields=None if saved.created else frozenset(saved.old_values),
        changes=changes,
        session=flush.session,
    )


def _send_post_delete(flush: _Flush, deleted: _Deleted) -> None:
    instance = deleted.instance
    post_delete.send(
        type(instance),
        instance=instance,
        using=flush.using(instance_state(instance).mapper),
        origin=deleted.origin,
        session=flush.session,
    )
