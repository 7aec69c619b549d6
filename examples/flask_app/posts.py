"""Posts, comments, tags, and the two pages that show what the receivers did:
the audit log, and the e-mails sent to the user who is logged in.

The audit log is every user's to read here, because showing it is the demo's
point; a real application would keep it for its staff."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from examples.blog.models import AuditEntry, Comment, Email, Post, Tag
from examples.flask_app.accounts import login_required
from examples.flask_app.extensions import db
from examples.flask_app.forms import CommentForm, PostForm

blueprint = Blueprint("posts", __name__)

PAGE = 100  # lines of the audit log and e-mails shown, newest first


@blueprint.get("/")
def index() -> ResponseReturnValue:
    newest_first = select(Post).order_by(Post.created_at.desc(), Post.id.desc())
    posts = db.session.scalars(
        newest_first.options(selectinload(Post.author), selectinload(Post.tags))
    ).all()
    comment_counts = dict(
        db.session.execute(select(Comment.post_id, func.count()).group_by(Comment.post_id)).all()
    )
    return render_template("index.html", posts=posts, comment_counts=comment_counts)


@blueprint.get("/posts/<int:post_id>")
def show(post_id: int) -> ResponseReturnValue:
    post = db.get_or_404(Post, post_id)
    return render_template("post.html", post=post, form=CommentForm())


@blueprint.route("/posts/new", methods=["GET", "POST"])
@login_required
def create() -> ResponseReturnValue:
    form = PostForm()
    if form.validate_on_submit():
        tags = Tag.named(db.session, form.tag_names())
        post = Post(author=g.user, title=form.title.data, body=form.body.data, tags=tags)
        db.session.add(post)
        return _commit_or_roll_back(form, post, url_for("posts.create"), "Post published.")
    return render_template("post_form.html", form=form, post=None)


@blueprint.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
@login_required
def edit(post_id: int) -> ResponseReturnValue:
    post = _own_post(post_id)
    form = PostForm(title=post.title, body=post.body, tags=", ".join(tag.name for tag in post.tags))
    if form.validate_on_submit():
        post.title = form.title.data or ""
        post.body = form.body.data or ""
        post.tags = Tag.named(db.session, form.tag_names())
        return _commit_or_roll_back(
            form, post, url_for("posts.edit", post_id=post.id), "Post saved."
        )
    return render_template("post_form.html", form=form, post=post)


@blueprint.post("/posts/<int:post_id>/delete")
@login_required
def delete(post_id: int) -> ResponseReturnValue:
    post = _own_post(post_id)
    db.session.delete(post)  # its comments go with it, each with its own signals
    db.session.commit()
    flash("Post deleted.")
    return redirect(url_for("posts.index"))


@blueprint.post("/posts/<int:post_id>/comments")
@login_required
def comment(post_id: int) -> ResponseReturnValue:
    post = db.get_or_404(Post, post_id)
    form = CommentForm()
    if form.validate_on_submit():
        db.session.add(Comment(post=post, author=g.user, body=form.body.data))
        db.session.commit()  # the author's e-mail goes out after this commit
        flash("Comment added.")
    return redirect(url_for("posts.show", post_id=post.id))


@blueprint.get("/audit")
@login_required
def audit_log() -> ResponseReturnValue:
    entries = db.session.scalars(
        select(AuditEntry).order_by(AuditEntry.id.desc()).limit(PAGE)
    ).all()
    return render_template("audit.html", entries=entries)


@blueprint.get("/emails")
@login_required
def emails() -> ResponseReturnValue:
    mine = select(Email).where(Email.recipient == g.user.email)
    sent = db.session.scalars(mine.order_by(Email.id.desc()).limit(PAGE)).all()
    return render_template("emails.html", emails=sent)


def _own_post(post_id: int) -> Post:
    post = db.get_or_404(Post, post_id)
    if post.author_id != g.user.id:
        abort(403)
    return post


def _commit_or_roll_back(
    form: PostForm, post: Post, retry_url: str, message: str
) -> ResponseReturnValue:
    """Commit, or, when the form asks for it, write everything and roll it back:
    the receivers ran at the flush, yet the audit log and the e-mails show
    nothing of it."""
    if form.roll_back.data:
        db.session.flush()  # post_save and m2m_changed are sent here...
        db.session.rollback()  # ...and their audit lines are undone with the post
        flash("Written, then rolled back: no audit line and no e-mail came of it.")
        return redirect(retry_url)
    db.session.commit()
    flash(message)
    return redirect(url_for("posts.show", post_id=post.id))
