"""The e-mails the blog sends, shared by the Flask and the FastAPI app. The demo
"sends" an e-mail by adding it to the ``email`` table, where a test can read it."""

from __future__ import annotations

from examples.blog.models import Comment, Email

__all__ = ["new_comment_email"]


def new_comment_email(comment: Comment) -> Email | None:
    """The e-mail telling a post's author about a comment, unless they wrote it."""
    post = comment.post
    if post.author_id == comment.author_id:
        return None
    return Email(
        recipient=post.author.email, subject=f"New comment on {post.title!r}", body=comment.body
    )
