"""Cleansing credentials before they leave ``authenticate()``.

Receivers of ``user_login_failed`` log what they get, and a log is read by more
people, and kept longer, than a password may be. The rule is Django's, with
``pass`` in place of ``password`` so that ``passphrase`` or ``passcode`` are
covered too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__: list[str] = []

SENSITIVE_CREDENTIALS = re.compile("pass|token|secret|key|api|signature", re.IGNORECASE)
CLEANSED_SUBSTITUTE = "********************"


def cleanse_credentials(credentials: Mapping[str, object]) -> dict[str, object]:
    """A new dict: the value of every key that looks sensitive replaced by
    ``CLEANSED_SUBSTITUTE``, whatever that value was (``None`` and non-strings
    included, so the shape of a secret does not leak either). Only the top level
    is cleansed, as in Django: credentials are keyword arguments, not documents.
    """
    return {
        key: CLEANSED_SUBSTITUTE if SENSITIVE_CREDENTIALS.search(key) else value
        for key, value in credentials.items()
    }
