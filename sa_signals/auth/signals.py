"""The login signals, declared in one place, each with the moment it is sent.

They are plain ``sa_signals.Signal`` instances, with the keyword arguments of
``django.contrib.auth.signals``, so a receiver written for Django runs unchanged.
"""

from __future__ import annotations

from sa_signals.dispatch import Signal

__all__ = ["user_logged_in", "user_logged_out", "user_login_failed"]

user_logged_in = Signal(
    doc="""Sent by ``login()``, after the user was added to the caller's session.

    Keyword arguments: ``sender`` (the user's class), ``request``, ``user``.
    A receiver may change the user: the change is written by the caller's next
    flush or commit, like ``last_login``, which the built-in receiver
    ``update_last_login`` (``dispatch_uid="update_last_login"``) sets here.
    """
)

user_logged_out = Signal(
    doc="""Sent by ``logout()``.

    Keyword arguments: ``sender`` (the user's class, or ``None`` when there was no
    user), ``request``, ``user`` (or ``None``).
    """
)

user_login_failed = Signal(
    doc="""Sent by ``authenticate()`` whenever it returns ``None``.

    Keyword arguments: ``sender`` (the string ``"sa_signals.auth"``),
    ``credentials``, ``request``. ``credentials`` is a copy of what was passed,
    with the value of every sensitive-looking key replaced by
    ``"********************"``: receivers log it, and logs must never hold a
    password. This is the place for throttling and lockouts.
    """
)
