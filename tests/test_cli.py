"""``python -m sa_signals receivers``, run as a user runs it: in a process of its
own, from the project's directory, on the small application of
``tests/listing_app``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

ROOT = Path(__file__).resolve().parents[1]
RECEIVERS = ROOT / "tests" / "listing_app" / "receivers.py"
APP = "tests.listing_app:create_app"


def sa_signals(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sa_signals", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def first_lines() -> dict[str, int]:
    """Where each function of the application's receivers.py starts (at its first
    decorator, as ``inspect`` has it), read from its source: importing it would
    connect its receivers in this process too."""
    functions = ast.walk(ast.parse(RECEIVERS.read_text()))
    return {
        node.name: min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
        for node in functions
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_every_receiver_is_printed_under_its_signal_in_the_order_a_send_calls_them() -> None:
    listed = sa_signals("receivers", "--app", APP)

    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
    assert listed.stdout == dedent(
        """\
        sa_signals.post_save
          Sender                          Receiver              Runs        Ref     Defined at
          tests.listing_app.models.Order  audit                 sync        weak    tests/listing_app/receivers.py:{audit}
          tests.listing_app.models.Order  email_the_customer    on commit   weak    tests/listing_app/receivers.py:{email_the_customer}
          tests.listing_app.models.Order  invoice               background  strong  tests/listing_app/receivers.py:{invoice}
                                            task: tests.listing_app.receivers.invoice
                                            dispatch_uid: 'tests.listing_app.receivers.invoice'

        tests.listing_app.signals.order_shipped
          Sender                          Receiver              Runs        Ref     Defined at
          (any)                           notify_the_warehouse  async       weak    tests/listing_app/receivers.py:{notify_the_warehouse}
          carrier                         track_the_parcel      sync        strong  tests/listing_app/receivers.py:{track_the_parcel}
                                            dispatch_uid: 'tracking'
          tests.listing_app.models.Order  Ledger.record         sync        weak    tests/listing_app/receivers.py:{record}
          (any)                           log_the_shipment      sync        weak    tests/listing_app/receivers.py:{log_the_shipment}
                                            dispatch_uid: 'shipment log'
        """  # noqa: E501  (the command's output, as wide as it is printed)
    ).format(**first_lines())


def test_json_gives_every_field_of_every_receiver_for_tools() -> None:
    listed = sa_signals("receivers", "--app", APP, "--json")

    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(row["signal"].rpartition(".")[2], row["receiver"]) for row in rows] == [
        ("post_save", "audit"),
        ("post_save", "email_the_customer"),
        ("post_save", "invoice"),
        ("order_shipped", "notify_the_warehouse"),
        ("order_shipped", "track_the_parcel"),
        ("order_shipped", "Ledger.record"),
        ("order_shipped", "log_the_shipment"),
    ]
    assert rows[2] == {
        "signal": "sa_signals.post_save",
        "sender": "tests.listing_app.models.Order",
        "receiver": "invoice",
        "module": "tests.listing_app.receivers",
        "file": str(RECEIVERS),
        "line": first_lines()["invoice"],
        "weak": False,
        "dispatch_uid": "tests.listing_app.receivers.invoice",
        "delivery": "background",
        "task": "tests.listing_app.receivers.invoice",
    }


def test_an_app_module_is_imported_and_a_factory_is_called_too() -> None:
    imported = sa_signals("receivers", "--app", "tests.listing_app.receivers", "--json")
    made = sa_signals("receivers", "--app", "tests.listing_app:create_app", "--json")

    def names(listed: subprocess.CompletedProcess[str]) -> list[str]:
        assert listed.returncode == 0, listed.stderr
        return [row["receiver"] for row in json.loads(listed.stdout)]

    assert "log_the_shipment" not in names(imported)
    assert names(made) == [*names(imported), "log_the_shipment"]  # connected by create_app()


def test_a_signal_is_chosen_by_its_name_or_full_name() -> None:
    by_name = sa_signals("receivers", "--app", APP, "--signal", "order_shipped", "--json")
    by_full_name = sa_signals(
        "receivers", "--app", APP, "--signal", "tests.listing_app.signals.order_shipped", "--json"
    )

    assert by_name.returncode == by_full_name.returncode == 0
    assert by_name.stdout == by_full_name.stdout
    assert {row["signal"] for row in json.loads(by_name.stdout)} == {
        "tests.listing_app.signals.order_shipped"
    }


def test_a_sender_shows_its_own_receivers_and_those_of_any_sender() -> None:
    by_name = sa_signals("receivers", "--app", APP, "--sender", "Order", "--json")
    by_path = sa_signals("receivers", "--app", APP, "--sender", "models.Order", "--json")

    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout == by_path.stdout
    assert [(row["sender"], row["receiver"]) for row in json.loads(by_name.stdout)] == [
        ("tests.listing_app.models.Order", "audit"),
        ("tests.listing_app.models.Order", "email_the_customer"),
        ("tests.listing_app.models.Order", "invoice"),
        (None, "notify_the_warehouse"),
        ("tests.listing_app.models.Order", "Ledger.record"),
        (None, "log_the_shipment"),
    ]  # not track_the_parcel: it is connected for the sender "carrier"


def test_a_sender_without_receivers_of_its_own_is_said_so() -> None:
    listed = sa_signals("receivers", "--app", APP, "--sender", "Customer", "--json")

    assert listed.returncode == 0
    assert listed.stderr == (
        "python -m sa_signals receivers: note: no receiver is connected for a sender named "
        "'Customer'; listed are those of any sender.\n"
    )
    assert [row["sender"] for row in json.loads(listed.stdout)] == [None, None]


def test_nothing_connected_is_said_so() -> None:
    nothing = sa_signals("receivers", "--app", "tests.listing_app")  # create_app() not called
    nothing_here = sa_signals("receivers", "--app", APP, "--signal", "pre_delete")

    assert (nothing.returncode, nothing.stdout) == (0, "No receivers are connected.\n")
    assert (nothing_here.returncode, nothing_here.stdout) == (0, "No connected receiver matches.\n")


def refused(listed: subprocess.CompletedProcess[str]) -> str:
    """The one line of a refused command line, after checking it is one, with
    argparse's exit status 2 and no traceback."""
    assert (listed.returncode, listed.stdout) == (2, "")
    assert listed.stderr.count("\n") == 1, listed.stderr
    return listed.stderr.removeprefix("python -m sa_signals receivers: error: ").rstrip("\n")


