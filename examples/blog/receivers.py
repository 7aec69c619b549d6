"""The blog's own receivers: behaviour of the models, wherever they are saved
(the quickstart, the Flask app, a shell session)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from examples.blog.models import Post
from examples.blog.slugs import slugify, unique_slug
from sa_signals import pre_save, receiver


@receiver(pre_save, sender=Post)
def give_new_posts_a_slug(
    sender: type[Post], instance: Post, session: Session, **kwargs: Any
) -> None:
    """A post gets its slug once, from its first title: its address keeps
    working when the title changes. Set in ``pre_save``, it is written by the
    same INSERT."""
    if instance.slug:
        return
    base = slugify(instance.title)
    taken = set(
        session.scalars(select(Post.slug).where(Post.slug.startswith(base, autoescape=True)))
    )
    # Posts added in the same flush are not in the database yet.
    taken.update(post.slug for post in session.new if isinstance(post, Post) and post.slug)
    instance.slug = unique_slug(instance.title, taken)
