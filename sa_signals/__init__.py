"""Django-style model signals for SQLAlchemy.

The public API, re-exported from the modules that implement it.
"""

from sa_signals.dispatch import Signal, receiver

__all__ = ["Signal", "receiver"]
