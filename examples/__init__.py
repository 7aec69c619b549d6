"""The demo: a small blog on sa-signals, as plain SQLAlchemy, as a Flask app and
as a FastAPI app.

``blog`` holds what they share (models, database, receivers of the domain, the
audit log's wording, the e-mails); ``quickstart`` is the plain-SQLAlchemy tour,
``flask_app`` the web application, ``fastapi_app`` the same blog as a JSON API
on an ``AsyncSession`` per request.
The demo database is managed by the Alembic environment in ``migrations/``.
"""
