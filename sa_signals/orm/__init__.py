"""The bridge from SQLAlchemy's events to the model signals, one module per family.

Importing this package installs the session-level listeners; mapper-level ones
follow the receivers (see ``sa_signals.orm.hooks``).
"""

from sa_signals.orm import bulk, flush, instance

__all__ = ["bulk", "flush", "instance"]
