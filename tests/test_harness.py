"""The harness itself: every database test really runs on each backend, with
working SAVEPOINTs and empty tables."""

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.models import Note


def test_a_rolled_back_savepoint_leaves_nothing_behind(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Note(text="kept"))
        nested = session.begin_nested()
        session.add(Note(text="discarded"))
        session.flush()
        nested.rollback()
        session.commit()

    with Session(engine) as session:
        assert session.scalars(select(Note.text)).all() == ["kept"]


def test_a_released_savepoint_is_still_undone_by_the_outer_rollback(engine: Engine) -> None:
    # SAVEPOINT as the first statement of the transaction is the case where
    # pysqlite, left to itself, sends no BEGIN and RELEASE commits for good.
    with Session(engine) as session:
        with session.begin_nested():
            session.add(Note(text="released, then rolled back with the outer transaction"))
        session.rollback()

    with Session(engine) as session:
        assert session.scalars(select(Note.text)).all() == []


def test_each_test_starts_with_empty_tables(engine: Engine) -> None:
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Note)) == 0
        session.add(Note(text="left behind for the next test to not see"))
        session.commit()


def test_each_test_starts_with_empty_tables_again(engine: Engine) -> None:
    test_each_test_starts_with_empty_tables(engine)


def test_the_engine_is_the_backend_it_claims(engine: Engine, backend: str) -> None:
    expected = {"sqlite": "sqlite", "postgresql": "postgresql", "mariadb": "mysql"}[backend]
    assert engine.dialect.name == expected
