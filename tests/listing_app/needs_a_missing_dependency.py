"""An application that imports a package nobody installed: its error is its own."""

import sa_signals_test_no_such_dependency  # noqa: F401
