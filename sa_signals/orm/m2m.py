"""m2m_changed, from the history of ``relationship(secondary=...)`` collections.

Django sends ``m2m_changed`` around the INSERT and DELETE of a collection's
association rows. Here the flush writes those rows after the objects on both
sides, with no event of its own, so the changes are read from the collections'
history: ``pre_*`` from ``before_flush`` (with the rest of the announcing), and
``post_*`` after the flush, when every object has its primary key.

Two things history cannot tell:

* Which side a change was made on. With a bidirectional relationship both
  collections record it, and Django reports it once, from the side it was made
  on. The collections' ``append``/``remove`` events can tell: SQLAlchemy passes the
  side that started a change on to the other side, so an event whose initiator
  is the other side's is an echo. The last operation on each pair decides, and is
  kept in the instance's ``InstanceState.info``.
* ``clear()`` from removing every element. Both send ``pre_clear``/``post_clear``.

Which side is forward (``reverse=False``), as in Django where the declaring model
is: a relationship alone, or the one declaring ``backref=``; of a
``back_populates`` pair, the one whose join to the association table uses its
earlier column.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.orm import InstanceState, Mapper, RelationshipProperty, Session
from sqlalchemy.orm.attributes import instance_state

from sa_signals.internals import existing_mappers
from sa_signals.signals import m2m_changed

__all__: list[str] = []

_ORIGINS = "sa_signals.m2m_origins"  # InstanceState.info: {key: {related state: made here?}}


@dataclass(frozen=True)
class _Side:
    """One side of a many-to-many relationship, as m2m_changed describes it."""

    relationship: RelationshipProperty[Any]
    table: Table
    model: type
    reverse: bool


_sides: weakref.WeakKeyDictionary[RelationshipProperty[Any], _Side] = weakref.WeakKeyDictionary()


def _side(relationship: RelationshipProperty[Any]) -> _Side:
    side = _sides.get(relationship)
    if side is None:
        assert isinstance(relationship.secondary, Table)
        side = _sides[relationship] = _Side(
            relationship,
            relationship.secondary,
            relationship.mapper.class_,
            reverse=not _is_forward(relationship),
        )
    return side


def _is_forward(relationship: RelationshipProperty[Any]) -> bool:
    if relationship.backref:
        return True
    reverse = _reverse_of(relationship)
    if reverse is None:
        return True
    if reverse.backref:
        return False
    return _join_position(relationship) <= _join_position(reverse)


def _reverse_of(relationship: RelationshipProperty[Any]) -> RelationshipProperty[Any] | None:
    if not relationship.back_populates:
        return None
    reverse: RelationshipProperty[Any] | None = relationship.mapper.relationships.get(
        relationship.back_populates
    )
    return reverse


def _join_position(relationship: RelationshipProperty[Any]) -> int:
    """Where, among the association table's columns, this side joins it."""
    assert relationship.secondary is not None
    columns: list[Any] = list(relationship.secondary.columns)
    return min(columns.index(secondary) for _, secondary in relationship.synchronize_pairs)


def _many_to_manys(mapper: Mapper[Any]) -> list[RelationshipProperty[Any]]:
    return [r for r in mapper.relationships if isinstance(r.secondary, Table) and not r.viewonly]


# -- which side a change was made on ------------------------------------------------------


