"""The tables. Alembic migrations in storage/migrations/versions mirror these definitions exactly."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from daemon.errors import StorageError
from storage.records import MAX_URL

# SQLite's INTEGER PRIMARY KEY is only an alias of the rowid for plain INTEGER; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored as UTC; SQLite keeps no zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise StorageError("naive datetime given to the database (a bug: every stored time carries its zone)")
        from datetime import timezone

        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        from datetime import timezone

        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# NUL is refused by PostgreSQL in text ("cannot contain NUL"), a lone surrogate by every encoder: neither is text.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class CleanText(TypeDecorator):
    """Text as every backend stores it: NUL and lone surrogates removed on the way in, so that SQLite and PostgreSQL
    keep the same value and one odd character never fails a feed's whole update."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if isinstance(value, str) and _UNSTORABLE.search(value):
            return _UNSTORABLE.sub("", value)
        return value


class CleanString(TypeDecorator):
    """A VARCHAR(length), cleaned like CleanText and cut to its length (PostgreSQL refuses longer values, SQLite would
    keep them). Key columns whose cut value would name something else are declared with ``cut=False``: callers
    check those lengths themselves (MAX_URL for feed URLs)."""

    impl = String
    cache_ok = True

    def __init__(self, length: int, cut: bool = True):
        super().__init__(length)
        self.cut = cut

    def process_bind_param(self, value, dialect):
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                value = _UNSTORABLE.sub("", value)
            if self.cut and len(value) > self.impl.length:
                value = value[: self.impl.length]
        return value


MAX_FOLDER = 255  # feeds.folder


