"""From stored stories to digest documents: the query, the primary source, the rendering."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from daemon.digest import FORMATS, DigestMeta, DigestSource, DigestStory, choose_primary, filter_stories, render
from daemon.views import StoryView, load_stories
from storage import Database


@dataclass(frozen=True)
class DigestQuery:
    min_outlets: int = 1
    window_days: float | None = 7
    folders: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    limit: int | None = 100


def to_digest_story(story: StoryView, preferred: tuple[str, ...]) -> DigestStory:
    sources = [
        DigestSource(
            article_id=m.key,
            title=m.title,
            url=m.url,
            outlet=m.source or "unknown outlet",
            published=m.published,
            copy_of=m.copy_of_key,
            summary=m.summary,
            folder=m.folder,
        )
        for m in story.members
    ]
    primary = choose_primary(sources, preferred)
    far = datetime.max.replace(tzinfo=timezone.utc)
    rest = sorted((s for s in sources if s is not primary), key=lambda s: (s.published or far, s.article_id))
    return DigestStory(
        uuid=story.uuid,
        title=primary.title,
        primary=primary,
        sources=(primary, *rest),
        created=story.created_at,
        updated=story.updated_at,
        copies=story.copies,
    )


def digest_stories(db: Database, config, query: DigestQuery) -> list[DigestStory]:
    stories = [to_digest_story(s, tuple(config["digest"]["preferred_outlets"])) for s in load_stories(db)]
    since = None
    if query.window_days:
        since = datetime.now(timezone.utc) - timedelta(days=query.window_days)
    return list(
        filter_stories(stories, min_outlets=query.min_outlets, since=since, folders=query.folders, feeds=query.feeds, limit=query.limit)
    )


def render_digest(db: Database, config, fmt: str, query: DigestQuery) -> tuple[bytes, str]:
    base = config["digest"]["base_url"].rstrip("/") + "/"
    stories = digest_stories(db, config, query)
    ext = {"atom": "digest.atom", "rss": "digest.rss", "json": "digest.json", "html": ""}[fmt]
    meta = DigestMeta(
        title=config["digest"]["title"],
        self_url=base + ext,
        home_url=base,
        updated=max((s.updated for s in stories), default=None),
    )
    return render(stories, fmt, meta), FORMATS[fmt]
