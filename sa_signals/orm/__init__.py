"""The bridge from SQLAlchemy's events to the model signals, one module per family.

Importing this package installs the session-level listeners; mapper-level ones
follow the receivers (see ``sa_signals.orm.hooks``).
"""

from sa_signals.orm import bulk, flush, instance  # noqa: F401  (importing installs them)

__all__: list[str] = []