def test_an_app_that_cannot_be_imported_is_named_in_one_line() -> None:
    assert refused(sa_signals("receivers", "--app", "tests.no_such_app")) == (
        "cannot import --app 'tests.no_such_app': No module named 'tests.no_such_app'"
    )


def test_a_missing_factory_is_named_in_one_line() -> None:
    assert refused(sa_signals("receivers", "--app", "tests.listing_app:make_app")) == (
        "--app tests.listing_app:make_app: module 'tests.listing_app' has no attribute 'make_app'"
    )


def test_a_factory_that_needs_arguments_is_refused_before_it_is_called() -> None:
    assert refused(sa_signals("receivers", "--app", "textwrap:dedent")) == (
        "--app textwrap:dedent: dedent() cannot be called without arguments"
    )


def test_a_malformed_app_is_refused() -> None:
    assert refused(sa_signals("receivers", "--app", "tests.listing_app:")) == (
        "--app takes MODULE or MODULE:FACTORY (such as shop.app:create_app), "
        "not 'tests.listing_app:'"
    )


def test_an_unknown_signal_is_refused_with_the_closest_name() -> None:
    assert refused(sa_signals("receivers", "--app", APP, "--signal", "order_shiped")) == (
        "--signal order_shiped: no signal has that name; did you mean order_shipped?"
    )


def test_the_app_is_required() -> None:
    listed = sa_signals("receivers")

    assert listed.returncode == 2
    assert "the following arguments are required: --app" in listed.stderr


def test_a_module_the_app_itself_cannot_import_keeps_its_traceback() -> None:
    listed = sa_signals("receivers", "--app", "tests.listing_app.needs_a_missing_dependency")

    assert listed.returncode == 1
    assert "Traceback" in listed.stderr
    assert "No module named 'sa_signals_test_no_such_dependency'" in listed.stderr


def test_what_the_app_prints_while_starting_stays_out_of_the_json() -> None:
    listed = sa_signals("receivers", "--app", "tests.listing_app.chatty", "--json")

    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)  # nothing but the listing
    assert "Starting the shop..." in listed.stderr


def test_an_app_object_after_the_colon_is_not_called_and_says_so() -> None:
    listed = sa_signals("receivers", "--app", "textwrap:TextWrapper")

    assert listed.returncode == 0
    assert "TextWrapper is a type, not a function: not called." in listed.stderr
