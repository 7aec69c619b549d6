"""Django-style model signals for SQLAlchemy.

The public API, re-exported from the modules that implement it. Importing the
package is all the set-up there is: the bridge from SQLAlchemy's events to the
model signals is installed for every session.
"""

from sa_signals import orm as _orm  # noqa: F401  (installs the bridge)
from sa_signals.dispatch import Signal, receiver
from sa_signals.signals import ModelSignal, post_delete, post_save, pre_delete, pre_save
from sa_signals.switches import raw_mode, signals_disabled
from sa_signals.transaction import on_commit

__all__ = [
    "ModelSignal",
    "Signal",
    "on_commit",
    "post_delete",
    "post_save",
    "pre_delete",
    "pre_save",
    "raw_mode",
    "receiver",
    "signals_disabled",
]
