"""An application that prints while it starts, as many do."""

print("Starting the shop...")

from tests.listing_app import receivers  # noqa: E402, F401  (connects them)
