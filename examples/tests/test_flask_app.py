"""The Flask demo through its test client, on SQLite, PostgreSQL and MariaDB:
what its receivers write, and what they never write."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, MetaData, make_url, select
from sqlalchemy.orm import Session

from examples.blog.models import Comment, Post, User, outbox
from examples.flask_app import create_app, db
from examples.tests.conftest import Blog, Visitor, alembic, audit_log, emails
from sa_signals.auth.credentials import CLEANSED_SUBSTITUTE


def outbox_events(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(outbox.c.id).order_by(outbox.c.id)))


def test_registering_logs_the_user_in_and_welcomes_them_by_email_after_the_commit(
    visitor: Visitor, engine: Engine
) -> None:
    registered = visitor.submit(
        "/register",
        username="carol",
        email="carol@example.test",
        password="carol's password",
        confirm="carol's password",
    )

    assert registered.status_code == 302
    assert "carol" in visitor.get("/").text  # logged in
    assert emails(engine) == [("carol@example.test", "Welcome, carol")]
    assert [line[:3] for line in audit_log(engine)] == [("carol", "logged in", "user 'carol'")]


def test_a_taken_username_is_refused_and_nobody_is_welcomed(
    visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    refused = visitor.submit(
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
    visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    failed = visitor.log_in("alice", "not alice's password")

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
    assert "logged in" not in visitor.get("/audit").text  # not logged in: sent to log in


def test_logging_in_and_out_is_audited_and_sets_last_login(
    visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    assert visitor.log_in("alice", "alice's password").status_code == 302
    page = visitor.get("/audit").text
    assert visitor.submit("/logout", page="/").status_code == 302

    assert "logged in" in page
    assert [line[:3] for line in audit_log(engine)] == [
        ("alice", "logged in", "user 'alice'"),
        ("alice", "logged out", "user 'alice'"),
    ]
    with Session(engine) as session:
        assert session.scalar(select(User.last_login).where(User.username == "alice")) is not None
    assert visitor.get("/audit").status_code == 302  # logged out


def test_a_new_post_gets_a_slug_and_is_audited_with_its_tags(
    visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    visitor.log_in("alice", "alice's password")

    created = visitor.submit("/posts/new", title="First post!", body="Again.", tags="b, a, b")

    assert created.status_code == 302
    with Session(engine) as session:
        post = session.scalars(select(Post).order_by(Post.id.desc()).limit(1)).one()
        assert (post.slug, [tag.name for tag in post.tags]) == ("first-post-2", ["a", "b"])
        assert created.headers["Location"] == f"/posts/{post.id}"
    assert audit_log(engine)[1:] == [
        ("alice", "created", f"post #{post.id} 'First post!'", {}),
        ("alice", "tagged", f"post #{post.id} 'First post!'", {"tags": ["a", "b"]}),
    ]
    assert emails(engine) == [("alice@example.test", "Published: 'First post!'")]


def test_editing_a_post_is_audited_with_the_old_and_new_values(
    visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    visitor.log_in("alice", "alice's password")

    edited = visitor.submit(
        f"/posts/{blog.post_id}/edit", title="First post, edited", body="Hello.", tags="news"
    )
    untagged = visitor.submit(
        f"/posts/{blog.post_id}/edit", title="First post, edited", body="Hello.", tags=""
    )

    assert (edited.status_code, untagged.status_code) == (302, 302)
    updated, tagged, untagging = audit_log(engine)[1:]
    assert untagging == ("alice", "untagged", updated[2], {"tags": ["news"]})
    assert updated[:3] == ("alice", "updated", f"post #{blog.post_id} 'First post, edited'")
    assert updated[3]["changes"]["title"] == ["First post", "First post, edited"]
    assert "body" not in updated[3]["changes"]  # unchanged, so not written
    assert tagged == ("alice", "tagged", updated[2], {"tags": ["news"]})
    assert "First post, edited" in visitor.get("/audit").text


def test_deleting_a_post_deletes_its_comments_each_audited_with_the_post_as_origin(
    visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    visitor.log_in("alice", "alice's password")

    deleted = visitor.submit(f"/posts/{blog.post_id}/delete", page=f"/posts/{blog.post_id}")

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


def test_the_background_receiver_runs_on_the_database_of_the_app_that_committed(
    visitor: Visitor, engine: Engine, blog: Blog, tmp_path: Path
) -> None:
    """Two apps in one process, as in a test suite: the task of a comment made in
    the first runs on the first's database, not on the one made last."""
    other_url = make_url(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    alembic(other_url, "upgrade", "head")
    other = create_app({"SECRET_KEY": "other", "SQLALCHEMY_DATABASE_URI": str(other_url)})
    try:
        visitor.log_in("bob", "bob's password")
        visitor.submit(f"/posts/{blog.post_id}/comments", page=f"/posts/{blog.post_id}", body="Hi")
    finally:
        with other.app_context():
            db.engine.dispose()

    assert emails(engine) == [("alice@example.test", "New comment on 'First post'")]


def test_a_comment_emails_the_post_author_after_the_commit_but_not_their_own(
    visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    visitor.log_in("bob", "bob's password")
    visitor.submit(f"/posts/{blog.post_id}/comments", page=f"/posts/{blog.post_id}", body="Nice.")
    visitor.submit("/logout", page="/")
    visitor.log_in("alice", "alice's password")
    visitor.submit(f"/posts/{blog.post_id}/comments", page=f"/posts/{blog.post_id}", body="Thanks.")

    assert emails(engine) == [("alice@example.test", "New comment on 'First post'")]
    assert "New comment on" in visitor.get("/emails").text  # alice's
    visitor.submit("/logout", page="/")
    visitor.log_in("bob", "bob's password")
    assert "New comment on" not in visitor.get("/emails").text  # not bob's
    # Every comment's event went through the outbox of the background receiver, and out.
    with Session(engine) as session:
        assert session.scalars(select(outbox.c.id).where(outbox.c.sent_at.is_(None))).all() == []


def test_a_post_written_then_rolled_back_leaves_no_audit_line_and_no_email(
    visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    visitor.log_in("alice", "alice's password")
    before = audit_log(engine)

    answer = visitor.submit("/posts/new", title="Draft", body="...", tags="x", roll_back="y")

    assert answer.status_code == 302
    assert "rolled back" in visitor.get("/posts/new").text
    assert audit_log(engine) == before
    assert emails(engine) == []  # committed, a post is announced to its author
    with Session(engine) as session:
        assert session.scalars(select(Post.title)).all() == ["First post"]


def test_a_request_that_fails_after_its_flush_leaves_no_audit_line_and_no_email(
    app: Flask, visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    @app.post("/comment-then-fail")
    def comment_then_fail() -> str:
        # bob on alice's post: committed, this would e-mail alice
        db.session.add(Comment(post_id=blog.post_id, author_id=blog.bob_id, body="lost"))
        db.session.flush()  # post_save: the audit line is added; the e-mail waits
        raise RuntimeError("the request fails after its flush")

    events_before = outbox_events(engine)
    with pytest.raises(RuntimeError, match="after its flush"):
        visitor.submit("/comment-then-fail", page="/login")

    assert audit_log(engine) == []  # Flask-SQLAlchemy rolled the request's session back
    assert emails(engine) == []
    assert outbox_events(engine) == events_before  # the comment's event went with it
    with Session(engine) as session:
        assert session.scalars(select(Comment.body)).all() == ["Hi!"]


def test_a_user_rolled_back_after_its_flush_is_never_welcomed(
    app: Flask, visitor: Visitor, engine: Engine
) -> None:
    @app.post("/register-then-fail")
    def register_then_fail() -> str:
        db.session.add(User(username="ghost", email="ghost@example.test"))
        db.session.flush()  # post_save: the welcome e-mail waits for a commit
        raise RuntimeError("the request fails after its flush")

    with pytest.raises(RuntimeError, match="after its flush"):
        visitor.submit("/register-then-fail", page="/login")

    assert emails(engine) == []
    with Session(engine) as session:
        assert session.scalars(select(User)).all() == []


def test_a_failed_login_of_an_unknown_user_is_audited_too(visitor: Visitor, engine: Engine) -> None:
    assert visitor.log_in("nobody", "a guess").status_code == 401
    assert [line[1:3] for line in audit_log(engine)] == [("login failed", "user 'nobody'")]


def test_a_megabyte_username_is_refused_before_it_reaches_the_audit_log(
    visitor: Visitor, engine: Engine
) -> None:
    refused = visitor.log_in("x" * 100_000, "a guess")

    assert refused.status_code == 200  # the form, with its error
    assert audit_log(engine) == []


def test_an_e_mail_address_must_look_like_one(visitor: Visitor, engine: Engine) -> None:
    refused = visitor.submit(
        "/register", username="carol", email="not-an-address", password="p" * 8, confirm="p" * 8
    )

    assert "That is no e-mail address." in refused.text
    assert emails(engine) == []


def test_every_page_forbids_framing_and_foreign_scripts(visitor: Visitor) -> None:
    headers = visitor.get("/").headers

    assert headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    visitor: Visitor, engine: Engine, blog: Blog
) -> None:
    visitor.log_in("alice", "alice's password")

    forged = visitor.post(f"/posts/{blog.post_id}/delete")

    assert forged.status_code == 400
    with Session(engine) as session:
        assert session.get(Post, blog.post_id) is not None


def test_the_session_cookie_is_secure_http_only_and_same_site(visitor: Visitor, blog: Blog) -> None:
    logged_in = visitor.log_in("alice", "alice's password")

    cookie = logged_in.headers["Set-Cookie"]
    assert "; Secure" in cookie
    assert "; HttpOnly" in cookie
    assert "; SameSite=Lax" in cookie


def test_passwords_are_never_logged_nor_stored_in_clear(
    visitor: Visitor, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    password = "a very secret password"
    caplog.set_level(logging.DEBUG)

    visitor.submit(
        "/register", username="dave", email="d@example.test", password=password, confirm=password
    )
    visitor.submit("/logout", page="/")
    visitor.log_in("dave", password + " with a typo")
    visitor.log_in("dave", password)

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


def test_only_a_post_author_may_edit_or_delete_it(visitor: Visitor, blog: Blog) -> None:
    visitor.log_in("bob", "bob's password")

    page = f"/posts/{blog.post_id}"
    assert visitor.get(f"{page}/edit").status_code == 403
    assert visitor.submit(f"{page}/edit", page="/", title="mine now", body="").status_code == 403
    assert visitor.submit(f"{page}/delete", page=page).status_code == 403
    assert "Delete this post" not in visitor.get(page).text


@pytest.mark.parametrize("page", ["/posts/new", "/audit", "/emails"])
def test_visitors_are_sent_to_log_in_first(visitor: Visitor, page: str) -> None:
    answer = visitor.get(page)

    assert (answer.status_code, answer.headers["Location"]) == (302, "/login")
