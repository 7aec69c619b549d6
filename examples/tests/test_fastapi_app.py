"""The FastAPI demo, served by uvicorn as ``python -m examples.fastapi_app`` serves
it, on each demo database through its async driver: aiosqlite, asyncpg, aiomysql.

The witnesses are the demo's own tables, read here with a sync session: the
audit log (written by receivers in the request's transaction) and the e-mails
(sent by receivers after the commit, or by the background receiver).
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from examples.blog.models import AuditEntry, Email, Post, outbox
from examples.tests.conftest import Api, Authors, audit_log, emails
from tests.databases import Database


def posts(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(Post.title).order_by(Post.id)))


def count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_the_app_reaches_each_database_through_its_async_driver(
    fastapi_app: Api, demo_database: Database
) -> None:
    """``DATABASE_URL`` is the one Alembic migrated, with its sync driver; the app
    talks to the same database through the async one."""
    expected = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
    driver = expected.get(demo_database.backend, "mysql+aiomysql")
    assert fastapi_app.log is not None
    assert f"on {driver}://" in fastapi_app.log.read_text()


# -- writing, and what the receivers make of it --------------------------------------------------


def test_a_new_post_is_audited_in_its_transaction_and_announced_after_the_commit(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    alice = fastapi_app.log_in("alice", "alice's password")

    answer = alice.request(
        "POST",
        "/posts",
        request_id="req-1",
        json={"title": "Async signals", "body": "Awaited.", "tags": ["async", "fresh"]},
    )

    assert answer.status_code == 201, answer.text
    post = answer.json()
    assert (post["slug"], post["author"], post["tags"]) == (
        "async-signals",
        "alice",
        ["async", "fresh"],
    )
    subject = f"post #{post['id']} 'Async signals'"
    assert audit_log(engine)[-2:] == [
        ("alice", "created", subject, {"request": "req-1"}),
        ("alice", "tagged", subject, {"tags": ["async", "fresh"], "request": "req-1"}),
    ]
    assert emails(engine) == [("alice@example.test", "Published: 'Async signals'")]


def test_a_post_that_moderation_refuses_is_a_422_with_nothing_written(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    """The moderation receiver, an ``async def`` awaited during the flush, raises:
    the flush is aborted, the transaction rolled back, and the client told why."""
    alice = fastapi_app.log_in("alice", "alice's password")
    lines_before = audit_log(engine)

    answer = alice.request(
        "POST", "/posts", json={"title": "Casino night", "body": "Come!", "tags": ["new tag"]}
    )

    assert answer.status_code == 422
    assert answer.json() == {"detail": "The post was refused: it mentions casino."}
    assert posts(engine) == ["Alice writes", "Bob writes"]
    assert audit_log(engine) == lines_before
    assert emails(engine) == []


def test_bad_input_is_a_422_before_anything_is_written(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    alice = fastapi_app.log_in("alice", "alice's password")
    lines_before = audit_log(engine)
    bad = [
        {"title": "", "body": "An empty title."},
        {"title": "Fine", "body": "A tag too long.", "tags": ["ok", "x" * 51]},
        {"title": "Fine", "body": "A field the API does not know.", "author": "bob"},
    ]

    answers = [alice.request("POST", "/posts", json=post) for post in bad]
    # One good edit and one bad one: the whole request is refused.
    bulk = alice.request(
        "PATCH",
        "/posts",
        json=[{"id": authors.alice_post_id, "title": "Good"}, {"id": "two", "title": "Bad"}],
    )

    twice = alice.request(
        "PATCH",
        "/posts",
        json=[
            {"id": authors.alice_post_id, "title": "One"},
            {"id": authors.alice_post_id, "title": "Two"},
        ],
    )

    assert [answer.status_code for answer in [*answers, bulk, twice]] == [422] * 5
    assert posts(engine) == ["Alice writes", "Bob writes"]
    assert audit_log(engine) == lines_before
    assert emails(engine) == []


def test_a_dry_run_writes_the_post_runs_the_receivers_and_rolls_it_all_back(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    alice = fastapi_app.log_in("alice", "alice's password")
    lines_before = audit_log(engine)

    answer = alice.request(
        "POST", "/posts?dry_run=true", json={"title": "Draft", "body": "Maybe.", "tags": ["news"]}
    )

    assert answer.status_code == 200
    assert answer.json()["slug"] == "draft"  # the pre_save receiver ran, at the flush
    assert posts(engine) == ["Alice writes", "Bob writes"]
    assert audit_log(engine) == lines_before  # post_save's lines went with the rollback
    assert emails(engine) == []  # and the deferred receiver never ran


def test_an_edit_is_audited_with_each_old_and_new_value(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    alice = fastapi_app.log_in("alice", "alice's password")

    answer = alice.request(
        "PATCH", f"/posts/{authors.alice_post_id}", json={"title": "Alice rewrites"}
    )

    assert answer.status_code == 200, answer.text
    actor, action, subject, details = audit_log(engine)[-1]
    assert (actor, action, subject) == (
        "alice",
        "updated",
        f"post #{authors.alice_post_id} 'Alice rewrites'",
    )
    changes = details["changes"]
    assert changes["title"] == ["Alice writes", "Alice rewrites"]
    assert changes["updated_at"][0] is None  # set by the UPDATE's onupdate, read back
    assert changes["updated_at"][1] == answer.json()["updated_at"].replace("Z", "+00:00")


def test_only_its_author_changes_a_post(fastapi_app: Api, engine: Engine, authors: Authors) -> None:
    bob = fastapi_app.log_in("bob", "bob's password")
    lines_before = audit_log(engine)

    answer = bob.request("PATCH", f"/posts/{authors.alice_post_id}", json={"title": "Mine now"})

    assert answer.status_code == 403
    assert posts(engine) == ["Alice writes", "Bob writes"]
    assert audit_log(engine) == lines_before


# -- a bulk UPDATE -----------------------------------------------------------------------------


def test_a_bulk_edit_is_one_update_audited_for_each_post_it_updated(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    """One UPDATE by primary key for both posts: no pre_save/post_save, but
    pre_bulk_update (which checks they are alice's) and post_bulk_update, with
    the keys of the rows updated (asked of the database on asyncpg, which cannot
    count an executemany's rows)."""
    alice = fastapi_app.log_in("alice", "alice's password")
    second = alice.request("POST", "/posts", json={"title": "Second", "body": "Again."}).json()

    answer = alice.request(
        "PATCH",
        "/posts",
        request_id="bulk-1",
        json=[
            {"id": authors.alice_post_id, "title": "First, retitled"},
            {"id": second["id"], "title": "Second, retitled"},
        ],
    )

    assert answer.status_code == 200, answer.text
    assert [post["title"] for post in answer.json()] == ["First, retitled", "Second, retitled"]
    assert posts(engine) == ["First, retitled", "Bob writes", "Second, retitled"]
    assert audit_log(engine)[-2:] == [
        ("alice", "updated in bulk", f"post #{authors.alice_post_id}", {"request": "bulk-1"}),
        ("alice", "updated in bulk", f"post #{second['id']}", {"request": "bulk-1"}),
    ]


def test_a_bulk_edit_of_someone_elses_post_is_stopped_before_the_update(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    """pre_bulk_update refuses: the statement never runs, and nothing is written."""
    bob = fastapi_app.log_in("bob", "bob's password")
    lines_before = audit_log(engine)

    answer = bob.request(
        "PATCH",
        "/posts",
        json=[
            {"id": authors.bob_post_id, "title": "Bob's, retitled"},
            {"id": authors.alice_post_id, "title": "Alice's, taken"},
        ],
    )

    assert answer.status_code == 403
    assert answer.json() == {"detail": f"Posts [{authors.alice_post_id}] are not yours to change."}
    assert posts(engine) == ["Alice writes", "Bob writes"]
    assert audit_log(engine) == lines_before


def test_a_bulk_edit_is_moderated_too(fastapi_app: Api, engine: Engine, authors: Authors) -> None:
    """A bulk UPDATE sends no pre_save: the route puts the titles to moderation itself."""
    alice = fastapi_app.log_in("alice", "alice's password")

    answer = alice.request(
        "PATCH", "/posts", json=[{"id": authors.alice_post_id, "title": "Lottery results"}]
    )

    assert answer.status_code == 422
    assert posts(engine) == ["Alice writes", "Bob writes"]


# -- comments: the background receiver, through the outbox -------------------------------------


def test_a_comment_emails_the_posts_author_through_the_outbox(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    """Without a broker the task runs in the app's process right after the commit
    (eager mode), still written to the outbox at the flush and published from it."""
    bob = fastapi_app.log_in("bob", "bob's password")

    answer = bob.request(
        "POST", f"/posts/{authors.alice_post_id}/comments", json={"body": "Nice post."}
    )

    assert answer.status_code == 201, answer.text
    assert emails(engine) == [("alice@example.test", "New comment on 'Alice writes'")]
    with Session(engine) as session:
        sent = session.execute(select(outbox.c.task, outbox.c.sent_at)).all()
    assert [(task, sent_at is not None) for task, sent_at in sent] == [
        ("examples.fastapi_app.tasks.tell_the_author_about_a_comment", True)
    ]


def test_deleting_a_post_deletes_its_comments_each_with_its_own_audit_line(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    bob = fastapi_app.log_in("bob", "bob's password")
    comment = bob.request(
        "POST", f"/posts/{authors.alice_post_id}/comments", json={"body": "First!"}
    ).json()
    alice = fastapi_app.log_in("alice", "alice's password")

    answer = alice.request("DELETE", f"/posts/{authors.alice_post_id}")

    assert answer.status_code == 204
    post = f"post #{authors.alice_post_id} 'Alice writes'"
    assert [line[:3] for line in audit_log(engine)[-2:]] == [
        ("alice", "deleted", f"comment #{comment['id']} on post #{authors.alice_post_id}"),
        ("alice", "deleted", post),
    ]
    assert audit_log(engine)[-2][3]["deleted with"] == post


# -- accounts ------------------------------------------------------------------------------------


def test_registering_sends_the_welcome_email_after_the_commit(
    fastapi_app: Api, engine: Engine
) -> None:
    answer = fastapi_app.request(
        "POST",
        "/users",
        json={"username": "carol", "email": "carol@example.test", "password": "carol's password"},
    )
    taken = fastapi_app.request(
        "POST",
        "/users",
        json={"username": "carol", "email": "other@example.test", "password": "another one"},
    )

    assert answer.status_code == 201, answer.text
    assert taken.status_code == 409
    assert emails(engine) == [("carol@example.test", "Welcome, carol")]


def test_logins_are_audited_and_a_failed_ones_password_is_masked(
    fastapi_app: Api, engine: Engine, authors: Authors
) -> None:
    failed = fastapi_app.request("POST", "/login", json={"username": "alice", "password": "guess"})
    fastapi_app.log_in("alice", "alice's password")

    assert failed.status_code == 401
    (attempt, login) = [line[:4] for line in audit_log(engine)[-2:]]
    assert attempt[:3] == (None, "login failed", "user 'alice'")
    assert attempt[3]["credentials"] == {"username": "alice", "password": "********************"}
    assert login[:3] == ("alice", "logged in", "user 'alice'")


def test_writing_needs_a_valid_token(fastapi_app: Api, engine: Engine, authors: Authors) -> None:
    anonymous = fastapi_app.request("POST", "/posts", json={"title": "Hi", "body": "Me."})
    forged = Api(fastapi_app.base_url, token="MQ.forged.token").request(
        "POST", "/posts", json={"title": "Hi", "body": "Me."}
    )

    assert (anonymous.status_code, forged.status_code) == (401, 401)
    assert count(engine, AuditEntry) == count(engine, Email) == 0
