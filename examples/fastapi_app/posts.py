"""Posts, their comments and tags; and editing several posts at once, with one
bulk UPDATE.

Each route does its work in the request's session (``sessions.Session``), which
is committed after it returns: the receivers run at the flush (the route's own
``flush()``, for the new row's id, or the commit's), and their audit lines are
committed with the change or not at all.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, Response, status
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from examples.blog.models import Comment, Post, Tag
from examples.fastapi_app.accounts import CurrentUser
from examples.fastapi_app.moderation import Refused, review
from examples.fastapi_app.schemas import (
    CommentIn,
    CommentOut,
    PostChanges,
    PostIn,
    PostOut,
    Retitle,
)
from examples.fastapi_app.sessions import Session

__all__ = ["router"]

router = APIRouter(prefix="/posts", tags=["posts"])

PAGE = 100  # posts listed, newest first


@router.get("")
async def list_posts(session: Session) -> list[PostOut]:
    newest_first = select(Post).order_by(Post.created_at.desc(), Post.id.desc()).limit(PAGE)
    posts = await session.scalars(
        newest_first.options(selectinload(Post.author), selectinload(Post.tags))
    )
    return [_out(post) for post in posts]


@router.get("/{post_id}")
async def show_post(post_id: int, session: Session) -> PostOut:
    return _out(await _post(session, post_id))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_post(
    new: PostIn,
    user: CurrentUser,
    session: Session,
    response: Response,
    dry_run: Annotated[bool, Query(description="Write it, then roll it back.")] = False,
) -> PostOut:
    """Publish a post (the e-mail announcing it is sent after the commit). With
    ``dry_run``, the post is written and the receivers run at the flush, then
    everything is rolled back: the answer shows the post as it would have been,
    and neither the audit log nor the e-mails show anything of it."""
    tags = await session.run_sync(Tag.named, new.tags)
    post = Post(author=user, title=new.title, body=new.body, tags=tags)
    session.add(post)
    await session.flush()  # pre_save (moderation, the slug), post_save, m2m_changed
    written = _out(post)
    if dry_run:
        await session.rollback()  # the audit lines go with the post
        response.status_code = status.HTTP_200_OK  # nothing was created
    return written


@router.patch("/{post_id}")
async def edit_post(
    post_id: int, changes: PostChanges, user: CurrentUser, session: Session
) -> PostOut:
    post = await _own_post(session, post_id, user.id)
    if changes.title is not None:
        post.title = changes.title
    if changes.body is not None:
        post.body = changes.body
    if changes.tags is not None:
        post.tags = await session.run_sync(Tag.named, changes.tags)
    await session.flush()  # moderation, the UPDATE (updated_at set by its onupdate), the audit
    return _out(post)


@router.delete("/{post_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_post(post_id: int, user: CurrentUser, session: Session) -> None:
    post = await _own_post(session, post_id, user.id)
    await session.delete(post)  # its comments go with it, each with its own signals


@router.patch("")
async def retitle_posts(
    edits: Annotated[list[Retitle], Body(min_length=1, max_length=100)],
    user: CurrentUser,
    session: Session,
) -> list[PostOut]:
    """New titles for several posts, with one bulk UPDATE by primary key
    (``session.execute(update(Post), rows)``): no post is loaded, and no
    ``pre_save``/``post_save`` is sent. ``pre_bulk_update`` checks that every
    post is the user's; ``post_bulk_update`` audits each post it updated."""
    ids = [edit.id for edit in edits]
    if len(set(ids)) != len(ids):
        raise HTTPException(HTTPStatus.UNPROCESSABLE_ENTITY, "Name each post once.")
    # Moderation is a pre_save receiver, and a bulk UPDATE sends no pre_save:
    # the titles are put to it here.
    for edit in edits:
        verdict = await review(edit.title)
        if verdict is not None:
            raise Refused(f"The title of post #{edit.id} was refused: {verdict}.")
    await session.execute(update(Post), [edit.model_dump() for edit in edits])
    retitled = select(Post).where(Post.id.in_(ids)).order_by(Post.id)
    posts = await session.scalars(
        retitled.options(selectinload(Post.author), selectinload(Post.tags))
    )
    return [_out(post) for post in posts]


@router.post("/{post_id}/comments", status_code=status.HTTP_201_CREATED)
async def comment(post_id: int, new: CommentIn, user: CurrentUser, session: Session) -> CommentOut:
    """The post's author is told by e-mail, from a Celery worker (``tasks.py``)."""
    post = await _post(session, post_id)
    written = Comment(post=post, author=user, body=new.body)
    session.add(written)
    await session.flush()
    return CommentOut(id=written.id, post_id=post.id, author=user.username, body=written.body)


async def _post(session: Session, post_id: int) -> Post:
    post = await session.get(
        Post, post_id, options=[selectinload(Post.author), selectinload(Post.tags)]
    )
    if post is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No post #{post_id}.")
    return post


async def _own_post(session: Session, post_id: int, user_id: int) -> Post:
    post = await _post(session, post_id)
    if post.author_id != user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only its author may change a post.")
    return post


def _out(post: Post) -> PostOut:
    return PostOut(
        id=post.id,
        slug=post.slug,
        title=post.title,
        body=post.body,
        author=post.author.username,
        tags=[tag.name for tag in post.tags],
        created_at=post.created_at,
        updated_at=post.updated_at,
    )
