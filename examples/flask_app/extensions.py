"""The Flask extensions, created once and bound to each app by ``create_app``."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from examples.blog.models import Base

__all__ = ["csrf", "db"]

# The blog's models are plain SQLAlchemy models; Flask-SQLAlchemy provides the
# request-scoped session (db.session) and the engine.
db = SQLAlchemy(metadata=Base.metadata)
csrf = CSRFProtect()
