"""``on_commit``, and receivers deferred until the commit.

Django runs an on_commit callback once, after the outermost transaction commits,
and never after a rollback; a callback registered inside a SAVEPOINT that is
rolled back is dropped, the others survive. SQLAlchemy has no such hook, and its
``after_commit`` event is a trap: it fires for ``RELEASE SAVEPOINT`` too, may
emit no SQL, and an exception there leaves the session unusable. So:

* a callback is queued on the innermost real transaction (the SAVEPOINT, or the
  root; never a flush's subtransaction);
* ``after_commit`` only notes that a transaction committed (and, for the root,
  keeps the values of the instances deferred receivers will read, before the
  commit expires them);
* ``after_transaction_end`` hands a committed SAVEPOINT's queue to its parent,
  drops a rolled-back one's, and runs the root's. The session is out of its
  transaction by then, so a callback that raises propagates from ``commit()``
  with the data committed and the session usable.

What "the commit" means for a session joined to an outer connection-level
transaction (``Session(bind=connection, join_transaction_mode=...)``, the usual
test fixture): the session's own commit commits nothing there (it releases a
SAVEPOINT, or does nothing), so its callbacks wait for the connection's
transaction (also when registered before the session began its own). They run
right after that transaction commits, and are dropped when it rolls back (or
its COMMIT fails), or when a SAVEPOINT of the connection that encloses them
rolls back. A fixture that always rolls back
therefore never runs them, as in Django's ``TestCase``:
``sa_signals.testing.capture_on_commit_callbacks`` collects them instead. With
``join_transaction_mode="control_fully"`` the session's commit is the real one,
and callbacks run right after it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstanceState, Mapper, Session, SessionTransaction
from sqlalchemy.orm.attributes import instance_state

from sa_signals._await import run_to_completion
from sa_signals.columns import (
    column_key_set,
    fetch_unloaded_columns,
    lent_values,
    per_mapper,
    session_connection,
    values_lent,
)
from sa_signals.dispatch import describe
from sa_signals.switches import AnySession, sync_session_of

__all__ = ["on_commit"]

logger = logging.getLogger("sa_signals")

_QUEUES = "sa_signals.on_commit"


@dataclass(eq=False)
class Callback:
    """One registered call, waiting for its commit."""

    func: Callable[[], Any]
    robust: bool
    named_after: Any  # what its messages name it by: the function, or the receiver
    instance: Any = None  # a deferred receiver's instance, whose values it will read
    # values of the instance it lacked when deferred: fetched, or lent (values_lent)
    values: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"  # then "ran" or "dropped"
    # What the call runs inside, when it runs: a tracing span (sa_signals.tracing).
    around: Callable[[], AbstractContextManager[Any]] | None = None

    @property
    def name(self) -> str:
        """Its name in messages, worked out only for one (one callback is made
        per object a deferred receiver hears)."""
        return describe(self.named_after)

    def run(self) -> None:
        self.status = "ran"
        if not self.robust:
            self._call()
            return
        try:
            self._call()
        except Exception as error:
            logger.error("Error calling %s in on_commit() (%s).", self.name, error, exc_info=error)

    def _call(self) -> None:
        # Written out twice rather than entering a nullcontext: this runs once per
        # deferred object, and untraced it must cost what it did before tracing.
        if self.around is None:
            result = self.func()
            if inspect.isawaitable(result):
                run_to_completion(_awaited(result))
            return
        with self.around():
            result = self.func()
            if inspect.isawaitable(result):
                run_to_completion(_awaited(result))


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


@dataclass(eq=False)
class _SessionQueues:
    """A session's waiting callbacks, by the transaction they wait for."""

    waiting: dict[SessionTransaction, list[Callback]] = field(default_factory=dict)
    committed: set[SessionTransaction] = field(default_factory=set)
    connections: dict[SessionTransaction, list[Connection]] = field(default_factory=dict)
    # values of deferred receivers' instances, kept before the commit expires them
    snapshots: dict[SessionTransaction, dict[InstanceState[Any], dict[str, Any]]] = field(
        default_factory=dict
    )
    # the capturing() blocks open on this session, each with what it collected
    captures: list[list[Callback]] = field(default_factory=list)


def _queues(session: Session) -> _SessionQueues:
    queues: _SessionQueues | None = session.info.get(_QUEUES)
    if queues is None:
        queues = session.info[_QUEUES] = _SessionQueues()
    return queues


def _is_real(transaction: SessionTransaction) -> bool:
    """A SAVEPOINT or the root: not a subtransaction a flush opens for itself."""
    return transaction.nested or transaction.parent is None


def _real(transaction: SessionTransaction) -> SessionTransaction:
    while not _is_real(transaction):
        assert transaction.parent is not None
        transaction = transaction.parent
    return transaction


