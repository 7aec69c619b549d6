"""Django-style model signals for SQLAlchemy.

The public API, re-exported from the modules that implement it. Importing the
package is all the set-up there is: the bridge from SQLAlchemy's events to the
model signals is installed for every session.
"""

from sa_signals import orm as _orm  # noqa: F401  (installs the bridge)
from sa_signals._version import __version__ as __version__
from sa_signals.dispatch import Signal, receiver
from sa_signals.listing import ConnectedReceiver, list_receivers
from sa_signals.signals import (
    ModelSignal,
    m2m_changed,
    post_bulk_update,
    post_delete,
    post_init,
    post_migrate,
    post_save,
    pre_bulk_update,
    pre_delete,
    pre_init,
    pre_migrate,
    pre_save,
)
from sa_signals.switches import raw_mode, signals_disabled
from sa_signals.transaction import on_commit

__all__ = [
    "ConnectedReceiver",
    "ModelSignal",
    "Signal",
    "list_receivers",
    "m2m_changed",
    "on_commit",
    "post_bulk_update",
    "post_delete",
    "post_init",
    "post_migrate",
    "post_save",
    "pre_bulk_update",
    "pre_delete",
    "pre_init",
    "pre_migrate",
    "pre_save",
    "raw_mode",
    "receiver",
    "signals_disabled",
]
