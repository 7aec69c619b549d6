"""What the audit log says about the blog's objects, shared by the Flask and the
FastAPI app: each connects receivers of its own (they differ in who the actor
is and what a request adds), which describe the change with these."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from examples.blog.models import Comment, Post, Tag

__all__ = ["collection_details", "delete_details", "describe", "save_details"]


def describe(instance: Any) -> str:
    """How the log names an object: by kind, key and title, never by content."""
    if isinstance(instance, Post):
        return f"post #{instance.id} {instance.title!r}"
    if isinstance(instance, Comment):
        return f"comment #{instance.id} on post #{instance.post_id}"
    if isinstance(instance, Tag):
        return f"tag {instance.name!r}"
    return f"user {instance.username!r}"


def save_details(changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """An UPDATE's ``changes``, old and new value of each column, as JSON."""
    if not changes:  # an INSERT
        return {}
    return {"changes": {name: [_json(old), _json(new)] for name, (old, new) in changes.items()}}


def delete_details(instance: Any, origin: Any) -> dict[str, Any]:
    """A cascade names the object whose deletion took this one with it."""
    return {} if origin is instance else {"deleted with": describe(origin)}


def collection_details(instance: Post | Tag, objects: list[Any]) -> dict[str, Any]:
    """What an ``m2m_changed`` added or removed, from either side."""
    if isinstance(instance, Post):
        return {"tags": sorted(tag.name for tag in objects)}
    return {"posts": sorted(describe(post) for post in objects)}  # from the tag's side


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
