"""Serve the FastAPI demo on http://127.0.0.1:8000 (``PORT`` changes the port):
``python -m examples.fastapi_app``, after ``alembic upgrade head``.

uvicorn, on the loopback interface only. The database is ``DATABASE_URL`` (or
the SQLite file ``demo.sqlite3``), as for Alembic and the Flask demo.
"""

from __future__ import annotations

import os
import secrets

import uvicorn

from examples.blog.database import database_url
from examples.blog.seed import DEMO_PASSWORD, DEMO_USERNAME
from examples.blog.traces import trace_if_asked
from examples.fastapi_app import create_app
from examples.fastapi_app.database import async_url

HOST = "127.0.0.1"


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    # A key made afresh for each run: restarting the demo invalidates every token.
    secret_key = os.environ.get("SECRET_KEY") or secrets.token_hex(32)
    database = async_url(database_url())
    app = create_app(secret_key=secret_key, database=database)
    trace_if_asked()  # SA_SIGNALS_DEMO_TRACES=console prints the spans of every send
    print(
        f"\nThe FastAPI demo runs at http://{HOST}:{port}/ (try it at /docs), on "
        f"{database.render_as_string(hide_password=True)}: log in with "
        f"POST /login as {DEMO_USERNAME!r}, password {DEMO_PASSWORD!r}, or register with "
        "POST /users. Ctrl+C stops it.\n",
        flush=True,
    )
    uvicorn.run(app, host=HOST, port=port)


if __name__ == "__main__":
    main()
