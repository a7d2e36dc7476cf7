"""Read-side queries on stories, shared by the CLI, the HTTP server and the digest. Records out."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Integer, case, column, func, select, text
from sqlalchemy.orm import aliased

from daemon.errors import AmbiguousStory
from daemon.states import TextSource
from storage import changes
from storage.articles import other_feeds
from storage.db import Database
from storage.models import Article, Entry, Feed, Membership, Story, StoryChange
from storage.records import Member, StoriesVersion, StoryView

AMBIGUOUS_SHOWN = 5  # matches listed when a prefix is ambiguous


def _key(article: Article) -> str:
    return article.external_id or str(article.id)


# A member's news time: its publication time, never later than when wiredesk stored it (a feed's future date or
# a missing one count from then). A story's published/updated are the earliest/newest of its members'.
_MEMBER_TIME = case(
    (Article.published.is_not(None) & (Article.published < Article.created_at), Article.published),
    else_=Article.created_at,
)


def load_stories(db: Database, story_ids: list[str] | None = None, limit: int | None = None) -> list[StoryView]:
    """Stories, newest news time first, with members in the order they joined."""
    if story_ids is None:
        story_ids = story_ids_by_update(db)
    if limit:
        story_ids = story_ids[:limit]
    with db.session() as s:
        stories = list(s.scalars(select(Story).where(Story.id.in_(story_ids))))
        if not stories:
            return []
        others = other_feeds(s, [st.id for st in stories])  # the same pages listed in other feeds
        original = aliased(Article)
        rows = s.execute(
            select(Membership, Article, original, Feed)
            .join(Article, Article.id == Membership.article_id)
            .outerjoin(original, original.id == Membership.copy_of)
            .outerjoin(Entry, Entry.id == Article.entry_id)
            .outerjoin(Feed, Feed.id == Entry.feed_id)
            .where(Membership.story_id.in_([st.id for st in stories]))
            .order_by(Membership.seq)
        )
        members: dict[str, list[Member]] = {st.id: [] for st in stories}
        for m, a, o, feed in rows:
            members[m.story_id].append(
                Member(
                    article_id=a.id,
                    key=_key(a),
                    title=a.title,
                    url=a.url,
                    source=a.source,
                    folder=feed.folder if feed else None,
                    feed_url=feed.url if feed else None,
                    published=a.published,
                    copy_of=m.copy_of,
                    copy_of_key=_key(o) if o is not None else None,
                    score=m.score,
                    evidence=m.evidence or {},
                    joined_at=m.created_at,
                    summary=lede(a.text, a.title),
                    seen_at=a.created_at,
                    other_feeds=others.get(a.id, ()),
                    extracted_from=TextSource(a.extracted_from),
                    page_url=a.page_url,
                )
            )
        views = [_view(st, tuple(members[st.id])) for st in stories]
    views.sort(key=lambda v: v.id)
    views.sort(key=lambda v: v.updated, reverse=True)
    return views


def _view(story: Story, members: tuple[Member, ...]) -> StoryView:
    times = [m.news_time for m in members] or [story.created_at]
    return StoryView(
        story.id,
        story.uuid,
        story.title,
        story.created_at,
        story.updated_at,
        members,
        published=min(times),
        updated=max(times),
    )


def _like_prefix(text: str) -> str:
    # the prefix taken literally: % and _ are LIKE wildcards, escaped with "\" (declared in the query)
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def find_story(db: Database, ident: str) -> StoryView | None:
    """A story by its id, a unique id prefix, its urn:uuid, or the key of one of its articles, with the merges and
    moves it went through. The id (or urn:uuid, or a unique prefix) of a story that a merge absorbed finds the
    story that holds its articles now, with ``alias`` saying which id was asked for.

    AmbiguousStory when the prefix is shared by several stories (a few of them named)."""
    alias: str | None = None
    with db.session() as s:
        sid = s.scalar(select(Story.id).where((Story.id == ident) | (Story.uuid == ident)))
        if sid is None and (merged := changes.resolve_alias(s, ident)) is not None:
            alias, sid = merged
        if sid is None and len(ident) >= 4:
            found = list(
                s.scalars(
                    select(Story.id)
                    .where(Story.id.like(_like_prefix(ident), escape="\\"))
                    .order_by(Story.id)
                    .limit(AMBIGUOUS_SHOWN + 1)
                )
            )
            if not found:
                # the prefix of a story merged into another: its links keep working
                found = changes.alias_ids_like(s, _like_prefix(ident), AMBIGUOUS_SHOWN + 1)
                if len(found) == 1 and (merged := changes.resolve_alias(s, found[0])) is not None:
                    alias, sid = merged
            if len(found) > 1:
                more = ", ..." if len(found) > AMBIGUOUS_SHOWN else ""
                count = f"more than {AMBIGUOUS_SHOWN}" if more else str(len(found))
                raise AmbiguousStory(
                    f"story prefix {ident!r} is ambiguous: {count} stories match "
                    f"({', '.join(found[:AMBIGUOUS_SHOWN])}{more}); give more of the id"
                )
            if sid is None:
                sid = found[0] if found else None
        if sid is None:
            sid = s.scalar(
                select(Membership.story_id)
                .join(Article, Article.id == Membership.article_id)
                .where(Article.external_id == ident)
            )
        history = changes.story_history(s, sid) if sid is not None else ()
    if sid is None:
        return None
    views = load_stories(db, [sid])
    return replace(views[0], alias=alias, changes=history) if views else None


def story_ids_by_update(db: Database, since: datetime | None = None, search: str | None = None) -> list[str]:
    """The ids of the stories whose news time is at or after ``since`` (all when None), newest first; with
    ``search``, only the stories with an article whose title or text holds every word of it."""
    with db.session() as s:
        q = (
            select(Membership.story_id)
            .join(Article, Article.id == Membership.article_id)
            .group_by(Membership.story_id)
            .order_by(func.max(_MEMBER_TIME).desc(), Membership.story_id)
        )
        if search is not None:
            words = search_words(search)
            if not words:
                return []
            found = select(Membership.story_id).where(Membership.article_id.in_(_matching_articles(db, words)))
            q = q.where(Membership.story_id.in_(found))
        if since is not None:
            # a story's news time is never later than its last stored update: the index narrows first
            q = (
                q.join(Story, Story.id == Membership.story_id)
                .where(Story.updated_at >= since)
                .having(func.max(_MEMBER_TIME) >= since)
            )
        return list(s.scalars(q))


def stories_version(db: Database) -> StoriesVersion:
    """The newest membership or settling change and the newest story update. Index lookups only: a busy server asks once a second."""
    with db.session() as s:
        seq, changed, updated = s.execute(
            select(
                select(func.max(Membership.seq)).scalar_subquery(),
                select(func.max(StoryChange.seq)).scalar_subquery(),
                select(func.max(Story.updated_at)).scalar_subquery(),
            )
        ).one()
    # a settling change takes a seq of the same sequence: a merge or a move changes the version too
    return StoriesVersion(max(seq or 0, changed or 0) or seq, updated)


# ---- the lede ----------------------------------------------------------------------------------------------------

LEDE_CHARS = 600
_NOT_WORD = re.compile(r"\W+")


def _words(text: str) -> str:
    return _NOT_WORD.sub(" ", text.casefold()).strip()


def lede(text: str, title: str) -> str:
    """The first paragraph of an article's text that is not its headline (extracted pages often begin with their
    H1), at most LEDE_CHARS characters."""
    headline = _words(title or "")
    for paragraph in text.split("\n\n")[:8]:
        lines = [line for line in paragraph.strip().splitlines() if line.strip()]
        while lines and headline and _words(lines[0]) in (headline, ""):
            lines.pop(0)  # the headline, alone or as the paragraph's first line
        if lines and _words(" ".join(lines)):
            return "\n".join(lines)[:LEDE_CHARS]
    return ""


# ---- full-text search ----------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
MAX_SEARCH_WORDS = 16


def search_words(q: str) -> list[str]:
    """The words of a search: letters and digits, lower-cased, each needed (punctuation and quotes only separate)."""
    return list(dict.fromkeys(w.casefold() for w in _WORD.findall(q)))[:MAX_SEARCH_WORDS]


def _matching_articles(db: Database, words: list[str]):
    """The ids of the articles whose title or text holds every word, as a subquery (the index of migration 0005)."""
    if db.dialect == "sqlite":
        match = " ".join(f'"{w}"' for w in words)  # each a quoted string: no FTS5 operator can slip in
        return (
            text("SELECT rowid FROM articles_fts WHERE articles_fts MATCH :match")
            .bindparams(match=match)
            .columns(column("rowid", Integer))
        )
    return select(Article.id).where(
        text(
            "to_tsvector('simple'::regconfig, coalesce(articles.title, '') || ' ' || coalesce(articles.text, '')) "
            "@@ plainto_tsquery('simple'::regconfig, :words)"
        ).bindparams(words=" ".join(words))
    )
