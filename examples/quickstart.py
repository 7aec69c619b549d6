"""The quickstart: Django's dispatcher, unchanged, in a plain Python program.

Run it with ``python examples/quickstart.py``.
"""

from __future__ import annotations

from typing import Any

from sa_signals import Signal, receiver

order_shipped = Signal(doc="Sent when an order leaves the warehouse.")


class Order:
    pass


@receiver(order_shipped, sender=Order)
def email_the_customer(sender: type, tracking_number: str, **kwargs: Any) -> str:
    print(f"email: your {sender.__name__.lower()} is on its way ({tracking_number})")
    return "emailed"


def main() -> None:
    responses = order_shipped.send(sender=Order, tracking_number="1Z999")
    print("responses:", [(receiver.__name__, response) for receiver, response in responses])


if __name__ == "__main__":
    main()
