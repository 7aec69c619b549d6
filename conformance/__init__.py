"""The conformance run: SQLAlchemy's own ORM tests, with sa-signals connected.

sa-signals promises to watch SQLAlchemy, never to steer it. The referee is
SQLAlchemy's own test suite, taken from the sdist of the version installed and
run four times: without sa-signals (the baseline), with it imported, with a
counting receiver on every model signal, and with a deferred receiver as well.
Every test whose outcome differs from the baseline must be on the allowed list
(``allowed.toml``), with its reason, or on the list of what is still to fix
(``unfixed.txt``); anything else fails the run.

``python -m conformance`` runs it; ``conformance/README.md`` says how to read it.
"""