# -- registering ---------------------------------------------------------------------------


def on_commit(func: Callable[[], Any], session: AnySession, *, robust: bool = False) -> None:
    """Run ``func()`` once, after the outermost transaction of ``session``
    commits; never if it rolls back. Registered inside a SAVEPOINT that is rolled
    back, it is dropped. With no transaction open, it runs at once.

    :param robust: log an exception (on logger ``sa_signals``) and go on with the
        next callbacks, instead of letting it propagate from ``commit()``.

    An ``async def`` callback is awaited (on the session's event loop under an
    ``AsyncSession``). The callback runs after the session left its transaction:
    reading an expired attribute there starts a new one.
    """
    if not callable(func):
        raise TypeError(f"on_commit() needs a callable; {func!r} is not.")
    _register(sync_session_of(session), Callback(func, robust, func))


def defer(
    receiver: Callable[..., Any],
    kwargs: dict[str, Any],
    around: Callable[[], AbstractContextManager[Any]] | None = None,
) -> None:
    """Queue a receiver connected with ``on_commit=True``: it is called after the
    commit with the keyword arguments of the send, robustly, inside ``around()``
    when given. The instance it receives will read its values without SQL although
    the commit expires them."""
    session = kwargs.get("session")
    if not isinstance(session, Session):
        raise TypeError(
            f"Cannot defer {describe(receiver)}: the signal was sent without a session."
        )
    kwargs = dict(kwargs)
    instance = kwargs.get("instance")
    values: dict[str, Any] = {}
    if instance is not None:
        state = instance_state(instance)
        values = lent_values(state)  # a deleted row's, lent to its post_delete receivers
        # A value the database generated, not fetched: fetch it now. (The test
        # first, inline: one deferral per object, and nearly all have every column.)
        if state.persistent and not column_key_set(state.mapper) <= state.dict.keys():
            connection_for = session_connection(session)
            values.update(fetch_unloaded_columns(connection_for, [state]).get(state, {}))
    callback = Callback(
        functools.partial(receiver, **kwargs),
        robust=True,
        named_after=receiver,
        instance=instance,
        values=values,
        around=around,
    )
    _register(session, callback)


def _register(session: Session, callback: Callback) -> None:
    queues = _queues(session)
    for captured in queues.captures:
        captured.append(callback)
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is not None:
        queues.waiting.setdefault(transaction, []).append(callback)
        return
    # A session joined to a connection's transaction has none of its own until
    # it first works; the connection's transaction is still "the" transaction.
    bind = session.bind
    if isinstance(bind, Connection) and bind.in_transaction():
        _connection_queue(bind).wait([callback], {})
        return
    callback.run()


@contextmanager
def capturing(session: AnySession) -> Iterator[list[Callback]]:
    """Collect, in a list that grows as they come, the callbacks (and deferred
    receivers) registered on ``session`` within the block. They still wait for
    their commit as usual; see ``sa_signals.testing.capture_on_commit_callbacks``."""
    queues = _queues(sync_session_of(session))
    captured: list[Callback] = []
    queues.captures.append(captured)
    try:
        yield captured
    finally:
        queues.captures.remove(captured)


# -- following the session's transactions ----------------------------------------------------


