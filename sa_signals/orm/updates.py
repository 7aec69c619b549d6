"""Which columns an UPDATE writes, and what they held before.

SQLAlchemy works this out inside the flush and keeps none of it: it compares each
attribute with its committed value, copies foreign keys from related objects,
adds ``onupdate`` defaults and the version counter. ``update_fields`` and
``changes`` must say the same thing, so this module predicts it before the flush
(for ``pre_save``) and records it right before the UPDATE (for ``post_save``).

Old values SQLAlchemy does not hold are fetched for ``changes``, one query per
class, and only read: never written back into the instance, which would change
what SQLAlchemy compares and writes.

* a column assigned while expired (the normal case after ``commit()``) has no
  old value in its history, and SQLAlchemy writes it even when unchanged (it
  cannot compare): the write is announced, with the fetched old value;
* a column whose old value is unknown for another reason (``flag_modified()``,
  or a deferred column assigned without being loaded);
* the foreign key behind a many-to-one that was reassigned, when it is not loaded;
* a generated column (``onupdate``, version) not loaded.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Column, inspect
from sqlalchemy.orm import NO_VALUE, InstanceState, Mapper, RelationshipProperty
from sqlalchemy.orm.attributes import History, instance_dict
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE
from sqlalchemy.orm.exc import UnmappedColumnError
from sqlalchemy.orm.interfaces import MANYTOONE
from sqlalchemy.types import TypeEngine

from sa_signals.columns import (
    ConnectionFor,
    column_key_set,
    column_keys,
    fetch_columns,
    per_mapper,
)

__all__: list[str] = []


def _history(state: InstanceState[Any], key: str) -> History:
    """``state.attrs[key].history``, without building an ``AttributeState`` for
    every attribute of the object first: the flush asks for each object it writes."""
    return state.get_history(key, PASSIVE_NO_INITIALIZE)


def columns_to_write(state: InstanceState[Any]) -> set[str]:
    """The column attributes an UPDATE of ``state`` would write as things stand:
    those with a net change (as ``planned_update`` decides them), the foreign
    keys of many-to-one relationships that now point elsewhere, and the
    generated columns that come with them."""
    planned, _ = planned_update(state, update_columns(state.mapper), {})
    changed = set(planned)
    for relationship in _many_to_ones(state.mapper):
        changed |= _foreign_keys_to_change(state, relationship)
    if not changed:
        return changed  # no UPDATE at all, so no generated column either
    return changed | generated_on_update(state.mapper, changed)


def generated_on_update(mapper: Mapper[Any], changed: set[str]) -> set[str]:
    """Columns an UPDATE writes although nobody assigned them: Python or SQL
    ``onupdate`` defaults of the tables being updated, and the version counter
    SQLAlchemy maintains (whose table is then always updated too)."""
    version_keys, version_table = _version_counter(mapper)
    on_update = _on_update_columns(mapper)
    if not version_keys and not on_update:
        return set()
    tables = {mapper.column_attrs[key].columns[0].table for key in changed}
    generated = set(version_keys)
    if version_table is not None:
        tables.add(version_table)
    generated |= {key for key, table in on_update if table in tables}
    return generated - changed


@per_mapper
def _version_counter(mapper: Mapper[Any]) -> tuple[frozenset[str], Any]:
    """The version counter SQLAlchemy maintains: its attribute and its table."""
    if mapper.version_id_col is None or mapper.version_id_generator is False:
        return frozenset(), None
    return frozenset(_keys_of_columns(mapper, [mapper.version_id_col])), mapper.version_id_col.table


@per_mapper
def _on_update_columns(mapper: Mapper[Any]) -> tuple[tuple[str, Any], ...]:
    """(attribute, table) of each column with an ``onupdate`` default."""
    return tuple(
        (prop.key, column.table)
        for prop in mapper.column_attrs
        if isinstance(column := prop.columns[0], Column) and column.onupdate is not None
    )


def planned_update(
    state: InstanceState[Any], columns: UpdateColumns, fetched: Mapping[str, Any]
) -> tuple[dict[str, Any], Sequence[str]]:
    """Right before the UPDATE, the columns it writes, each with its old value,
    decided as SQLAlchemy decides them (``persistence._collect_update_commands``):
    the columns with a committed value (recorded at their first change) that
    the column type's ``compare_values()`` does not find equal to the current
    one, then the generated columns that come with them. Empty when nothing
    changed, and SQLAlchemy writes nothing.

    Old values SQLAlchemy does not hold are taken from ``fetched``; those it has
    not either are left ``NO_VALUE``, and their keys returned second."""
    committed = state.committed_state
    if not committed:
        return {}, ()
    values = instance_dict(state.obj())
    planned = {}
    unknown_old = False
    for key, old in committed.items():
        is_equal = columns.comparators.get(key)
        if is_equal is None:  # a relationship, or a column of no table written
            continue
        if key in values and is_equal(values[key], old) is True:
            continue
        planned[key] = old
        unknown_old = unknown_old or old is NO_VALUE  # assigned while expired or unloaded
    if not planned:
        return planned, ()
    if len(planned) > 1:  # in the mapper's column order, as every report is
        planned = {key: planned[key] for key in columns.order if key in planned}
    if columns.generated:
        for key in generated_on_update(state.mapper, set(planned)):
            planned[key] = values.get(key, NO_VALUE)
            unknown_old = unknown_old or key not in values
    if not unknown_old:  # the usual case: loaded, then changed
        return planned, ()
    unknown = []
    for key, old in planned.items():
        if old is NO_VALUE:  # assigned while expired or unloaded, or generated and unloaded
            if key in fetched:
                planned[key] = fetched[key]
            else:
                unknown.append(key)
    return planned, unknown


class UpdateColumns(NamedTuple):
    """What ``planned_update`` needs of a mapper (see ``update_columns``)."""

    order: tuple[str, ...]  # the column attributes of the tables written, in order
    comparators: dict[str, Callable[[Any, Any], Any]]  # the equality each one's attribute uses
    generated: bool  # whether an UPDATE may write columns nobody assigned


@per_mapper
def update_columns(mapper: Mapper[Any]) -> UpdateColumns:
    """What ``planned_update`` needs of a mapper. The comparison is the one
    SQLAlchemy gives the attribute: its first column type's ``compare_values``."""
    order = column_keys(mapper)
    version_keys, _ = _version_counter(mapper)
    return UpdateColumns(
        order,
        {key: _equality(mapper.column_attrs[key].columns[0].type) for key in order},
        bool(version_keys or _on_update_columns(mapper)),
    )


