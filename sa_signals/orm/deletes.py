"""Which objects a flush will delete, and which deletion each one comes from.

Django's delete signals carry ``origin``, the object whose ``delete()`` started
it all. SQLAlchemy has no event for ``session.delete()``, so the origin is
reconstructed from the delete cascade: of the objects marked for deletion, one
that no other reaches through a delete cascade started its own deletion, and it is
the origin of everything its cascade reaches.

Delete-orphans are never in ``session.deleted``: the unit of work discovers them
only after ``before_flush``. To announce them like any other deletion (and not as
an UPDATE, since their foreign key was just emptied), they are found the way the
unit of work finds them and marked with ``session.delete()``, which is what the
flush would do to them anyway; that also marks their own cascade.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import InstanceState, Mapper, Session
from sqlalchemy.orm.attributes import instance_state

from sa_signals.columns import per_mapper
from sa_signals.internals import can_be_orphaned, delete_orphan_configured, orphaned

__all__: list[str] = []


def is_orphan(state: InstanceState[Any]) -> bool:
    """Whether a delete-orphan relationship no longer holds the object. This is
    the unit of work's own test, which ``Session._flush`` applies to every dirty
    object."""
    return _involved_in_orphans(state.mapper) and orphaned(state)


@per_mapper
def _involved_in_orphans(mapper: Mapper[Any]) -> bool:
    """Whether the mapper's instances can be orphans or have orphans; most
    classes can't, and their dirty instances need no look."""
    can_be_orphan = can_be_orphaned(mapper)
    can_orphan = any(r.cascade.delete_orphan for r in mapper.relationships)
    return can_be_orphan or can_orphan


def delete_orphans(session: Session) -> None:
    """Mark with ``session.delete()`` the persistent objects that the coming flush
    would delete as orphans."""
    if not delete_orphan_configured():
        return  # no dirty object can be an orphan
    marked = set(map(instance_state, session.deleted))
    orphans: dict[InstanceState[Any], None] = {}
    involved: dict[Mapper[Any], bool] = {}  # asked per object: per mapper, once
    for state in map(instance_state, session.dirty):
        mapper = state.mapper
        if mapper not in involved:
            involved[mapper] = _involved_in_orphans(mapper)
        if not involved[mapper]:
            continue
        if state.has_identity and is_orphan(state):
            orphans[state] = None  # its own link was cut (child.parent = None)
        for relationship in state.mapper.relationships:
            if not relationship.cascade.delete_orphan:
                continue
            # A child removed from a collection on this side only (no backref) is
            # not dirty itself; the parent's collection history names it. One
            # that left the session meanwhile is none of this flush's business
            # (SQLAlchemy warns and keeps it).
            for child in state.attrs[relationship.key].history.deleted:
                child_state = instance_state(child)
                if (
                    child_state.has_identity
                    and child_state.session is session
                    and child_state not in marked
                    and is_orphan(child_state)
                ):
                    orphans[child_state] = None
    for orphan in orphans:
        session.delete(orphan.obj())


def cascade_origins(marked: Iterable[InstanceState[Any]]) -> dict[InstanceState[Any], Any]:
    """Map each of the objects ``marked`` for deletion that another one's delete
    cascade reaches to the object its deletion started from; any other is its
    own origin."""
    reached_by: dict[InstanceState[Any], InstanceState[Any]] = {}
    cascading: dict[Mapper[Any], bool] = {}  # asked per object: per mapper, once
    for head in marked:
        mapper = head.mapper
        if mapper not in cascading:
            cascading[mapper] = _cascades_deletes(mapper)
        if not cascading[mapper]:
            continue
        for _, _, state, _ in head.mapper.cascade_iterator("delete", head):
            reached_by.setdefault(state, head)

    def origin(state: InstanceState[Any]) -> InstanceState[Any]:
        seen = {state}
        while state in reached_by and reached_by[state] not in seen:  # cycles end too
            state = reached_by[state]
            seen.add(state)
        return state

    return {state: origin(state).obj() for state in reached_by}


@per_mapper
def _cascades_deletes(mapper: Mapper[Any]) -> bool:
    """Whether deleting one of the mapper's objects can delete others."""
    return any(relationship.cascade.delete for relationship in mapper.relationships)