class _OriginTracking:
    """Installs the collection listeners that tell a change from its echo, on the
    relationships of association tables that m2m_changed receivers listen to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: set[Table] = set()
        self._everywhere = False
        self._tracked: weakref.WeakSet[RelationshipProperty[Any]] = weakref.WeakSet()
        self._hooked = False
        m2m_changed.receiver_connected.connect(self._receiver_connected, weak=False)

    def _receiver_connected(self, _signal: Any, *, sender: Any, **_: Any) -> None:
        with self._lock:
            if sender is None:
                self._everywhere = True
            else:
                self._tables.add(sender)
            if not self._hooked:  # relationships are usable once their mapper is configured
                event.listen(Mapper, "mapper_configured", self._mapper_configured)
                self._hooked = True
        for mapper in existing_mappers():
            if mapper.configured:
                self._track(mapper)

    def _mapper_configured(self, mapper: Mapper[Any], cls: type) -> None:
        self._track(mapper)

    def _track(self, mapper: Mapper[Any]) -> None:
        with self._lock:
            for relationship in _many_to_manys(mapper):
                wanted = self._everywhere or relationship.secondary in self._tables
                if wanted and relationship not in self._tracked:
                    self._tracked.add(relationship)
                    _listen_for_origins(relationship)


def _listen_for_origins(relationship: RelationshipProperty[Any]) -> None:
    attribute = getattr(relationship.parent.class_, relationship.key)
    own_impl = attribute.impl
    key = relationship.key

    def note(target: InstanceState[Any], value: Any, initiator: Any) -> None:
        if value is None:  # SQLAlchemy keeps a None in a collection, and writes no row
            return
        made_here = initiator is None or initiator.impl is own_impl
        origins = target.info.setdefault(_ORIGINS, {}).setdefault(key, {})
        origins[instance_state(value)] = made_here

    event.listen(attribute, "append", note, raw=True)
    event.listen(attribute, "remove", note, raw=True)


_OriginTracking()


# -- the changes of one flush ------------------------------------------------------------------


# Whether an action puts elements into the collection or takes them out.
_DIRECTION = {"add": "in", "remove": "out", "clear": "out"}


@dataclass(eq=False)
class _Change:
    instance: Any
    side: _Side
    action: str  # "add", "remove" or "clear"
    related: list[Any]


@dataclass(eq=False)
class CollectionChanges:
    """The many-to-many changes one flush writes, announced once each."""

    session: Session
    using: Callable[[Mapper[Any]], Any]
    changes: list[_Change] = field(default_factory=list)
    # (instance, collection) -> the (direction, related object) pairs announced so far
    _announced: dict[tuple[InstanceState[Any], str], set[tuple[str, InstanceState[Any]]]] = field(
        default_factory=dict
    )
    _examined: set[InstanceState[Any]] = field(default_factory=set)

    def announce(self, only: set[InstanceState[Any]] | None) -> bool:
        """Send ``pre_*`` for the collections changed since the last call; say
        whether there were any."""
        if not m2m_changed.receivers:
            return False
        found = False
        # New instances too: an object created with its collection filled has
        # association rows to insert, like an existing one given new elements.
        for state in map(instance_state, (*self.session.new, *self.session.dirty)):
            if only is not None and state not in only:
                continue
            for relationship in _many_to_manys(state.mapper):
                if not m2m_changed.is_listened_for(relationship.secondary):
                    continue
                self._examined.add(state)
                announced = self._announced.setdefault((state, relationship.key), set())
                for change in _changes_of(state, _side(relationship)):
                    # A pre_* receiver may change the collection again: what it
                    # adds or removes is announced in the next round, once.
                    direction = _DIRECTION[change.action]
                    fresh = [
                        item
                        for item in change.related
                        if (direction, instance_state(item)) not in announced
                    ]
                    if len(fresh) < len(change.related) and change.action == "clear":
                        # Emptied by a receiver removing what was left after the
                        # removals announced already: a removal, as its remove() is.
                        change.action = "remove"
                    change.related = fresh
                    if change.related:
                        found = True
                        announced.update((direction, instance_state(item)) for item in fresh)
                        self.changes.append(change)
                        self._send(change, "pre")
        return found

    def send_post(self) -> None:
        for state in self._examined:  # the flush reset their history
            state.info.pop(_ORIGINS, None)
        for change in self.changes:
            self._send(change, "post")

    def _send(self, change: _Change, moment: str) -> None:
        pk_set = None
        if change.action != "clear":
            pk_set = set(_keys(change.related))
        m2m_changed.send(
            change.side.table,
            instance=change.instance,
            action=f"{moment}_{change.action}",
            reverse=change.side.reverse,
            model=change.side.model,
            pk_set=pk_set,
            using=self.using(instance_state(change.instance).mapper),
            objects=list(change.related),
            session=self.session,
        )


def _changes_of(state: InstanceState[Any], side: _Side) -> list[_Change]:
    """What was done to this side's collection, leaving out the echoes of changes
    made on the other side: removals (or a clear) first, then additions, the
    order of Django's ``set()``."""
    key = side.relationship.key
    history = state.attrs[key].history
    if not history.has_changes():
        return []
    origins = state.info.get(_ORIGINS, {}).get(key, {})

    def made_here(objects: Iterable[Any]) -> list[Any]:
        # Leaving out what SQLAlchemy writes no association row for: a None, and
        # an object outside the session that no cascade brings in (it warns).
        return [
            o
            for o in objects
            if o is not None
            and not instance_state(o).transient
            and origins.get(instance_state(o), True)
        ]

    added, removed = made_here(history.added), made_here(history.deleted)
    instance = state.obj()
    changes = []
    if removed:
        emptied = key in state.dict and not history.unchanged and not history.added
        changes.append(_Change(instance, side, "clear" if emptied else "remove", removed))
    if added:
        changes.append(_Change(instance, side, "add", added))
    return changes


def _keys(objects: Iterable[Any]) -> Iterable[Any]:
    """Primary keys as Django's ``pk``: the value, or a tuple when composite. An
    object first written by this flush has none before it (``pre_add``)."""
    for instance in objects:
        identity = instance_state(instance).identity
        if identity is not None:
            yield identity[0] if len(identity) == 1 else tuple(identity)
