"""The private SQLAlchemy API that sa-signals needs, in one place, each use
saying why no public API serves. Everything else in sa-signals uses SQLAlchemy's
public API only."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Delete, Update
from sqlalchemy.orm import NO_VALUE, FromStatement, InstanceState, Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.mapper import _all_registries
from sqlalchemy.util.concurrency import in_greenlet as _in_greenlet

try:
    from sqlalchemy.util.concurrency import await_ as _await
except ImportError:  # SQLAlchemy 2.0 calls it await_only
    from sqlalchemy.util.concurrency import await_only as _await

T = TypeVar("T")

__all__: list[str] = []


def in_greenlet() -> bool:
    """Whether this sync code runs inside SQLAlchemy's greenlet bridge (an
    ``AsyncSession`` operation), where a coroutine can be awaited on the
    session's own loop. ``sqlalchemy.util.concurrency`` is how SQLAlchemy's
    asyncio extension does it; it is not documented as public."""
    return bool(_in_greenlet())


def await_in_greenlet(coroutine: Coroutine[Any, Any, T]) -> T:
    """Await ``coroutine`` from sync code inside the greenlet bridge, as
    SQLAlchemy's own async drivers do (``await_``; ``await_only`` in 2.0)."""
    return _await(coroutine)


def existing_mappers() -> list[Mapper[Any]]:
    """Every mapper made so far, in every registry. SQLAlchemy keeps no public
    list of registries; ``configure_mappers()`` walks this one."""
    return [mapper for registry in _all_registries() for mapper in registry.mappers]


def orphaned(state: InstanceState[Any]) -> bool:
    """Whether a delete-orphan relationship no longer holds the object:
    ``Mapper._is_orphan()``, the unit of work's own test, which
    ``Session._flush`` applies to every dirty object; nothing public asks it."""
    return bool(state.mapper._is_orphan(state))


def can_be_orphaned(mapper: Mapper[Any]) -> bool:
    """Whether a delete-orphan relationship of another mapper targets this one
    or an ancestor: the ``_delete_orphans`` lists that configuring such a
    relationship fills, and that ``_is_orphan()`` reads."""
    return any(ancestor._delete_orphans for ancestor in mapper.iterate_to_root())


@contextmanager
def flushes_allowed(session: Session) -> Iterator[None]:
    """Let the session flush again while its flush is finishing. Once
    ``after_flush_postexec`` runs the flush is complete except for ending its
    own subtransaction, and only the ``Session._flushing`` flag still refuses a
    new flush (and autoflush); SQLAlchemy has no public way to lift it."""
    flushing = session._flushing
    session._flushing = False
    try:
        yield
    finally:
        session._flushing = flushing


def delete_orphan_configured() -> bool:
    """Whether any relationship configured so far cascades ``delete-orphan``:
    configuring one lists it in its target mapper's ``_delete_orphans``, the
    list SQLAlchemy's own orphan test reads; nothing public tells."""
    return any(mapper._delete_orphans for mapper in existing_mappers())


def resolved_statement(statement: Any) -> Any:
    """The UPDATE or DELETE a statement stands for (itself, for any other).

    ``do_orm_execute`` and ``before_execute`` hand over a ``lambda_stmt()`` as
    its lambda element, whose ``_resolved`` is the only way to the statement it
    builds; and ``select(User).from_statement(update(User)...)`` as the
    ``FromStatement`` around it, whose ``element`` SQLAlchemy does not
    document."""
    statement = getattr(statement, "_resolved", statement)
    if isinstance(statement, FromStatement):
        return statement.element
    return statement


def runs_as_orm(statement: Update | Delete) -> bool:
    """Whether SQLAlchemy runs this UPDATE or DELETE as the ORM's: a statement
    on a Table (``users.delete().where(User.id == 5)``) runs as Core, ORM
    criteria or not. This is SQLAlchemy's own test (``orm_pre_session_exec``);
    the public ``update_delete_options`` would say it too, but not for a
    ``lambda_stmt()``."""
    return "parententity" in statement.table._annotations


def lend_values(
    state: InstanceState[Any], values: Mapping[str, Any]
) -> tuple[dict[str, Any], Callable[[], None]]:
    """Put the ``values`` of attributes the instance of ``state`` lacks into it
    as if loaded; return them, and what takes them back, leaving the state
    exactly as it was: unloaded or expired again, ``state.expired`` as before,
    the loaders it had, and no ``expire`` event (``Session.expire()`` would fire
    one, and would count as an expiry of the program's). A value something
    changed meanwhile is left where it is.

    SQLAlchemy has no public way to lend values. Columns are put in as
    ``set_committed_value()`` puts each one (``InstanceState._commit()``): into
    the instance's dict, out of ``committed_state``, ``expired_attributes`` and
    ``callables``, the state no longer expired; here once for all of them, in a
    few set operations (a deferred receiver's instance has every column lent
    after the commit). Collections, which the private
    ``ClassManager._collection_impl_keys`` names, go through
    ``set_committed_value()``, which builds the collection. Taking back
    restores the bookkeeping both change."""
    current = state.dict
    lent = {key: value for key, value in values.items() if key not in current}
    if not lent:
        return lent, _nothing_to_take_back
    fully_expired = state.expired
    were_expired = state.expired_attributes.intersection(lent)
    callables = state.callables
    loaders = {key: callables[key] for key in lent if key in callables} if callables else {}
    collections = state.manager._collection_impl_keys.intersection(lent)
    columns = {k: v for k, v in lent.items() if k not in collections} if collections else lent
    current.update(columns)
    committed = state.committed_state
    if committed:
        for key in columns:
            committed.pop(key, None)
    state.expired_attributes.difference_update(columns)
    for key in loaders:  # a state with none keeps SQLAlchemy's shared, immutable empty dict
        del callables[key]
    state.expired = False
    put = dict(lent)  # what is in the instance now: a collection is built from its value
    for key in collections:
        set_committed_value(state.obj(), key, lent[key])
        put[key] = current[key]

    def take_back() -> None:
        current = state.dict
        for key, value in put.items():
            if current.get(key) is value and key not in state.committed_state:
                del current[key]
            elif state.committed_state.get(key, NO_VALUE) is value:
                # Assigned meanwhile: SQLAlchemy, which never had the value,
                # must compare against nothing, as it would have.
                state.committed_state[key] = NO_VALUE
        state.expired_attributes.update(were_expired)
        if loaders:  # a state with none keeps SQLAlchemy's shared, immutable empty dict
            state.callables.update(loaders)
        state.expired = fully_expired

    return lent, take_back


def _nothing_to_take_back() -> None:
    pass


def loader_options(statement: Any) -> tuple[Any, ...]:
    """A statement's ORM options, ``with_loader_criteria()`` among them (a
    tenant, a soft delete): the ORM adds their criteria when it compiles the
    statement, so a SELECT meant to match the same rows must carry them too.
    ``Executable.options()`` adds them; nothing public reads them back."""
    return tuple(getattr(statement, "_with_options", ()))


def post_updated(flush_context: Any) -> list[tuple[InstanceState[Any], set[Any]]]:
    """The instances a flush wrote with a separate post-update statement
    (``relationship(post_update=True)``, either side), each with the columns of
    its class that the statements set. No mapper event fires for those
    UPDATEs; ``UOWTransaction.post_update_states``, undocumented, is where the
    unit of work keeps them."""
    found = []
    for states, columns in flush_context.post_update_states.values():
        found += [(state, columns) for state in states]
    return found
