"""The oracle: nothing is lost, duplicated, or delivered for a rollback.

Hypothesis drives a real session through random programs of adds, changes,
deletes, flushes, commits, rollbacks and SAVEPOINTs (begun, rolled back,
released) on each database. After every step:

* the post_save/post_delete events sent at flush, kept per open transaction
  level, dropped with a rolled-back level and applied when the outermost
  transaction commits, replay to exactly the rows the database holds;
* the deliveries of on_commit=True receivers are exactly those committed events,
  in order, and replayed from the start give exactly the rows the database holds.

``SA_SIGNALS_ORACLE_EXAMPLES`` sets the number of programs per database (CI runs
the default, 300, of up to 25 steps each); raise it for a long run.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from sa_signals import post_delete, post_save
from tests.models import Note

EXAMPLES = int(os.environ.get("SA_SIGNALS_ORACLE_EXAMPLES", "300"))
TEXTS = st.sampled_from(["a", "b", "c"])  # few values: same-value changes happen often

Rows = dict[int, str]


def replay(events: list[tuple[str, int, str | None]], rows: Rows | None = None) -> Rows:
    rows = dict(rows or {})
    for kind, identity, text in events:
        if kind == "saved":
            assert text is not None
            rows[identity] = text
        else:
            rows.pop(identity)
    return rows


def session_machine(engine: Engine) -> type[RuleBasedStateMachine]:
    class SessionMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            with engine.begin() as connection:
                connection.execute(Note.__table__.delete())
            self.session = Session(engine)
            self.created: list[Note] = []  # every Note of the program, in creation order
            # events sent at flush, one list per open transaction level (root first)
            self.levels: list[list[tuple[str, int, str | None]]] = [[]]
            self.savepoints: list[Any] = []
            self.committed: Rows = {}
            self.committed_events: list[tuple[str, int, str | None]] = []
            self.delivered: list[tuple[str, int, str | None]] = []
            self.failures: list[Exception] = []
            self.receivers = [
                (post_save, self.saved, False),
                (post_delete, self.deleted, False),
                (post_save, self.saved_and_committed, True),
                (post_delete, self.deleted_and_committed, True),
            ]
            for signal, receiver, deferred in self.receivers:
                signal.connect(receiver, sender=Note, on_commit=deferred)

        def saved(self, instance: Note, **kwargs: Any) -> None:
            self.levels[-1].append(("saved", instance.id, instance.text))

        def deleted(self, instance: Note, **kwargs: Any) -> None:
            self.levels[-1].append(("deleted", instance.id, None))

        def saved_and_committed(self, instance: Note, **kwargs: Any) -> None:
            try:
                self.delivered.append(("saved", instance.id, instance.text))
            except Exception as error:  # deferred receivers are robust: catch it here
                self.failures.append(error)

        def deleted_and_committed(self, instance: Note, **kwargs: Any) -> None:
            try:
                self.delivered.append(("deleted", instance.id, None))
            except Exception as error:
                self.failures.append(error)

        def teardown(self) -> None:
            for signal, receiver, _ in self.receivers:
                signal.disconnect(receiver, sender=Note)
            self.session.close()

        def live(self) -> list[Note]:
            """The notes the session holds and has not deleted, in a stable order
            (the session's own order varies from run to run, hypothesis's must not)."""
            return [
                note
                for note in self.created
                if note in self.session and note not in self.session.deleted
            ]

        # -- the program ------------------------------------------------------------------

        @rule(text=TEXTS)
        def add(self, text: str) -> None:
            note = Note(text=text)
            self.created.append(note)
            self.session.add(note)

        @precondition(lambda self: self.live())
        @rule(data=st.data(), text=TEXTS)
        def change(self, data: st.DataObject, text: str) -> None:
            data.draw(st.sampled_from(self.live())).text = text

        @precondition(lambda self: [n for n in self.live() if inspect(n).persistent])
        @rule(data=st.data())
        def delete(self, data: st.DataObject) -> None:
            persistent = [note for note in self.live() if inspect(note).persistent]
            self.session.delete(data.draw(st.sampled_from(persistent)))

        @rule()
        def flush(self) -> None:
            self.session.flush()

        @rule()
        def commit(self) -> None:
            self.session.commit()
            for level in self.levels:
                self.committed = replay(level, self.committed)
                self.committed_events.extend(level)
            self.levels, self.savepoints = [[]], []

        @rule()
        def rollback(self) -> None:
            self.session.rollback()
            self.levels, self.savepoints = [[]], []

        @rule()
        def begin_savepoint(self) -> None:
            savepoint = self.session.begin_nested()  # flushes first, into the level below
            self.savepoints.append(savepoint)
            self.levels.append([])

        @precondition(lambda self: self.savepoints)
        @rule()
        def roll_back_savepoint(self) -> None:
            self.savepoints.pop().rollback()
            self.levels.pop()

        @precondition(lambda self: self.savepoints)
        @rule()
        def release_savepoint(self) -> None:
            self.savepoints.pop().commit()  # flushes first, into its own level
            released = self.levels.pop()
            self.levels[-1].extend(released)

        @rule(data=st.data(), texts=st.lists(TEXTS, min_size=1, max_size=3), keep=st.booleans())
        def work_in_a_savepoint(self, data: st.DataObject, texts: list[str], keep: bool) -> None:
            """A whole SAVEPOINT in one step, so that programs reach its end often."""
            self.begin_savepoint()
            for text in texts:
                live = self.live()
                if live and data.draw(st.booleans()):
                    data.draw(st.sampled_from(live)).text = text
                else:
                    self.add(text)
            self.flush()
            if keep:
                self.release_savepoint()
            else:
                self.roll_back_savepoint()

        # -- the oracle ---------------------------------------------------------------------

        @invariant()
        def flush_time_events_replay_to_the_database(self) -> None:
            assert self.committed == stored_rows(engine)

        @invariant()
        def deferred_deliveries_are_the_committed_events(self) -> None:
            assert self.failures == []
            assert [event[:2] for event in self.delivered] == [
                event[:2] for event in self.committed_events
            ]
            assert replay(self.delivered) == stored_rows(engine)

    return SessionMachine


def stored_rows(engine: Engine) -> Rows:
    with engine.connect() as connection:
        rows = connection.execute(select(Note.id, Note.text))
        return {identity: text for identity, text in rows}  # noqa: C416  (Row, not tuple)


def test_events_and_deliveries_replay_to_the_committed_rows(engine: Engine) -> None:
    machine = session_machine(engine)
    machine.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    machine.TestCase().runTest()
