"""Background receivers on Celery that lose nothing: a transactional outbox.

``@task_receiver(post_save, sender=Order, app=celery_app, session_factory=SessionLocal)``
runs a receiver in a Celery worker after the commit. Its event is written in the
outbox table in the same transaction as the change, so it commits with the
change or not at all; it is published right after the commit, and whatever
could not be published then (broker down, process killed) by ``relay_outbox``.
Every committed event is delivered at least once, under a stable id (the Celery
task id) a receiver can deduplicate by.

Needs Celery: ``pip install 'sa-signals[celery]'``.
"""

try:
    import celery as _celery  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError("sa_signals.celery needs Celery: pip install 'sa-signals[celery]'") from error

from sa_signals.celery.events import RefusedEvent
from sa_signals.celery.outbox import OUTBOX_TABLE, outbox_table
from sa_signals.celery.receivers import task_receiver
from sa_signals.celery.relay import relay_outbox

__all__ = ["OUTBOX_TABLE", "RefusedEvent", "outbox_table", "relay_outbox", "task_receiver"]
