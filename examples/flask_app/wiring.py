"""The page that answers "which receivers run when a post is saved?": every
signal with its connected receivers, from ``sa_signals.list_receivers()``, as
``python -m sa_signals receivers --app examples.flask_app`` prints them.

It shows the demo's wiring to whoever is logged in, because showing it is the
demo's point; it names the application's source files, which a real application
would show its developers only.
"""

from __future__ import annotations

from itertools import groupby
from operator import attrgetter
from pathlib import Path

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from examples.flask_app.accounts import login_required
from sa_signals import ConnectedReceiver, list_receivers

__all__ = ["blueprint"]

blueprint = Blueprint("wiring", __name__)

ROOT = Path(__file__).resolve().parents[2]  # the repository, where the demo is run from

RUNS = {
    "sync": "during the send",
    "async": "awaited in the send",
    "on_commit": "after the commit",
    "background": "in a Celery worker, after the commit",
}


@blueprint.get("/receivers")
@login_required
def receivers() -> ResponseReturnValue:
    # list_receivers() gives the signals in the order they were made, each one's
    # receivers in the order a send calls them: grouped, never sorted.
    by_signal = [
        (signal, list(rows)) for signal, rows in groupby(list_receivers(), key=attrgetter("signal"))
    ]
    return render_template("receivers.html", by_signal=by_signal, runs=RUNS, where=where)


def where(row: ConnectedReceiver) -> str:
    """``file:line``, the file from the repository's root when it is in it."""
    if row.file is None:
        return row.module or ""
    path = Path(row.file)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{shown}:{row.line}"
