"""The demo: a small blog on sa-signals, as plain SQLAlchemy and as a Flask app.

``blog`` holds what both share (models, database, receivers of the domain);
``quickstart`` is the plain-SQLAlchemy tour, ``flask_app`` the web application.
The demo database is managed by the Alembic environment in ``migrations/``.
"""
