"""``python -m sa_signals receivers --app MODULE[:FACTORY] [--signal NAME]
[--sender NAME] [--json]``

Prints every signal with the receivers connected to it, in the order a send calls
them, from :func:`sa_signals.list_receivers`: which receivers run when an
``Order`` is saved, without reading every module of the application.

``--app`` names the application's own code, which connects its receivers when it
is imported: a module, or ``module:factory`` for an application factory that
connects some of them itself (Flask's ``create_app``). A function is called with
no arguments; anything else after the colon (an app object) is only looked up,
its module's import having done the work, and a note on standard error says so.
A module that cannot be found is the command line's mistake, told in one line;
anything the application's own import raises keeps its traceback. What the
application prints while it starts goes to standard error, so that ``--json``
output stays parseable. What the command imports is what the
user names on its command line, never anything read from a database.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import importlib
import inspect
import json
import os
import sys
from collections.abc import Sequence
from itertools import groupby
from typing import NoReturn

from sa_signals.dispatch import registered_signals
from sa_signals.listing import ConnectedReceiver, list_receivers, signal_names

PROG = "python -m sa_signals"
COLUMNS = ("Sender", "Receiver", "Runs", "Ref", "Defined at")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    receivers = options.receivers_parser
    # What the application prints while it starts goes to stderr: stdout is the
    # listing's, which --json promises a tool it can parse.
    with contextlib.redirect_stdout(sys.stderr):
        _import_app(receivers, options.app)
    rows = list_receivers()
    if options.signal is not None:
        _check_signal_name(receivers, options.signal)
        rows = [row for row in rows if _names_signal(options.signal, row.signal)]
    if options.sender is not None:
        if not any(_names_sender(options.sender, row.sender) for row in rows):
            print(
                f"{receivers.prog}: note: no receiver is connected for a sender named "
                f"{options.sender!r}; listed are those of any sender.",
                file=sys.stderr,
            )
        rows = [
            row for row in rows if row.sender is None or _names_sender(options.sender, row.sender)
        ]
    if options.json:
        print(json.dumps([dataclasses.asdict(row) for row in rows], indent=2, default=repr))
    elif rows:
        print(_as_text(rows))
    elif options.signal is None and options.sender is None:
        print("No receivers are connected.")
    else:
        print("No connected receiver matches.")
    return 0


# -- the application --------------------------------------------------------------------------


def _import_app(parser: argparse.ArgumentParser, app: str) -> None:
    """Import ``app``'s module, and call its factory if it names one.

    A name that cannot be imported is the command line's mistake: one line says
    so. An exception the application's own code raises is the application's, and
    comes with its traceback.
    """
    module_name, colon, attribute = app.partition(":")
    if not module_name or (colon and not attribute.isidentifier()):
        _fail(
            parser,
            f"--app takes MODULE or MODULE:FACTORY (such as shop.app:create_app), not {app!r}",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if not _names_the_module_or_a_parent(error.name, module_name):
            raise  # the application imports something missing: its own traceback
        _fail(parser, f"cannot import --app {module_name!r}: {error}")
    if not colon:
        return
    try:
        target = getattr(module, attribute)
    except AttributeError:
        _fail(parser, f"--app {app}: module {module_name!r} has no attribute {attribute!r}")
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        # An app object: its module's import connected what it connects.
        print(
            f"{parser.prog}: note: --app {app}: {attribute} is a {type(target).__name__}, "
            "not a function: not called.",
            file=sys.stderr,
        )
        return
    try:
        inspect.signature(target).bind()
    except TypeError:
        _fail(parser, f"--app {app}: {attribute}() cannot be called without arguments")
    target()


def _names_the_module_or_a_parent(missing: str | None, module_name: str) -> bool:
    """Whether a ModuleNotFoundError is about the --app module itself (or a package
    above it), rather than about something the application imports."""
    return missing is not None and (module_name + ".").startswith(missing + ".")


def _fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """argparse's way with a bad argument, in one line: no usage, no traceback."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


# -- the filters ------------------------------------------------------------------------------


