"""A small application for the tests of the listing of receivers
(``tests/test_cli.py``): a signal of its own (``signals``), a model (``models``),
and receivers of every kind (``receivers``), connected when that module is
imported.

``create_app()`` is its application factory: it imports the receivers, as
docs/signals.md advises a factory to do, and connects one more itself, so that
``--app tests.listing_app:create_app`` shows that the factory was called.
Importing the package connects nothing: the library's tests import its signal,
and must not find the application's receivers connected in their process.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["create_app"]


def create_app() -> ModuleType:
    from tests.listing_app import receivers
    from tests.listing_app.signals import order_shipped

    order_shipped.connect(receivers.log_the_shipment, dispatch_uid="shipment log")
    return receivers
