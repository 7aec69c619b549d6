"""The Flask demo through its test client, on SQLite, PostgreSQL and MariaDB:
what its receivers write, and what they never write."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from sqlalchemy import Engine, MetaData, select
from sqlalchemy.orm import Session

from examples.blog.models import Comment, Post, User, outbox
from examples.flask_app import db
from examples.tests.conftest import Blog, Browser, audit_log, emails
from sa_signals.auth.credentials import CLEANSED_SUBSTITUTE


def outbox_events(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(outbox.c.id).order_by(outbox.c.id)))


def test_registering_logs_the_user_in_and_welcomes_them_by_email_after_the_commit(
    browser: Browser, engine: Engine
) -> None:
    registered = browser.submit(
        "/register",
        username="carol",
        email="carol@example.test",
        password="carol's password",
        confirm="carol's password",
    )

    assert registered.status_code == 302
    assert "carol" in browser.get("/").text  # logged in
    assert emails(engine) == [("carol@example.test", "Welcome, carol")]
    assert [line[:3] for line in audit_log(engine)] == [("carol", "logged in", "user 'carol'")]


def test_a_taken_username_is_refused_and_nobody_is_welcomed(
    browser: Browser, engine: Engine, blog: Blog
) -> None:
    refused = browser.submit(
        "/register", username="alice", email="x@example.test", password="p" * 8, confirm="p" * 8
    )

    assert refused.status_code == 200
    assert "That username is taken." in refused.text
    assert emails(engine) == []
    with Session(engine) as session:
        assert session.scalars(select(User.email).where(User.username == "alice")).all() == [
            "alice@example.test"
        ]


def test_a_failed_login_is_audited_with_the_password_cleansed(
    browser: Browser, engine: Engine, blog: Blog
) -> None:
    failed = browser.log_in("alice", "not alice's password")

    assert failed.status_code == 401
    assert audit_log(engine) == [
        (
            None,
            "login failed",
            "user 'alice'",
            {
                "credentials": {"username": "alice", "password": CLEANSED_SUBSTITUTE},
                "from": "127.0.0.1",
            },
        )
    ]
    assert "logged in" not in browser.get("/audit").text  # not logged in: sent to log in


def test_logging_in_and_out_is_audited_and_sets_last_login(
    browser: Browser, engine: Engine, blog: Blog
) -> None:
    assert browser.log_in("alice", "alice's password").status_code == 302
    page = browser.get("/audit").text
    assert browser.submit("/logout", page="/").status_code == 302

    assert "logged in" in page
    assert [line[:3] for line in audit_log(engine)] == [
        ("alice", "logged in", "user 'alice'"),
        ("alice", "logged out", "user 'alice'"),
    ]
    with Session(engine) as session:
        assert session.scalar(select(User.last_login).where(User.username == "alice")) is not None
    assert browser.get("/audit").status_code == 302  # logged out


def test_a_new_post_gets_a_slug_and_is_audited_with_its_tags(
    browser: Browser, engine: Engine, blog: Blog
) -> None:
    browser.log_in("alice", "alice's password")

    created = browser.submit("/posts/new", title="First post!", body="Again.", tags="b, a, b")

    assert created.status_code == 302
    with Session(engine) as session:
        post = session.scalars(select(Post).order_by(Post.id.desc()).limit(1)).one()
        assert (post.slug, [tag.name for tag in post.tags]) == ("first-post-2", ["a", "b"])
        assert created.headers["Location"] == f"/posts/{post.id}"
    assert audit_log(engine)[1:] == [
        ("alice", "created", f"post #{post.id} 'First post!'", {}),
        ("alice", "tagged", f"post #{post.id} 'First post!'", {"tags": ["a", "b"]}),
    ]


def test_editing_a_post_is_audited_with_the_old_and_new_values(
    browser: Browser, engine: Engine, blog: Blog
) -> None:
    browser.log_in("alice", "alice's password")

    edited = browser.submit(
        f"/posts/{blog.post_id}/edit", title="First post, edited", body="Hello.", tags="news"
    )

    assert edited.status_code == 302
    updated, tagged = audit_log(engine)[1:]
    assert updated[:3] == ("alice", "updated", f"post #{blog.post_id} 'First post, edited'")
    assert updated[3]["changes"]["title"] == ["First post", "First post, edited"]
    assert "body" not in updated[3]["changes"]  # unchanged, so not written
    assert tagged == ("alice", "tagged", updated[2], {"tags": ["news"]})
    assert "First post, edited" in browser.get("/audit").text


def test_deleting_a_post_deletes_its_comments_each_audited_with_the_post_as_origin(
    browser: Browser, engine: Engine, blog: Blog
) -> None:
    browser.log_in("alice", "alice's password")

    deleted = browser.submit(f"/posts/{blog.post_id}/delete", page=f"/posts/{blog.post_id}")

    assert deleted.status_code == 302
    post = f"post #{blog.post_id} 'First post'"
    assert sorted(audit_log(engine)[1:]) == sorted(
        [
            ("alice", "deleted", post, {}),
            (
                "alice",
                "deleted",
                f"comment #{blog.comment_id} on post #{blog.post_id}",
                {"deleted with": post},
            ),
        ]
    )
    with Session(engine) as session:
        assert session.scalars(select(Comment)).all() == []


def test_a_comment_emails_the_post_author_after_the_commit_but_not_their_own(
    browser: Browser, engine: Engine, blog: Blog
) -> None:
    browser.log_in("bob", "bob's password")
    browser.submit(f"/posts/{blog.post_id}/comments", page=f"/posts/{blog.post_id}", body="Nice.")
    browser.submit("/logout", page="/")
    browser.log_in("alice", "alice's password")
    browser.submit(f"/posts/{blog.post_id}/comments", page=f"/posts/{blog.post_id}", body="Thanks.")

    assert emails(engine) == [("alice@example.test", "New comment on 'First post'")]
    assert "New comment on" in browser.get("/emails").text
    # Every comment's event went through the outbox of the background receiver, and out.
    with Session(engine) as session:
        assert session.scalars(select(outbox.c.id).where(outbox.c.sent_at.is_(None))).all() == []


def test_a_post_written_then_rolled_back_leaves_no_audit_line_and_no_email(
    browser: Browser, engine: Engine, blog: Blog
) -> None:
    browser.log_in("alice", "alice's password")
    before = audit_log(engine)

    answer = browser.submit("/posts/new", title="Draft", body="...", tags="x", roll_back="y")

    assert answer.status_code == 302
    assert "rolled back" in browser.get("/posts/new").text
    assert audit_log(engine) == before
    assert emails(engine) == []
    with Session(engine) as session:
        assert session.scalars(select(Post.title)).all() == ["First post"]


def test_a_request_that_fails_after_its_flush_leaves_no_audit_line_and_no_email(
    app: Flask, browser: Browser, engine: Engine, blog: Blog
) -> None:
    @app.post("/comment-then-fail")
    def comment_then_fail() -> str:
        db.session.add(Comment(post_id=blog.post_id, author_id=blog.alice_id, body="lost"))
        db.session.flush()  # post_save: the audit line is added; the e-mail waits
        raise RuntimeError("the request fails after its flush")

    events_before = outbox_events(engine)
    with pytest.raises(RuntimeError, match="after its flush"):
        browser.submit("/comment-then-fail", page="/login")

    assert audit_log(engine) == []  # Flask-SQLAlchemy rolled the request's session back
    assert emails(engine) == []
    assert outbox_events(engine) == events_before  # the comment's event went with it
    with Session(engine) as session:
        assert session.scalars(select(Comment.body)).all() == ["Hi!"]


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    browser: Browser, engine: Engine, blog: Blog
) -> None:
    browser.log_in("alice", "alice's password")

    forged = browser.post(f"/posts/{blog.post_id}/delete")

    assert forged.status_code == 400
    with Session(engine) as session:
        assert session.get(Post, blog.post_id) is not None


def test_the_session_cookie_is_secure_http_only_and_same_site(browser: Browser, blog: Blog) -> None:
    logged_in = browser.log_in("alice", "alice's password")

    cookie = logged_in.headers["Set-Cookie"]
    assert "; Secure" in cookie
    assert "; HttpOnly" in cookie
    assert "; SameSite=Lax" in cookie


def test_passwords_are_never_logged_nor_stored_in_clear(
    browser: Browser, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    password = "a very secret password"
    caplog.set_level(logging.DEBUG)

    browser.submit(
        "/register", username="dave", email="d@example.test", password=password, confirm=password
    )
    browser.submit("/logout", page="/")
    browser.log_in("dave", password + " with a typo")
    browser.log_in("dave", password)

    assert [line[1] for line in audit_log(engine)] == [
        "logged in",
        "logged out",
        "login failed",
        "logged in",
    ]
    assert password not in caplog.text
    everything = MetaData()
    everything.reflect(engine)
    with engine.connect() as connection:
        for table in everything.sorted_tables:
            for row in connection.execute(table.select()):
                assert password not in str(row), f"{table.name} holds the password"


def test_only_a_post_author_may_edit_or_delete_it(browser: Browser, blog: Blog) -> None:
    browser.log_in("bob", "bob's password")

    assert browser.get(f"/posts/{blog.post_id}/edit").status_code == 403
    page = f"/posts/{blog.post_id}"
    assert browser.submit(f"{page}/delete", page=page).status_code == 403
    assert "Delete this post" not in browser.get(page).text


@pytest.mark.parametrize("page", ["/posts/new", "/audit", "/emails"])
def test_visitors_are_sent_to_log_in_first(browser: Browser, page: str) -> None:
    answer = browser.get(page)

    assert (answer.status_code, answer.headers["Location"]) == (302, "/login")