def _equality(column_type: TypeEngine[Any]) -> Callable[[Any, Any], Any]:
    """The type's ``compare_values``; where it is TypeEngine's own ``x == y``,
    ``operator.eq``, which says the same without a Python call per object."""
    if type(column_type).compare_values is TypeEngine.compare_values:
        return operator.eq
    return column_type.compare_values


# -- many-to-one relationships and their foreign keys -------------------------------------


@per_mapper
def _many_to_ones(mapper: Mapper[Any]) -> tuple[RelationshipProperty[Any], ...]:
    return tuple(r for r in mapper.relationships if r.direction is MANYTOONE and not r.viewonly)


def _keys_of_columns(mapper: Mapper[Any], columns: Iterable[Any]) -> set[str]:
    keys = set()
    for column in columns:
        with suppress(UnmappedColumnError):  # a column the mapper leaves out
            keys.add(mapper.get_property_by_column(column).key)
    return keys


def _foreign_keys_to_change(
    state: InstanceState[Any], relationship: RelationshipProperty[Any]
) -> set[str]:
    """The foreign key attributes a reassigned many-to-one will change: none when
    it points to the row it pointed to already."""
    history = _history(state, relationship.key)
    if not history.has_changes():
        return set()
    mapper = state.mapper
    target = history.added[0] if history.added else None
    expected = _key_values_of(relationship, target)
    keys = set()
    for local, _ in relationship.local_remote_pairs:
        for key in _keys_of_columns(mapper, [local]):
            if expected is None or key not in state.dict or state.dict[key] != expected[local]:
                keys.add(key)
    return keys


def _key_values_of(relationship: RelationshipProperty[Any], target: Any) -> dict[Any, Any] | None:
    """The values the foreign key columns take for ``target``, or ``None`` when
    not known before the flush (a target not inserted yet)."""
    if target is None:
        return {local: None for local, _ in relationship.local_remote_pairs}
    target_state = inspect(target)
    identity = target_state.identity
    if identity is None:
        return None
    primary_key = list(target_state.mapper.primary_key)
    values = {}
    for local, remote in relationship.local_remote_pairs:
        if remote not in primary_key:
            return None
        values[local] = identity[primary_key.index(remote)]
    return values


def _unloaded_foreign_keys(state: InstanceState[Any]) -> set[str]:
    keys = set()
    for relationship in _many_to_ones(state.mapper):
        if _history(state, relationship.key).has_changes():
            locals_ = [local for local, _ in relationship.local_remote_pairs]
            keys |= _keys_of_columns(state.mapper, locals_)
    return {key for key in keys if key not in state.dict}


def post_updated_changes(
    state: InstanceState[Any], columns: Iterable[Any]
) -> dict[str, tuple[Any, Any]]:
    """The attributes of ``columns`` that SQLAlchemy's separate post-update
    statement changed for ``state``, each as ``(old, new)``; asked after the
    statements ran, while the history is still there."""
    changes = {}
    for key in _keys_of_columns(state.mapper, columns):
        history = _history(state, key)
        if history.has_changes():
            changes[key] = (history.deleted[0] if history.deleted else None, state.dict.get(key))
    return changes


# -- fetching what is not known -------------------------------------------------------------


def _nothing_unknown(state: InstanceState[Any]) -> bool:
    """Every column loaded, and every changed one with its old value: the usual
    case (objects loaded, then changed), where there is nothing to fetch."""
    if state.expired_attributes:
        return False
    columns = column_key_set(state.mapper)
    if not state.dict.keys() >= columns:
        return False
    for key, value in state.committed_state.items():  # usually one or two
        if value is NO_VALUE and key in columns:
            return False
    return True


@dataclass
class OldValues:
    """Old values fetched during one flush, for ``changes`` only."""

    for_changes: dict[InstanceState[Any], dict[str, Any]] = field(default_factory=dict)

    def resolve(
        self,
        connection_for: ConnectionFor,
        states: Iterable[InstanceState[Any]],
    ) -> None:
        """Fetch what SQLAlchemy does not know of the rows about to be updated (see
        the module docstring), for post_save to report: read, never written back,
        since SQLAlchemy alone decides what the UPDATE writes. Each value once per
        flush, however many times asked."""
        wanted = {}
        for state in states:
            if state.key is None or _nothing_unknown(state):
                continue
            unknown = {k for k, v in state.committed_state.items() if v is NO_VALUE}
            unloaded = {key for key in columns_to_write(state) if key not in state.dict}
            keys = (unknown & column_key_set(state.mapper)) | unloaded
            keys |= _unloaded_foreign_keys(state)
            wanted[state] = keys - self.for_changes.get(state, {}).keys()
        for state, values in fetch_columns(connection_for, wanted).items():
            self.for_changes.setdefault(state, {}).update(values)
