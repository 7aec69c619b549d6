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
  flush (or at once, if the receiver flushes). What an UPDATE writes, and what
  the columns held before, is decided in ``before_update``, as SQLAlchemy
  decides it, from the object's committed state.

A receiver's exception must leave nothing of the flush behind, on the ``flush()``
path and the ``commit()`` path alike. SQLAlchemy rolls back the innermost
transaction for an exception raised inside the flush, but not for one raised by a
``before_flush`` listener. So an exception from ``pre_save`` or ``pre_delete`` is
kept and raised again from inside the flush (its first mapper event, at the
latest ``after_flush``), where SQLAlchemy's own handling applies.

Every step runs once per object, and only for what a receiver listens to: a
class with only ``post_save`` receivers needs nothing before the flush, and
pays for one mapper event per inserted object, two per updated one.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import (
    EXT_CONTINUE,
    InstanceState,
    Mapper,
    Session,
    SessionTransaction,
    UOWTransaction,
    class_mapper,
)
from sqlalchemy.orm.attributes import instance_dict, instance_state

from sa_signals.columns import (
    fetch_columns,
    fetch_unloaded_columns,
    session_connection,
    values_lent,
)
from sa_signals.internals import flushes_allowed, post_updated
from sa_signals.orm.deletes import cascade_origins, delete_orphans, is_orphan
from sa_signals.orm.hooks import MapperHooks
from sa_signals.orm.m2m import CollectionChanges
from sa_signals.orm.updates import (
    OldValues,
    UpdateColumns,
    columns_to_write,
    planned_update,
    post_updated_changes,
    update_columns,
)
from sa_signals.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from sa_signals.switches import is_raw, signals_enabled

__all__: list[str] = []

_SAVE_SIGNALS = (pre_save, post_save)
_DELETE_SIGNALS = (pre_delete, post_delete)
_RECORDING = "sa_signals.flush"  # Session.info: the flush being recorded

# A receiver that changes an object in every round would never stop the
# announcing loop; SQLAlchemy stops its own commit loop after 100 flushes.
_MAX_ROUNDS = 100


class _Heard(NamedTuple):
    """Which signals have receivers for one class, and what its UPDATEs are
    decided from; asked per object, worked out once per class and flush."""

    pre_save: bool
    post_save: bool
    pre_delete: bool
    post_delete: bool
    update_columns: UpdateColumns


# What the flush wrote, in the order it was written, for the post_* signals:
# (post_save, instance, created, changes) for an INSERT or UPDATE, with
# ``changes`` as post_save sends it, and (post_delete, instance, origin, None).
# Tuples: one is made per object. Instances are held strongly: after the flush,
# the session holds them weakly.
_Written = tuple[Any, Any, Any, Any]


class _HeardByClass(dict[type, _Heard]):
    """``_Heard`` by class, worked out on first lookup: asked per object, the
    lookup is a plain dict lookup."""

    def __missing__(self, cls: type) -> _Heard:
        heard = self[cls] = _Heard(
            pre_save.is_listened_for(cls),
            post_save.is_listened_for(cls),
            pre_delete.is_listened_for(cls),
            post_delete.is_listened_for(cls),
            update_columns(class_mapper(cls)),
        )
        return heard


