"""The demo's wiring, shown two ways: its Receivers page, through Flask's test
client, and ``python -m sa_signals receivers`` on the demo, in a process of its
own. Both answer "which receivers run when a post is saved?"."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser

from examples.flask_app.wiring import RUNS
from examples.tests.conftest import ROOT, Blog, Visitor
from sa_signals import list_receivers

TASK = "examples.flask_app.tasks.tell_the_author_about_a_comment"

# The demo's receivers, each as (signal, sender's name, receiver, how it runs).
SLUG = ("sa_signals.pre_save", "Post", "give_new_posts_a_slug", "sync")
AUDIT_LOG = ("sa_signals.post_save", "Post", "audit_save", "sync")
TAG_AUDIT = ("sa_signals.m2m_changed", "post_tags", "audit_tags", "sync")
WELCOME = ("sa_signals.post_save", "User", "welcome_new_user", "on_commit")
PUBLISHED = ("sa_signals.post_save", "Post", "confirm_publication", "on_commit")
COMMENT_EMAIL = ("sa_signals.post_save", "Comment", "tell_the_author_about_a_comment", "background")
LAST_LOGIN = ("sa_signals.auth.user_logged_in", "any", "update_last_login", "sync")
DEMO = (SLUG, AUDIT_LOG, TAG_AUDIT, WELCOME, PUBLISHED, COMMENT_EMAIL, LAST_LOGIN)


@dataclass(frozen=True)
class Row:
    """A receiver as the page shows it."""

    signal: str
    sender: str
    receiver: str
    runs: str
    held: str
    defined_at: str
    details: tuple[str, ...]  # its task and dispatch_uid, in small print beneath its name


class Rows(HTMLParser):
    """The receivers table of the page, a Row for each line, under the heading of
    the signal it belongs to."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self._signal = ""
        self._cells: list[str] = []
        self._details: list[str] = []
        self._text: list[str] | None = None  # of the heading or cell being read
        self._small: list[str] | None = None  # of the small print being read
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "td"):
            self._text = []
        elif tag == "small":
            self._small = []
        elif tag == "tr":
            self._cells, self._details = [], []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._signal, self._text = self._read(self._text), None
        elif tag == "small":
            self._details.append(self._read(self._small))
            self._small = None
        elif tag == "td":
            self._cells.append(self._read(self._text))
            self._text = None
        elif tag == "tr" and self._cells:
            self.rows.append(Row(self._signal, *self._cells, details=tuple(self._details)))

    def handle_data(self, data: str) -> None:
        if self._small is not None:
            self._small.append(data)
        elif self._text is not None:
            self._text.append(data)

    @staticmethod
    def _read(text: list[str] | None) -> str:
        return " ".join("".join(text or []).split())


def receivers_page(visitor: Visitor) -> list[Row]:
    page = visitor.get("/receivers")
    assert page.status_code == 200
    return Rows(page.text).rows


def test_the_page_shows_the_demos_receivers_under_their_signals(
    visitor: Visitor, blog: Blog
) -> None:
    visitor.log_in("alice", "alice's password")

    rows = receivers_page(visitor)

    shown = [(row.signal, row.sender, row.receiver, row.runs) for row in rows]
    in_words = [(signal, sender, name, RUNS[runs]) for signal, sender, name, runs in DEMO]
    for receiver in in_words:
        assert receiver in shown
    welcome, published, comment_email = in_words[3:6]
    assert shown.index(welcome) < shown.index(published) < shown.index(comment_email)
    (background,) = [row for row in rows if row.receiver == "tell_the_author_about_a_comment"]
    assert background.held == "strongly"  # task_receiver() connects its outbox writer so
    assert background.details == (f"task {TASK}", f"dispatch_uid {TASK}")
    assert background.defined_at.startswith("examples/flask_app/tasks.py:")


def test_the_page_shows_every_connected_receiver_in_the_order_a_send_calls_them(
    visitor: Visitor, blog: Blog
) -> None:
    visitor.log_in("alice", "alice's password")

    rows = receivers_page(visitor)

    assert [(row.signal, row.receiver) for row in rows] == [
        (each.signal, each.receiver) for each in list_receivers()
    ]


def test_the_page_is_for_a_logged_in_user_and_in_their_navigation(
    visitor: Visitor, blog: Blog
) -> None:
    anonymous = visitor.get("/receivers")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == "/login"
    assert 'href="/receivers"' not in visitor.get("/").text

    visitor.log_in("alice", "alice's password")

    assert 'href="/receivers"' in visitor.get("/").text


def test_the_command_lists_the_demos_receivers_when_it_imports_the_app() -> None:
    def command(*options: str) -> str:
        listed = subprocess.run(
            [
                sys.executable,
                "-m",
                "sa_signals",
                "receivers",
                "--app",
                "examples.flask_app",
                *options,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert (listed.returncode, listed.stderr) == (0, "")
        return listed.stdout

    listed = [
        (
            row["signal"],
            (row["sender"] or "any").rpartition(".")[2],
            row["receiver"],
            row["delivery"],
        )
        for row in json.loads(command("--json"))
    ]
    for receiver in DEMO:
        assert receiver in listed

    as_text = command("--signal", "post_save", "--sender", "Comment").splitlines()
    assert as_text[0] == "sa_signals.post_save"
    assert as_text[1].split() == ["Sender", "Receiver", "Runs", "Ref", "Defined", "at"]
    assert [line.split()[:4] for line in as_text[2:]] == [
        ["examples.blog.models.Comment", "audit_save", "sync", "weak"],
        ["examples.blog.models.Comment", "tell_the_author_about_a_comment", "background", "strong"],
        ["task:", TASK],
        ["dispatch_uid:", repr(TASK)],
    ]
