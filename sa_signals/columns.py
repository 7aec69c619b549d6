"""Column values SQLAlchemy does not hold, fetched in one query per class.

The flush needs values it was never given: old values of columns assigned while
expired (see ``sa_signals.orm.updates``), the columns of a deleted instance that
``post_delete`` receivers will read after the row is gone, values the database
generated. Each is fetched by primary key with a Core SELECT on the flush's own
connection: no ORM events, no autoflush, and it sees the transaction's earlier
flushes, which is exactly "the value before this flush".
"""

from __future__ import annotations

import functools
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, Select, select, tuple_
from sqlalchemy.orm import InstanceState, Mapper, Session

from sa_signals.internals import lend_values

__all__: list[str] = []

_CHUNK = 500  # identities per SELECT, well under every backend's parameter limit

# The execution option every SELECT of sa-signals' own carries (set to True),
# so that a program's SQL log, metrics or tests can tell them from its own.
SELECT_OPTION = "sa_signals_select"


def marked(query: SelectT) -> SelectT:
    """``query``, carrying ``SELECT_OPTION``."""
    return query.execution_options(**{SELECT_OPTION: True})


T = TypeVar("T")
SelectT = TypeVar("SelectT", bound=Select[Any])


def per_mapper(compute: Callable[[Mapper[Any]], T]) -> Callable[[Mapper[Any]], T]:
    """Cache what ``compute`` derives from a mapper alone: the flush asks it for
    every object it writes, and a mapper's columns do not change once mapped."""
    # By id(), which a lookup needs no weak reference for; the entry goes with
    # the mapper (before its id can be reused).
    cache: dict[int, T] = {}

    def cached(mapper: Mapper[Any]) -> T:
        try:
            return cache[id(mapper)]
        except KeyError:
            value = cache[id(mapper)] = compute(mapper)
            weakref.finalize(mapper, cache.pop, id(mapper), None)
            return value

    return functools.update_wrapper(cached, compute)


@per_mapper
def column_keys(mapper: Mapper[Any]) -> tuple[str, ...]:
    """Attribute names of the columns of the tables the mapper writes (not SQL
    expressions, nor columns of another selectable, such as a polymorphic one)."""
    written = mapper.persist_selectable
    return tuple(
        prop.key
        for prop in mapper.column_attrs
        if isinstance(prop.columns[0], Column)
        and written.corresponding_column(prop.columns[0]) is not None
    )


@per_mapper
def column_key_set(mapper: Mapper[Any]) -> frozenset[str]:
    """:func:`column_keys`, for membership tests."""
    return frozenset(column_keys(mapper))


def _identity(state: InstanceState[Any]) -> tuple[Any, ...]:
    """The primary key the row has in the database (even if being changed)."""
    if state.key is None:
        raise ValueError(f"{state.obj()!r} has no row yet: it was never flushed")
    return tuple(state.key[1])


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
    rows = {tuple(row[:width]): row[width:] for row in connection.execute(marked(statement))}

    fetched = {}
    for state in states:
        row = rows.get(_identity(state))
        if row is not None:  # a row deleted meanwhile stays unknown
            fetched[state] = dict(zip(keys, row, strict=True))
    return fetched


def fetch_unloaded_columns(
    connection_for: ConnectionFor, states: Iterable[InstanceState[Any]]
) -> dict[InstanceState[Any], dict[str, Any]]:
    """The values of the column attributes persistent instances lack, fetched
    beside them: the instances stay as SQLAlchemy keeps them (see ``values_lent``)."""
    wanted = {}
    columns: dict[Mapper[Any], frozenset[str]] = {}  # asked per object: per mapper, once
    for state in states:
        mapper = state.mapper
        if mapper not in columns:
            columns[mapper] = column_key_set(mapper)
        missing = columns[mapper].difference(state.dict)
        if missing:
            wanted[state] = missing
    return fetch_columns(connection_for, wanted) if wanted else {}


# Values lent to instances now, for their receivers (see values_lent). A plain
# dict: values_lent always takes its entries back.
_lent: dict[InstanceState[Any], dict[str, Any]] = {}


@contextmanager
def values_lent(values: Mapping[InstanceState[Any], Mapping[str, Any]]) -> Iterator[None]:
    """Put ``values`` into their instances, as loaded, while receivers read them;
    then take back those nothing changed meanwhile, leaving each instance as
    SQLAlchemy left it (expired, unloaded). A receiver reads them with no SQL,
    even once the row is gone (``post_delete``) or the commit has expired them
    (deferred receivers)."""
    taken_back = []
    for state, state_values in values.items():
        if state.obj() is None:
            continue
        lent, take_back = lend_values(state, state_values)
        taken_back.append((state, take_back))
        _lent[state] = lent
    try:
        yield
    finally:
        for state, take_back in taken_back:
            _lent.pop(state, None)
            take_back()


def lent_values(state: InstanceState[Any]) -> dict[str, Any]:
    """The values ``values_lent`` has put into ``state``'s instance, now."""
    if not _lent:
        return {}
    return dict(_lent.get(state, {}))