def _check_signal_name(parser: argparse.ArgumentParser, name: str) -> None:
    """A misspelt signal would otherwise list nothing, which reads as "no receivers"."""
    known = signal_names(registered_signals()).values()
    if any(_names_signal(name, signal) for signal in known):
        return
    spellings = {spelling for signal in known for spelling in (signal, signal.rpartition(".")[2])}
    close = difflib.get_close_matches(name, spellings, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    _fail(parser, f"--signal {name}: no signal has that name{hint}")


def _names_signal(name: str, signal: str) -> bool:
    """``post_save`` and ``sa_signals.post_save`` both name ``sa_signals.post_save``."""
    return name == signal or name == signal.rpartition(".")[2]


def _names_sender(name: str, sender: str | None) -> bool:
    """``Order``, ``models.Order`` and ``shop.models.Order`` all name ``shop.models.Order``."""
    return sender is not None and (sender == name or sender.endswith("." + name))


# -- printing ---------------------------------------------------------------------------------


def _as_text(rows: list[ConnectedReceiver]) -> str:
    """Grouped by signal, a line per receiver in connection order, in columns
    aligned across the groups; a receiver's task and ``dispatch_uid``, when it
    has them, on lines of their own beneath it."""
    cells = [_cells(row) for row in rows]
    widths = [max(map(len, column)) for column in zip(COLUMNS, *cells, strict=True)]
    indent = " " * (2 + widths[0] + 4)  # under the receiver's name, and a little in
    lines: list[str] = []
    for signal, group in groupby(zip(rows, cells, strict=True), key=lambda pair: pair[0].signal):
        if lines:
            lines.append("")
        lines += [signal, _aligned(COLUMNS, widths)]
        for row, row_cells in group:
            lines.append(_aligned(row_cells, widths))
            if row.task is not None:
                lines.append(f"{indent}task: {row.task}")
            if row.dispatch_uid is not None:
                lines.append(f"{indent}dispatch_uid: {row.dispatch_uid!r}")
    return "\n".join(lines)


def _aligned(cells: Sequence[str], widths: Sequence[int]) -> str:
    return (
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
    ).rstrip()


def _cells(row: ConnectedReceiver) -> tuple[str, str, str, str, str]:
    """Sender, receiver, how it runs, how it is held, where it is defined."""
    sender = "(any)" if row.sender is None else row.sender
    runs = row.delivery.replace("_", " ")
    held = "weak" if row.weak else "strong"
    where = (row.module or "?") if row.file is None else f"{_shown_path(row.file)}:{row.line}"
    return (sender, row.receiver, runs, held, where)


def _shown_path(file: str) -> str:
    """A path below the current directory relative to it, as a developer types it."""
    here = os.getcwd()
    absolute = os.path.abspath(file)
    return os.path.relpath(absolute, here) if absolute.startswith(here + os.sep) else file


# -- the command line -------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="sa-signals' command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    receivers = commands.add_parser(
        "receivers",
        help="list every signal's receivers, in the order a send calls them",
        description=(
            "List every signal with its connected receivers, in the order a send calls "
            "them: sender, receiver, how it runs, how it is held, and where it is defined."
        ),
    )
    receivers.set_defaults(receivers_parser=receivers)
    receivers.add_argument(
        "--app",
        required=True,
        help="the application, which connects its receivers when imported: MODULE, or "
        "MODULE:FACTORY for a function to call as well (such as shop.app:create_app)",
    )
    receivers.add_argument(
        "--signal",
        help="only this signal: its name (post_save) or full name (sa_signals.post_save)",
    )
    receivers.add_argument(
        "--sender",
        help="only the receivers a send by this sender reaches (its own, and any sender's): "
        "a class's name (Order) or dotted path (shop.models.Order)",
    )
    receivers.add_argument("--json", action="store_true", help="print JSON, for tools")
    return parser


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # Piped into head or less, which stopped reading: not an error. As Python's
        # documentation advises, stdout goes to devnull so that its flush at exit
        # cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
