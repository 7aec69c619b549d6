"""Fifty requests at once, on one event loop of the served FastAPI app, each
writing a post through its own AsyncSession and the receivers.

Each flush awaits the moderation receiver in its middle, so the requests' flushes
interleave on the loop (on SQLite, whose write lock one transaction holds at a
time, their transactions take turns). Of the fifty, ten are refused by
moderation and ten are dry runs (written, then rolled back): twenty requests
whose receivers ran, and whose work must leave no trace.

The witnesses: the audit log, whose lines receivers write in the request's
transaction, each naming the request (``X-Request-ID``) and the user of the
session the receiver was handed; and the e-mails, sent after each commit.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

import httpx
from sqlalchemy import Engine

from examples.tests.conftest import Api, Authors, audit_log, emails

REQUESTS = 50
USERS = {"alice": "alice@example.test", "bob": "bob@example.test"}


def kind(number: int) -> str:
    """What request ``number`` does: a fifth refused, a fifth dry runs, the rest publish."""
    return {0: "refused", 1: "dry run"}.get(number % 5, "published")


def user(number: int) -> str:
    return "alice" if number % 2 == 0 else "bob"


def title(number: int) -> str:
    # "lottery" is a word moderation refuses
    return f"Lottery post {number}" if kind(number) == "refused" else f"Concurrent post {number}"


async def send_all(clients: dict[str, Api]) -> list[httpx.Response]:
    """The fifty requests, all at once, each with its own request id."""
    limits = httpx.Limits(max_connections=REQUESTS)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        def write(number: int) -> Any:
            api = clients[user(number)]
            query = "?dry_run=true" if kind(number) == "dry run" else ""
            return client.post(
                f"{api.base_url}/posts{query}",
                headers={**api.headers, "X-Request-ID": f"req-{number}"},
                json={"title": title(number), "body": "At once.", "tags": ["news"]},
            )

        return list(await asyncio.gather(*(write(number) for number in range(REQUESTS))))


def test_fifty_concurrent_requests_announce_exactly_their_committed_changes(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    clients = {name: fastapi_app.log_in(name, f"{name}'s password") for name in USERS}
    lines_before = len(audit_log(engine))

    answers = asyncio.run(send_all(clients))

    expected_status = {"published": 201, "dry run": 200, "refused": 422}
    statuses = [answer.status_code for answer in answers]
    assert statuses == [expected_status[kind(n)] for n in range(REQUESTS)], [
        answer.text for answer in answers if answer.status_code >= 500
    ]
    published = {n: answers[n].json()["id"] for n in range(REQUESTS) if kind(n) == "published"}
    assert len(published) == 30

    # Every committed post: its two lines, written for its own request, by its
    # own user; no line for a refused or rolled-back request, none twice.
    lines_by_request: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for actor, action, subject, details in audit_log(engine)[lines_before:]:
        lines_by_request[details.pop("request")].append((actor, action, subject, details))
    expected_lines = {
        f"req-{n}": [
            (user(n), "created", f"post #{post_id} {title(n)!r}", {}),
            (user(n), "tagged", f"post #{post_id} {title(n)!r}", {"tags": ["news"]}),
        ]
        for n, post_id in published.items()
    }
    assert dict(lines_by_request) == expected_lines
    assert sum(len(lines) for lines in lines_by_request.values()) == 60

    # Every committed post announced once, to its author; nothing else.
    expected_emails = Counter((USERS[user(n)], f"Published: {title(n)!r}") for n in published)
    assert Counter(emails(engine)) == expected_emails
    assert len(emails(engine)) == 30
