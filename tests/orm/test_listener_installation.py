"""A class nobody listens to pays nothing per object: mapper listeners are
installed only for classes with receivers (or for all, once a receiver listens
to any sender). Checked in a fresh interpreter, where nothing was connected yet."""

from __future__ import annotations

from tests.subprocesses import WATCHED_AND_IGNORED, run_fresh


def test_mapper_listeners_follow_the_receivers() -> None:
    run_fresh(
        """
        from sqlalchemy import event, inspect
        from sqlalchemy.orm import Mapper

        import sa_signals
        from sa_signals.orm import flush

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
        """,
        prelude=WATCHED_AND_IGNORED,
    )


def test_a_receiver_for_any_sender_does_not_double_a_class_receiver() -> None:
    """Connected after a receiver for one class, a receiver for any sender takes
    over that class's listeners: each receiver still runs once per object."""
    run_fresh(
        """
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session

        import sa_signals

        heard = []

        def receiver_for(label, name):
            def receiver(sender, **kwargs):
                heard.append((label, name))
            return receiver

        names = ["pre_init", "post_init", "pre_save", "post_save", "pre_delete", "post_delete"]
        for name in names:
            signal = getattr(sa_signals, name)
            signal.connect(receiver_for("Watched", name), sender=Watched, weak=False)
        for name in names:
            getattr(sa_signals, name).connect(receiver_for("any", name), weak=False)

        engine = create_engine("sqlite://")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add(Watched(id=1))
            session.commit()
            session.get(Watched, 1).name = "changed"
            session.commit()
            session.expunge_all()
            session.delete(session.get(Watched, 1))
            session.commit()

        expected = ["pre_init", "post_init", "pre_save", "post_save",   # the insert
                    "post_init", "pre_save", "post_save",               # the update
                    "post_init", "pre_delete", "post_delete"]           # the delete
        assert [name for label, name in heard if label == "Watched"] == expected, heard
        assert [name for label, name in heard if label == "any"] == expected, heard
        """,
        prelude=WATCHED_AND_IGNORED,
    )
