"""A module that nothing may ever import: user data and forged events name it
(``tests.celery.canary:pwned``), and the tests check that it stays out of
``sys.modules``. Were it imported, its names could be called."""


def pwned(*args: object) -> None:
    raise AssertionError(f"data made a worker call code: pwned{args!r}")


class Plain:
    """A class that no registry maps."""
