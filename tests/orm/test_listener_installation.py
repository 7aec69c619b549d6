"""A class nobody listens to pays nothing per object: mapper listeners are
installed only for classes with receivers (or for all, once a receiver listens
to any sender). Checked in a fresh interpreter, where nothing was connected yet."""

from __future__ import annotations

from tests.subprocesses import run_fresh


def test_mapper_listeners_follow_the_receivers() -> None:
    run_fresh(
        """
        from sqlalchemy import event, inspect
        from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column

        import sa_signals
        from sa_signals.orm import flush

        class Base(DeclarativeBase):
            pass

        class Watched(Base):
            __tablename__ = "watched"
            id: Mapped[int] = mapped_column(primary_key=True)

        class Ignored(Base):
            __tablename__ = "ignored"
            id: Mapped[int] = mapped_column(primary_key=True)

        def listening(target):
            return event.contains(target, "after_insert", flush._after_insert)

        watched, ignored = inspect(Watched), inspect(Ignored)
        assert not listening(Mapper) and not listening(watched) and not listening(ignored)
        assert not ignored.dispatch.after_insert  # no listener of anyone's: nothing runs

        def receiver(**kwargs): ...

        sa_signals.post_save.connect(receiver, sender=Watched)
        assert listening(watched) and not listening(ignored) and not listening(Mapper)
        assert not ignored.dispatch.after_insert

        sa_signals.pre_delete.connect(receiver)
        assert listening(Mapper) and ignored.dispatch.after_insert
        """
    )
