"""A sample auth module: users, ``authenticate``/``login``/``logout``, and the
login signals, shaped after ``django.contrib.auth``.

Hashing needs argon2-cffi (``pip install 'sa-signals[auth]'``). Importing this
package connects the built-in receiver ``update_last_login`` to
``user_logged_in``, with ``dispatch_uid="update_last_login"``.
"""

from sa_signals.auth.backend import authenticate, login, logout, update_last_login
from sa_signals.auth.hashers import MAX_PASSWORD_LENGTH, set_password_hasher
from sa_signals.auth.mixins import UserMixin
from sa_signals.auth.signals import user_logged_in, user_logged_out, user_login_failed

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "UserMixin",
    "authenticate",
    "login",
    "logout",
    "set_password_hasher",
    "update_last_login",
    "user_logged_in",
    "user_logged_out",
    "user_login_failed",
]
