"""One article per page: its key, the stored article of a page, and the other feeds an article came through.

An entry whose canonical URL is an article already stored (one page in two section feeds of a paper) is not stored
and decided again: the entry is recorded on that article (``article_feeds``). These run inside the story-decision
transaction, whose session the caller passes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select

from storage.models import Article, ArticleFeed, Entry, Feed, Membership, Story
from storage.records import OtherFeed, StoredPage


def url_key(url: str | None) -> str | None:
    """What makes two articles one page: the SHA-256 of the canonical URL as stored (entries keep it canonical)."""
    if not url:
        return None
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def stored_pages(s, keys: Collection[str]) -> dict[str, StoredPage]:
    """The articles stored for these URL keys, by key."""
    if not keys:
        return {}
    rows = s.execute(
        select(Article.url_key, Article.id, Membership.story_id)
        .outerjoin(Membership, Membership.article_id == Article.id)
        .where(Article.url_key.in_(list(keys)))
    )
    return {key: StoredPage(article_id, story_id) for key, article_id, story_id in rows}


def record_feed(s, *, article_id: int, story_id: str | None, entry_id: int, source: str | None, now: datetime) -> None:
    """Record that the entry ``entry_id`` (of another feed) is the article ``article_id``. The story's update time
    moves, so that a served digest, page or API answer naming the article's feeds is made again."""
    s.add(ArticleFeed(article_id=article_id, entry_id=entry_id, source=source, created_at=now))
    if story_id is not None:
        story = s.get(Story, story_id)
        if story is not None:
            story.updated_at = max(story.updated_at, now)


def other_feeds(s, story_ids: Sequence[str]) -> dict[int, tuple[OtherFeed, ...]]:
    """The other feeds of the articles of these stories, by article, in the order they were recorded."""
    found: dict[int, list[OtherFeed]] = {}
    if story_ids:
        rows = s.execute(
            select(ArticleFeed.article_id, ArticleFeed.source, Feed.url, Feed.folder)
            .join(Membership, Membership.article_id == ArticleFeed.article_id)
            .outerjoin(Entry, Entry.id == ArticleFeed.entry_id)
            .outerjoin(Feed, Feed.id == Entry.feed_id)
            .where(Membership.story_id.in_(list(story_ids)))
            .order_by(ArticleFeed.id)
        )
        for article_id, source, url, folder in rows:
            found.setdefault(article_id, []).append(OtherFeed(source, url, folder))
    return {article_id: tuple(feeds) for article_id, feeds in found.items()}
