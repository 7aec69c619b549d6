"""Column values SQLAlchemy does not hold, fetched in one query per class.

Two situations need them:

* The real old value. Assigning to an expired attribute (the normal case right
  after ``commit()``) records no old value: the history's ``deleted`` is empty,
  and SQLAlchemy emits an UPDATE even when the value did not change. Fetching the
  committed value and recording it as such makes history, ``is_modified()``, the
  UPDATE's column list, ``update_fields`` and ``changes`` all agree, and a
  same-value assignment then emits no UPDATE at all, as one would expect.
* A deleted instance whose columns were expired: once its row is gone they can
  never be loaded again, yet ``post_delete`` receivers read them.

The SELECT runs inside the flush (mostly in ``before_flush``): the session is
already flushing, so it autoflushes nothing, and it sees the transaction's
earlier flushes, which is exactly "the value before this flush".
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, select, tuple_
from sqlalchemy.orm import NO_VALUE, InstanceState, Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value

__all__ = [
    "column_keys",
    "fetch_columns",
    "load_unloaded_columns",
    "session_connection",
    "unknown_old_values",
]

_CHUNK = 500  # identities per SELECT, well under every backend's parameter limit


_column_keys: weakref.WeakKeyDictionary[Mapper[Any], tuple[str, ...]] = weakref.WeakKeyDictionary()


def column_keys(mapper: Mapper[Any]) -> tuple[str, ...]:
    """Attribute names of the mapper's table columns (not SQL expressions)."""
    keys = _column_keys.get(mapper)
    if keys is None:
        keys = _column_keys[mapper] = tuple(
            prop.key for prop in mapper.column_attrs if isinstance(prop.columns[0], Column)
        )
    return keys


def _identity(state: InstanceState[Any]) -> tuple[Any, ...]:
    """The primary key the row has in the database (even if being changed)."""
    assert state.key is not None, "only persistent instances have rows to fetch"
    return tuple(state.key[1])


def unknown_old_values(state: InstanceState[Any]) -> list[str]:
    """Column attributes assigned while expired or never loaded: their committed
    value is unknown to SQLAlchemy."""
    committed = state.committed_state
    return [key for key in column_keys(state.mapper) if committed.get(key, None) is NO_VALUE]


ConnectionFor = Callable[[Mapper[Any]], Connection]


def session_connection(session: Session) -> ConnectionFor:
    """The session's connection for a mapper, as the flush will use it."""
    return lambda mapper: session.connection(bind_arguments={"mapper": mapper})


def fetch_columns(
    connection_for: ConnectionFor, wanted: Mapping[InstanceState[Any], Iterable[str]]
) -> dict[InstanceState[Any], dict[str, Any]]:
    """The database's current values of the wanted columns of persistent
    instances, one SELECT per class (and per few hundred rows)."""
    by_mapper: dict[Mapper[Any], dict[InstanceState[Any], set[str]]] = defaultdict(dict)
    for state, keys in wanted.items():
        keys = set(keys)
        if keys and state.key is not None:
            by_mapper[state.mapper][state] = keys

    values: dict[InstanceState[Any], dict[str, Any]] = {}
    for mapper, keys_by_state in by_mapper.items():
        states = list(keys_by_state)
        keys = sorted(set().union(*keys_by_state.values()))
        for start in range(0, len(states), _CHUNK):
            chunk = states[start : start + _CHUNK]
            values.update(_fetch_chunk(connection_for(mapper), mapper, chunk, keys))
    return values


def _fetch_chunk(
    connection: Connection,
    mapper: Mapper[Any],
    states: Sequence[InstanceState[Any]],
    keys: list[str],
) -> dict[InstanceState[Any], dict[str, Any]]:
    primary_key = list(mapper.primary_key)
    columns = [mapper.column_attrs[key].columns[0] for key in keys]
    identities = [_identity(state) for state in states]
    if len(primary_key) == 1:
        where = primary_key[0].in_([identity[0] for identity in identities])
    else:
        where = tuple_(*primary_key).in_(identities)
    statement = select(*primary_key, *columns).select_from(mapper.persist_selectable).where(where)
    # A Core statement on the flush's connection: no ORM events, no autoflush.
    width = len(primary_key)
    rows = {tuple(row[:width]): row[width:] for row in connection.execute(statement)}

    fetched = {}
    for state in states:
        row = rows.get(_identity(state))
        if row is not None:  # a row deleted meanwhile stays unknown
            fetched[state] = dict(zip(keys, row, strict=True))
    return fetched


def load_unloaded_columns(
    connection_for: ConnectionFor, states: Iterable[InstanceState[Any]]
) -> None:
    """Load the column attributes persistent instances lack, as if loaded all along."""
    wanted = {
        state: [key for key in column_keys(state.mapper) if key not in state.dict]
        for state in states
    }
    for state, values in fetch_columns(connection_for, wanted).items():
        instance = state.obj()
        if instance is not None:
            for key, value in values.items():
                set_committed_value(instance, key, value)