@event.listens_for(Session, "after_begin")
def _remember_connection(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    if transaction.parent is None:
        _queues(session).connections.setdefault(transaction, []).append(connection)


@event.listens_for(Session, "after_commit")
def _note_commit(session: Session) -> None:
    queues: _SessionQueues | None = session.info.get(_QUEUES)
    if queues is None:
        return
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        return
    queues.committed.add(transaction)
    if transaction.parent is None:
        # The commit is about to expire every instance: keep what deferred
        # receivers will read.
        queues.snapshots[transaction] = _snapshot(queues.waiting.get(transaction, []))


@event.listens_for(Session, "after_transaction_end")
def _end_of_transaction(session: Session, transaction: SessionTransaction) -> None:
    queues: _SessionQueues | None = session.info.get(_QUEUES)
    if queues is None or not _is_real(transaction):
        return
    callbacks = queues.waiting.pop(transaction, [])
    committed = transaction in queues.committed
    queues.committed.discard(transaction)
    connections = queues.connections.pop(transaction, [])
    snapshots = queues.snapshots.pop(transaction, {})

    if not committed:
        for callback in callbacks:
            callback.status = "dropped"
    elif transaction.parent is not None:  # a released SAVEPOINT: wait with the parent
        queues.waiting.setdefault(_real(transaction.parent), []).extend(callbacks)
    elif callbacks:
        outer = next((c for c in connections if c.in_transaction()), None)
        if outer is not None:
            _connection_queue(outer).wait(callbacks, snapshots)
        else:
            run(callbacks, snapshots)


# -- running, with the instances' values restored -------------------------------------------


def run(callbacks: list[Callback], snapshots: dict[InstanceState[Any], dict[str, Any]]) -> None:
    """Run the callbacks in order. The first exception of a callback that is not
    robust propagates, and the ones after it are dropped, as in Django."""
    with values_lent(snapshots):
        for position, callback in enumerate(callbacks):
            if callback.status != "pending":
                continue
            try:
                callback.run()
            except BaseException:
                for later in callbacks[position + 1 :]:
                    later.status = "dropped"
                raise


def _snapshot(callbacks: list[Callback]) -> dict[InstanceState[Any], dict[str, Any]]:
    """What the deferred receivers' instances hold as the commit is about to
    expire them: their columns as they are (a JSON dict, a set), their loaded
    collections as lists, and what was fetched or lent when each was deferred."""
    snapshots: dict[InstanceState[Any], dict[str, Any]] = {}
    for callback in callbacks:
        if callback.instance is None:
            continue
        state = instance_state(callback.instance)
        snapshot = snapshots.get(state)
        if snapshot is None:
            snapshot = snapshots[state] = {}
        snapshot.update(callback.values)  # a later deferral saw later values
        values = state.dict
        columns, collections = _kept_keys(state.mapper)
        for key in collections.intersection(values):
            value = values[key]
            if isinstance(value, list | set):  # keyed (dict) collections are not kept
                snapshot[key] = list(value)
        for key in columns.intersection(values):
            snapshot[key] = values[key]
    return snapshots


@per_mapper
def _kept_keys(mapper: Mapper[Any]) -> tuple[frozenset[str], frozenset[str]]:
    """The keys ``_snapshot`` keeps: the columns, and the relationships whose
    value may be a collection."""
    collections = frozenset(r.key for r in mapper.relationships if r.uselist)
    return column_key_set(mapper), collections


# -- sessions joined to an outer connection-level transaction --------------------------------

_connection_queues: weakref.WeakKeyDictionary[Connection, _ConnectionQueue] = (
    weakref.WeakKeyDictionary()
)


@dataclass(eq=False)
class _ConnectionQueue:
    """Callbacks of joined sessions, waiting for their connection's transaction."""

    callbacks: list[Callback] = field(default_factory=list)
    snapshots: dict[InstanceState[Any], dict[str, Any]] = field(default_factory=dict)
    # how many callbacks were waiting when each open SAVEPOINT of the connection
    # began (SAVEPOINTs end last-in, first-out)
    marks: list[int] = field(default_factory=list)

    def wait(
        self, callbacks: list[Callback], snapshots: dict[InstanceState[Any], dict[str, Any]]
    ) -> None:
        self.callbacks.extend(callbacks)
        self.snapshots.update(snapshots)

    def savepoint(self, *_: Any) -> None:
        self.marks.append(len(self.callbacks))

    def release_savepoint(self, *_: Any) -> None:
        if self.marks:
            self.marks.pop()

    def rollback_savepoint(self, *_: Any) -> None:
        # A SAVEPOINT begun before sa-signals listened encloses every callback.
        self._drop_from(self.marks.pop() if self.marks else 0)

    def rollback(self, *_: Any) -> None:
        self.marks.clear()
        self._drop_from(0)

    def commit(self, connection: Connection) -> None:
        callbacks, snapshots = self.callbacks, self.snapshots
        self.callbacks, self.snapshots, self.marks = [], {}, []
        if not callbacks:
            return
        # A Connection tells of its commit only before sending the COMMIT, and an
        # exception here would cancel it. The callbacks must follow the COMMIT,
        # and never run if it fails (a deferred constraint), so it is sent here;
        # the COMMIT SQLAlchemy sends next finds nothing left to commit.
        dialect = connection.dialect
        try:
            dialect.do_commit(connection.connection)
        except dialect.loaded_dbapi.Error as error:
            for callback in callbacks:
                callback.status = "dropped"
            raise DBAPIError.instance(
                None, None, error, dialect.loaded_dbapi.Error, dialect=dialect
            ) from error
        run(callbacks, snapshots)

    def _drop_from(self, position: int) -> None:
        for callback in self.callbacks[position:]:
            callback.status = "dropped"
        del self.callbacks[position:]


def _connection_queue(connection: Connection) -> _ConnectionQueue:
    queue = _connection_queues.get(connection)
    if queue is None:
        queue = _connection_queues[connection] = _ConnectionQueue()
        for name in ("commit", "rollback", "savepoint", "release_savepoint", "rollback_savepoint"):
            event.listen(connection, name, getattr(queue, name))
    return queue
