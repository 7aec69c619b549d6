"""Slugs: the readable, unique part of a post's address."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

__all__ = ["slugify", "unique_slug"]

MAX_LENGTH = 200  # leaves room in the 220-character column for a "-<n>" suffix


def slugify(title: str) -> str:
    """``"Hello, Wörld!"`` -> ``"hello-world"``: ASCII letters, digits and dashes."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:MAX_LENGTH].rstrip("-") or "post"


def unique_slug(title: str, taken: Collection[str]) -> str:
    """The title's slug, or the first of ``slug-2``, ``slug-3``... not in ``taken``."""
    slug = base = slugify(title)
    number = 1
    while slug in taken:
        number += 1
        slug = f"{base}-{number}"
    return slug
