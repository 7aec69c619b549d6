"""The demo's domain: a blog whose users come from ``sa_signals.auth``.

Importing it connects the blog's own receivers (``blog.receivers``), as a
Django app connects its signals when it is loaded.
"""

from examples.blog import receivers as _receivers  # noqa: F401  (connects them)
