"""Serve the demo on http://127.0.0.1:5000 (``PORT`` changes the port):
``python -m examples.flask_app``, after ``alembic upgrade head``.

Flask's development server, on the loopback interface only. It speaks plain
HTTP, so the session cookie is allowed over HTTP here (and only here): behind
HTTPS, keep ``create_app()``'s default. ``SA_SIGNALS_DEMO_TRACES=console``
prints the spans of every send (``examples.blog.traces``).
"""

from __future__ import annotations

import os
import secrets

from examples.blog.seed import DEMO_PASSWORD, DEMO_USERNAME
from examples.blog.traces import TRACES_VARIABLE, trace_if_asked
from examples.flask_app import create_app

HOST = "127.0.0.1"


def main() -> None:
    port = int(os.environ.get("PORT", "5000"))
    # A key made afresh for each run: restarting the demo logs everyone out.
    secret_key = os.environ.get("SECRET_KEY") or secrets.token_hex(32)
    app = create_app({"SECRET_KEY": secret_key, "SESSION_COOKIE_SECURE": False})
    if trace_if_asked():
        print(f"{TRACES_VARIABLE}: every signal's spans are printed as they end.", flush=True)
    print(
        f"\nThe demo runs at http://{HOST}:{port}/ : log in as {DEMO_USERNAME!r}, password "
        f"{DEMO_PASSWORD!r}, or register. Ctrl+C stops it.\n",
        flush=True,
    )
    app.run(host=HOST, port=port)


if __name__ == "__main__":
    main()