class Base(DeclarativeBase):
    pass


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(CleanString(MAX_URL, cut=False), unique=True)
    title: Mapped[str | None] = mapped_column(CleanText)
    site_url: Mapped[str | None] = mapped_column(CleanText)
    folder: Mapped[str | None] = mapped_column(CleanString(MAX_FOLDER))
    # "active", "gone" (410: kept, never polled again), "error" (failing, backing off)
    status: Mapped[str] = mapped_column(CleanString(16), default="active")
    etag: Mapped[str | None] = mapped_column(CleanText)
    last_modified: Mapped[str | None] = mapped_column(CleanText)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(CleanText)
    last_error_kind: Mapped[str | None] = mapped_column(CleanString(32))
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    interval_seconds: Mapped[float | None] = mapped_column(Float)
    # where interval_seconds came from: "user", "adaptive", "ttl", "cache", "retry-after", "backoff"
    interval_source: Mapped[str | None] = mapped_column(String(16))
    # the feed's own settings (feeds edit, [[feeds]], OPML); None: the adaptive schedule, the [fetch] default
    poll_interval_seconds: Mapped[float | None] = mapped_column(Float)
    fetch_articles: Mapped[bool | None] = mapped_column(Boolean)
    # WebSub: the hub the feed names and the topic it is known by there; the subscription's secret, state
    # ("pending" until the hub verifies it, "active", "denied"), when it was asked for and when its lease ends
    hub_url: Mapped[str | None] = mapped_column(CleanText)
    websub_topic: Mapped[str | None] = mapped_column(CleanText)
    websub_secret: Mapped[str | None] = mapped_column(String(128))
    websub_state: Mapped[str | None] = mapped_column(String(16))
    websub_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    websub_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the one-time token in the callback URL of the latest subscription request, and whether the hub verified it
    websub_token: Mapped[str | None] = mapped_column(String(64))
    websub_answered: Mapped[bool | None] = mapped_column(Boolean)
    lease_owner: Mapped[str | None] = mapped_column(CleanString(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    entries: Mapped[list[Entry]] = relationship(back_populates="feed", cascade="all, delete-orphan")


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (UniqueConstraint("feed_id", "identity", name="uq_entries_feed_identity"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    # guid, else the canonical link, else a hash of the content: what makes two sightings the same entry
    identity: Mapped[str] = mapped_column(CleanString(2048))
    guid: Mapped[str | None] = mapped_column(CleanText)
    url: Mapped[str | None] = mapped_column(CleanText)
    title: Mapped[str | None] = mapped_column(CleanText)
    author: Mapped[str | None] = mapped_column(CleanText)
    summary: Mapped[str | None] = mapped_column(CleanText)
    content: Mapped[str | None] = mapped_column(CleanText)
    published: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated: Mapped[datetime | None] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(CleanString(64))
    # "pending" (no article yet), "ready" (its text found, its story not decided yet), "done", "no_text" (neither page
    # nor feed gave text)
    state: Mapped[str] = mapped_column(CleanString(16), default="pending", index=True)
    text: Mapped[str | None] = mapped_column(CleanText)  # while "ready": the article text found
    text_source: Mapped[str | None] = mapped_column(CleanString(8))  # while "ready": "page" or "feed"
    # while "ready", text from a page: where it was fetched from (after redirects), and its own title when the page
    # is on another site than the feed (the article then shows the publisher's title, not the feed's)
    page_url: Mapped[str | None] = mapped_column(CleanText)
    page_title: Mapped[str | None] = mapped_column(CleanText)
    error: Mapped[str | None] = mapped_column(CleanText)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    feed: Mapped[Feed] = relationship(back_populates="entries")


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id", ondelete="SET NULL"), unique=True)
    # an id given from outside (a fixture id, a JSONL id); None for articles found by polling
    external_id: Mapped[str | None] = mapped_column(CleanString(255), unique=True)
    url: Mapped[str | None] = mapped_column(CleanText)
    title: Mapped[str] = mapped_column(CleanText)
    text: Mapped[str] = mapped_column(CleanText)
    source: Mapped[str | None] = mapped_column(CleanText)
    published: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "page" (extracted from the article page) or "feed" (the feed's own content, when the page failed or was empty)
    extracted_from: Mapped[str] = mapped_column(CleanString(8))
    # the page the text was fetched from, after redirects (text from a page only): its site is the publisher
    page_url: Mapped[str | None] = mapped_column(CleanText)
    text_hash: Mapped[str] = mapped_column(CleanString(64), index=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # SHA-256 of its canonical URL (url_key below), unique: one article per page, whichever feeds list it. None
    # without a URL, and for the later copies of a page stored twice before migration 0007 (they stay as stored)
    url_key: Mapped[str | None] = mapped_column(CleanString(64))


class ArticleFeed(Base):
    """Another feed an article came through: an entry of a second feed whose canonical URL is an article already
    stored. The entry is kept (the feed counts it) and points here instead of becoming a second article; the first
    feed is the article's own (articles.entry_id, articles.source)."""

    __tablename__ = "article_feeds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id", ondelete="SET NULL"), unique=True)
    # the feed's title (else its URL) when the entry arrived, as articles.source: kept when the feed is removed
    source: Mapped[str | None] = mapped_column(CleanText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Story(Base):
    __tablename__ = "stories"

    id: Mapped[str] = mapped_column(CleanString(64), primary_key=True)
    uuid: Mapped[str] = mapped_column(CleanString(64), unique=True)
    title: Mapped[str] = mapped_column(CleanText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    article_count: Mapped[int] = mapped_column(Integer, default=0)

    memberships: Mapped[list[Membership]] = relationship(back_populates="story")


class Membership(Base):
    __tablename__ = "memberships"

    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    story_id: Mapped[str] = mapped_column(ForeignKey("stories.id"), index=True)
    copy_of: Mapped[int | None] = mapped_column(ForeignKey("articles.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # engine order: restoring the engine replays memberships in this order
    seq: Mapped[int] = mapped_column(BigId, unique=True)

    story: Mapped[Story] = relationship(back_populates="memberships")
    article: Mapped[Article] = relationship(foreign_keys=[article_id])


class StoryChange(Base):
    """A settling pass's revision of the stories: a merge (``from_story`` absorbed into ``to_story``, its articles
    moved there, its id an alias of ``to_story`` from then on) or a move (``article_ids``, an article and its copies,
    from one story to another). Its ``seq`` is taken from the memberships' sequence, so that a worker catching up
    replays new memberships and changes in the order they were stored."""

    __tablename__ = "story_changes"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(8))  # a daemon.states.ChangeKind value
    from_story: Mapped[str] = mapped_column(String(64), index=True)
    to_story: Mapped[str] = mapped_column(String(64), index=True)
    article_ids: Mapped[list] = mapped_column(JSON)  # the articles that changed story, as stored ids
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoryAlias(Base):
    """The id and urn:uuid of a story absorbed by a merge, kept for readers' links: they lead to ``survivor_id``,
    the story that holds its articles now (a later merge of that story moves every alias on to the next survivor,
    so one lookup resolves a chain)."""

    __tablename__ = "story_aliases"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(64), unique=True)
    survivor_id: Mapped[str] = mapped_column(ForeignKey("stories.id"), index=True)
    seq: Mapped[int] = mapped_column(BigId)  # the merge's story_changes.seq
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_entries_published", Entry.published)
Index("ix_articles_url_key", Article.url_key, unique=True)
Index("ix_entries_feed_published", Entry.feed_id, Entry.published)
