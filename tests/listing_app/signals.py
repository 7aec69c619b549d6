"""The application's own signal."""

from __future__ import annotations

from sa_signals import Signal

__all__ = ["order_shipped"]

order_shipped = Signal(doc="Sent when an order leaves the warehouse.")