class _Binds(dict[Mapper[Any], Any]):
    """The bind each mapper's rows are written through, as Django's ``using``;
    asked of the session on first lookup, once per mapper and flush."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def __missing__(self, mapper: Mapper[Any]) -> Any:
        bind = self[mapper] = self.session.get_bind(mapper)
        return bind


@dataclass(eq=False)
class _Flush:
    """What sa-signals knows of one flush of one session."""

    session: Session
    flush_context: UOWTransaction
    raw: bool
    heard: _HeardByClass = field(default_factory=_HeardByClass)
    # every instance pre_save was sent for
    announced_saves: set[InstanceState[Any]] = field(default_factory=set)
    # state -> origin, for every instance announced for deletion
    announced_deletes: dict[InstanceState[Any], Any] = field(default_factory=dict)
    # the old values of the columns each UPDATE writes, from before_ to after_update
    planned: dict[InstanceState[Any], dict[str, Any]] = field(default_factory=dict)
    old_values: OldValues = field(default_factory=OldValues)
    # the base mappers whose changed objects' old values were fetched
    resolved: set[Mapper[Any]] = field(default_factory=set)
    written: list[_Written] = field(default_factory=list)
    # the changes of UPDATEs whose new values the database computed (see _COMPUTED)
    computed: dict[InstanceState[Any], dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    # the columns deleted instances lacked, for post_delete receivers (values_lent)
    deleted_values: dict[InstanceState[Any], dict[str, Any]] = field(default_factory=dict)
    using: _Binds = field(init=False)
    collections: CollectionChanges = field(init=False)
    failure: Exception | None = None

    def __post_init__(self) -> None:
        # Not a bound method of this record: a reference cycle would keep the
        # record, and every instance it wrote, alive until the garbage collector
        # runs, where plain SQLAlchemy lets them go as soon as the flush is done.
        self.using = _Binds(self.session)
        self.collections = CollectionChanges(self.session, self.using.__getitem__)

    def raise_failure(self) -> None:
        """Raise the kept pre_* failure, once (callers check ``failure`` first:
        it is asked per object)."""
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure


# -- finding the flush being recorded ----------------------------------------------------------

# The flush each session is recording, by ``Session.hash_key``, which every
# InstanceState names as its ``session_id``: a mapper event finds it in one
# lookup. Held weakly: the session's info holds it, so that it goes with the
# session even after a flush that failed and was never rolled back.
_recording: dict[int, weakref.ref[_Flush]] = {}


def _recorder(state: InstanceState[Any]) -> _Flush | None:
    """The flush recording ``state``'s session, if any (inlined by the update
    listeners, which run for every object updated)."""
    reference = _recording.get(state.session_id)  # type: ignore[arg-type]
    return None if reference is None else reference()


def _start_recording(flush: _Flush) -> None:
    key = flush.session.hash_key

    def forget(reference: weakref.ref[_Flush]) -> None:
        if _recording.get(key) is reference:
            del _recording[key]

    flush.session.info[_RECORDING] = flush
    _recording[key] = weakref.ref(flush, forget)


def _stop_recording(session: Session) -> None:
    """The flush is over (or failed): a flush a post_* receiver runs, or the
    next one, records itself."""
    session.info.pop(_RECORDING, None)
    _recording.pop(session.hash_key, None)


def _any_receivers() -> bool:
    return any(signal.receivers for signal in (*_SAVE_SIGNALS, *_DELETE_SIGNALS, m2m_changed))


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    _stop_recording(session)


# -- before the flush: pre_save and pre_delete ------------------------------------------


@event.listens_for(Session, "before_flush")
def _before_flush(
    session: Session, flush_context: UOWTransaction, instances: Iterable[Any] | None
) -> None:
    _stop_recording(session)  # one that failed in a before_flush listener after this one
    if not _any_receivers() or not signals_enabled(session):
        return
    flush = _Flush(session, flush_context, raw=is_raw(session))
    _start_recording(flush)
    try:
        # An instance that is not mapped is SQLAlchemy's to refuse, with its own error.
        _announce(flush, None if instances is None else {instance_state(i) for i in instances})
    except Exception as error:
        flush.failure = error  # raised from inside the flush: see the module docstring


def _announce(flush: _Flush, only: set[InstanceState[Any]] | None) -> None:
    """Send pre_save and pre_delete (and m2m_changed's pre_*), round after round
    while receivers change things. Deletions are announced for post_delete too,
    which needs their origin and the values the row will no longer have."""
    saves = bool(pre_save.receivers)
    deletes = bool(pre_delete.receivers or post_delete.receivers)
    if not (saves or deletes or m2m_changed.receivers):
        return
    session = flush.session
    for _ in range(_MAX_ROUNDS):
        if deletes:
            delete_orphans(session)
        to_save = _saves_to_announce(flush, only) if saves else []
        to_delete = _deletes_to_announce(flush, only) if deletes else []
        saved = False
        for state, created in to_save:
            if created:
                _send_pre_save(flush, state, update_fields=None)
                saved = True
                continue
            # Worked out as it is sent: an earlier receiver may have changed it.
            columns = columns_to_write(state)
            if columns:
                _send_pre_save(flush, state, frozenset(columns))
                saved = True
        for state, origin in to_delete:
            flush.announced_deletes[state] = origin  # for post_delete too
            if flush.heard[state.class_].pre_delete:
                _send_pre_delete(flush, state, origin)
        collections = flush.collections.announce(only)
        if not (saved or to_delete or collections):
            break
        if not (pre_save.receivers or pre_delete.receivers or collections):
            break  # no receiver ran that could have changed anything
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
            [s for s in flush.announced_deletes if flush.heard[s.class_].post_delete],
        )
    )


def _saves_to_announce(
    flush: _Flush, only: set[InstanceState[Any]] | None
) -> list[tuple[InstanceState[Any], bool]]:
    """The objects whose pre_save may still be due, with ``created``: the new
    ones, and the changed ones (an UPDATE needs a change SQLAlchemy recorded)."""
    session = flush.session
    new = [
        state
        for state in map(instance_state, session.new)
        if flush.heard[state.class_].pre_save
        and state not in flush.announced_saves
        and (only is None or state in only)
    ]
    changed = [
        state
        for state in map(instance_state, session.dirty)
        if flush.heard[state.class_].pre_save
        and state.committed_state
        and state not in flush.announced_saves
        and (only is None or state in only)
        and not (state.has_identity and is_orphan(state))  # to be deleted, not saved
    ]
    return [(state, True) for state in new] + [(state, False) for state in changed]


def _deletes_to_announce(
    flush: _Flush, only: set[InstanceState[Any]] | None
) -> list[tuple[InstanceState[Any], Any]]:
    """The objects not announced yet for deletion, with their origin."""
    marked = list(map(instance_state, flush.session.deleted))
    deleted = []
    for state in marked:
        heard = flush.heard[state.class_]
        if (
            (heard.pre_delete or heard.post_delete)
            and state not in flush.announced_deletes
            and (only is None or state in only)
        ):
            deleted.append(state)
    if not deleted:
        return []
    reached = cascade_origins(marked)
    return [(state, reached[state] if state in reached else state.obj()) for state in deleted]


# The sends of the flush, once per object, call each receiver with its keyword
# arguments written out (see Signal._plain_routes_for), in the order send() gives
# them (``signal`` and ``sender`` last); send() serves deferred, async and muted
# receivers with the same arguments.


def _send_pre_save(
    flush: _Flush, state: InstanceState[Any], update_fields: frozenset[str] | None
) -> None:
    """``update_fields`` is ``None`` for an INSERT."""
    flush.announced_saves.add(state)
    sender, instance, using = state.class_, state.obj(), flush.using[state.mapper]
    routes = pre_save._plain_routes_for(sender)
    if routes is None:
        pre_save.send(
            sender,
            instance=instance,
            raw=flush.raw,
            using=using,
            update_fields=update_fields,
            session=flush.session,
        )
        return
    for target, weak, _ in routes:
        receiver = target() if weak else target
        if receiver is not None:
            receiver(
                instance=instance,
                raw=flush.raw,
                using=using,
                update_fields=update_fields,
                session=flush.session,
                signal=pre_save,
                sender=sender,
            )


def _send_pre_delete(flush: _Flush, state: InstanceState[Any], origin: Any) -> None:
    sender, instance, using = state.class_, state.obj(), flush.using[state.mapper]
    routes = pre_delete._plain_routes_for(sender)
    if routes is None:
        pre_delete.send(
            sender, instance=instance, using=using, origin=origin, session=flush.session
        )
        return
    for target, weak, _ in routes:
        receiver = target() if weak else target
        if receiver is not None:
            receiver(
                instance=instance,
                using=using,
                origin=origin,
                session=flush.session,
                signal=pre_delete,
                sender=sender,
            )


# -- inside the flush: mapper events -------------------------------------------------------
# Listened to with retval=True, each returning EXT_CONTINUE as SQLAlchemy asks:
# SQLAlchemy then calls them directly, with no wrapper of its own around each call.


def _before_insert(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> Any:
    """Only where pre_save listens: a row added during the flush (by another
    before_flush listener, say) is announced here."""
    flush = _recorder(state)
    if flush is not None:
        if flush.failure is not None:
            flush.raise_failure()
        if state not in flush.announced_saves and flush.heard[state.class_].pre_save:
            _send_pre_save(flush, state, update_fields=None)
    return EXT_CONTINUE


def _before_update(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> Any:
    reference = _recording.get(state.session_id)  # type: ignore[arg-type]
    flush = None if reference is None else reference()
    if flush is None:
        return EXT_CONTINUE
    if flush.failure is not None:
        flush.raise_failure()
    heard = flush.heard[state.class_]
    if heard.pre_save and state not in flush.announced_saves:
        columns = columns_to_write(state)
        if columns:  # written only because of the flush itself (a foreign key copied in)
            _send_pre_save(flush, state, frozenset(columns))
    if heard.post_save:
        fetched = flush.old_values.for_changes.get(state, _NOTHING_FETCHED)
        planned, unknown = planned_update(state, heard.update_columns, fetched)
        if unknown:
            fetched = _fetch_old_values(flush, state, unknown, connection)
            for key in unknown:
                planned[key] = fetched.get(key)
        if planned:
            flush.planned[state] = planned
    return EXT_CONTINUE


def _fetch_old_values(
    flush: _Flush, state: InstanceState[Any], keys: Sequence[str], connection: Connection
) -> dict[str, Any]:
    """Old values SQLAlchemy does not hold (see ``sa_signals.orm.updates``), for
    changes only. The first time a class needs them in a flush, they are
    fetched for every changed object of its hierarchy, one query per class: no
    row of it has been updated yet (SQLAlchemy runs every ``before_update`` of a
    batch before its UPDATEs), so the values are still those from before the
    flush. A value the flush itself made unknown later is fetched alone."""
    base = state.mapper.base_mapper
    if base not in flush.resolved:
        flush.resolved.add(base)
        changed = [
            other
            for other in map(instance_state, flush.session.dirty)
            if other.mapper.base_mapper is base and flush.heard[other.class_].post_save
        ]
        flush.old_values.resolve(lambda _mapper: connection, changed)
    fetched = flush.old_values.for_changes.setdefault(state, {})
    missing = [key for key in keys if key not in fetched]
    if missing:
        fetched.update(fetch_columns(lambda _mapper: connection, {state: missing}).get(state, {}))
    return fetched


def _before_delete(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> Any:
    flush = _recorder(state)
    if flush is None:
        return EXT_CONTINUE
    if flush.failure is not None:
        flush.raise_failure()
    if state not in flush.announced_deletes:
        # Found by the flush itself (a cascade from a delete-orphan's own children).
        heard = flush.heard[state.class_]
        origin = state.obj()  # its own
        if heard.pre_delete or heard.post_delete:
            flush.announced_deletes[state] = origin
        if heard.pre_delete:
            _send_pre_delete(flush, state, origin)
        if heard.post_delete:
            flush.deleted_values.update(fetch_unloaded_columns(lambda _mapper: connection, [state]))
    return EXT_CONTINUE


def _after_insert(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> Any:
    flush = _recorder(state)
    if flush is not None and flush.heard[state.class_].post_save:
        flush.written.append((post_save, state.obj(), True, {}))
    return EXT_CONTINUE


def _after_update(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> Any:
    reference = _recording.get(state.session_id)  # type: ignore[arg-type]
    flush = None if reference is None else reference()
    if flush is None:
        return EXT_CONTINUE
    if state.key is None:
        _record_row_switch(flush, state)
        return EXT_CONTINUE
    planned = flush.planned.pop(state, None)
    if planned:
        instance = state.obj()
        values = instance_dict(instance)
        changes = {}
        computed = False
        for key, old in planned.items():  # a loop: a comprehension is a call per object
            new = values.get(key, _COMPUTED)
            changes[key] = (old, new)
            computed = computed or new is _COMPUTED
        if computed:
            flush.computed[state] = changes
        flush.written.append((post_save, instance, False, changes))
    return EXT_CONTINUE


_NOTHING_FETCHED: Mapping[str, Any] = MappingProxyType({})

# The new value of a column the database computed (a SQL expression assigned, a
# SQL ``onupdate``), which SQLAlchemy expired after the UPDATE: fetched after the flush.
_COMPUTED: Any = object()


def _record_row_switch(flush: _Flush, state: InstanceState[Any]) -> None:
    """The program deleted a row and added an object with the same primary key;
    SQLAlchemy wrote a single UPDATE (after ``before_insert``, before the object
    has its identity). Report what the program asked for, as Django would: the
    delete, then the insert."""
    instance = state.obj()
    key = state.mapper.identity_key_from_instance(instance)
    replaced = flush.session.identity_map.get(key)
    if replaced is not None:
        replaced_state = instance_state(replaced)
        if replaced_state in flush.announced_deletes and flush.heard[type(replaced)].post_delete:
            origin = flush.announced_deletes[replaced_state]
            flush.written.append((post_delete, replaced, origin, None))
    if flush.heard[state.class_].post_save:
        flush.written.append((post_save, instance, True, {}))


def _after_delete(mapper: Mapper[Any], connection: Connection, state: InstanceState[Any]) -> Any:
    flush = _recorder(state)
    if flush is not None and flush.heard[state.class_].post_delete:
        instance = state.obj()
        flush.written.append(
            (post_delete, instance, flush.announced_deletes.get(state, instance), None)
        )
    return EXT_CONTINUE


# Listened to on a mapper only once a receiver can hear it there: before_insert
# for pre_save alone, the others for any of the four signals.
MapperHooks({"before_insert": _before_insert}, signals=[pre_save], raw=True, retval=True)
MapperHooks(
    {
        "before_update": _before_update,
        "before_delete": _before_delete,
        "after_insert": _after_insert,
        "after_update": _after_update,
        "after_delete": _after_delete,
    },
    signals=(*_SAVE_SIGNALS, *_DELETE_SIGNALS),
    raw=True,
    retval=True,
)


# -- after the flush: post_save and post_delete ----------------------------------------------


def _current(session: Session, flush_context: UOWTransaction) -> _Flush | None:
    flush: _Flush | None = session.info.get(_RECORDING)
    return flush if flush is not None and flush.flush_context is flush_context else None


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
    post_updates = post_updated(flush.flush_context)
    if not post_updates:
        return
    saved = {
        instance_state(instance): (created, changes)
        for signal, instance, created, changes in flush.written
        if signal is post_save
    }
    for state, columns in post_updates:
        created, changes = saved.get(state, (False, None))
        if created or state in flush.announced_deletes or state.deleted or state.was_deleted:
            continue  # an INSERT's own post-update, or a row about to go
        if not flush.heard[state.class_].post_save:
            continue
        written_later = post_updated_changes(state, columns)
        if not written_later:
            continue
        if changes is None:
            changes = {}
            flush.written.append((post_save, state.obj(), False, changes))
        changes.update(written_later)


@event.listens_for(Session, "after_flush_postexec")
def _after_flush_postexec(session: Session, flush_context: UOWTransaction) -> None:
    flush = _current(session, flush_context)
    if flush is None:
        return
    _stop_recording(session)
    if flush.computed:
        _load_computed_values(flush)
    raw, using = flush.raw, flush.using
    # post_save receivers may flush, as Django's create() writes at once: a
    # receiver's flush nests cleanly, with its own subtransaction and signals.
    # (Committing from a receiver would end the transaction this flush still
    # belongs to: don't.)
    with flushes_allowed(session), values_lent(flush.deleted_values):
        # One send per row written, written out here: a helper would be a call per object.
        for signal, instance, detail, changes in flush.written:
            sender = type(instance)
            bind = using[instance_state(instance).mapper]
            routes = signal._plain_routes_for(sender)
            if signal is post_save:
                update_fields = None if detail else frozenset(changes)
                if routes is None:
                    post_save.send(
                        sender,
                        instance=instance,
                        created=detail,
                        raw=raw,
                        using=bind,
                        update_fields=update_fields,
                        changes=changes,
                        session=session,
                    )
                    continue
                for target, weak, _ in routes:
                    receiver = target() if weak else target
                    if receiver is not None:
                        receiver(
                            instance=instance,
                            created=detail,
                            raw=raw,
                            using=bind,
                            update_fields=update_fields,
                            changes=changes,
                            session=session,
                            signal=post_save,
                            sender=sender,
                        )
            elif routes is None:
                post_delete.send(
                    sender, instance=instance, using=bind, origin=detail, session=session
                )
            else:
                for target, weak, _ in routes:
                    receiver = target() if weak else target
                    if receiver is not None:
                        receiver(
                            instance=instance,
                            using=bind,
                            origin=detail,
                            session=session,
                            signal=post_delete,
                            sender=sender,
                        )
        flush.collections.send_post()  # association rows are written last


def _load_computed_values(flush: _Flush) -> None:
    """The new values of ``_COMPUTED`` columns, for ``changes``: one query per
    class, before any receiver runs and could change the rows. The instances
    are left expired, as SQLAlchemy leaves them."""
    wanted = {
        state: [key for key, (_, new) in changes.items() if new is _COMPUTED]
        for state, changes in flush.computed.items()
    }
    fetched = fetch_columns(session_connection(flush.session), wanted)
    for state, keys in wanted.items():
        changes, values = flush.computed[state], fetched.get(state, {})
        for key in keys:
            changes[key] = (changes[key][0], values.get(key))
