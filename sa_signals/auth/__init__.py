"""A sample auth module: users and their passwords, shaped after
``django.contrib.auth``.

Hashing needs argon2-cffi (``pip install 'sa-signals[auth]'``).
"""

from sa_signals.auth.hashers import MAX_PASSWORD_LENGTH, set_password_hasher
from sa_signals.auth.mixins import UserMixin

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "UserMixin",
    "set_password_hasher",
]
