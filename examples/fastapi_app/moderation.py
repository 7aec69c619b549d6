"""A stand-in for a moderation service: something an ``async def`` receiver
awaits in the middle of a flush, as it would await a call over the network."""

from __future__ import annotations

import asyncio
import re

__all__ = ["Refused", "review"]

# Words the demo's moderation refuses, so that a refusal is easy to provoke.
BLOCKED_WORDS = frozenset({"casino", "lottery", "viagra"})
LATENCY = 0.005  # seconds a call to the service takes


class Refused(ValueError):
    """Moderation refused a text: raised by a receiver, it aborts the flush (the
    transaction rolls back: nothing is written), and the app answers ``422``."""


async def review(text: str) -> str | None:
    """Why the text cannot be published, or ``None`` when it can."""
    await asyncio.sleep(LATENCY)
    found = sorted(BLOCKED_WORDS.intersection(re.findall(r"[a-z]+", text.lower())))
    return f"it mentions {', '.join(found)}" if found else None
