"""Plain typed records: what storage hands out. Never an ORM object outside a session.

Frozen dataclasses, so that a record read in one transaction can be passed between stages, threads and processes
without dragging a session along or changing under its reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from daemon.states import ChangeKind, EntryState, ErrorKind, FeedStatus, IntervalSource, TextSource, WebSubState

MAX_URL = 2048  # the longest feed URL stored (feeds.url); a longer one is never cut, since a URL is a feed's key


@dataclass(frozen=True)
class FeedRecord:
    """One stored feed: its address, validators, schedule and error state."""

    id: int
    url: str
    title: str | None
    site_url: str | None
    folder: str | None
    status: FeedStatus
    etag: str | None
    last_modified: str | None
    error_count: int
    last_error: str | None
    last_error_kind: ErrorKind | None
    last_error_at: datetime | None
    last_success_at: datetime | None
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    interval_seconds: float | None
    lease_owner: str | None
    lease_until: datetime | None
    created_at: datetime
    interval_source: IntervalSource | None = None  # where interval_seconds came from
    # the feed's own settings; None: the adaptive schedule, the [fetch] default
    poll_interval_seconds: float | None = None
    fetch_articles: bool | None = None
    # WebSub: the hub the feed names, and the subscription's state
    hub_url: str | None = None
    websub_state: WebSubState | None = None
    websub_topic: str | None = None  # the topic the hub knows it by (its rel="self" URL), else its URL

    @classmethod
    def of(cls, row: Any) -> FeedRecord:
        """The record of an ORM Feed (or any object with the same attributes); stored words as their StrEnums."""
        values = {f.name: getattr(row, f.name) for f in fields(cls)}
        for name, words in _STORED_WORDS.items():
            # a word this version does not know (written by another one) is kept as it was stored
            if values[name] in words._value2member_map_:
                values[name] = words(values[name])
        return cls(**values)


# FeedRecord's columns that hold a stored word, and the StrEnum of each
_STORED_WORDS: dict[str, type[StrEnum]] = {
    "status": FeedStatus,
    "last_error_kind": ErrorKind,
    "interval_source": IntervalSource,
    "websub_state": WebSubState,
}


@dataclass(frozen=True)
class FeedSummary:
    """A feed as `feeds list` shows it: the feed and how many entries it has stored."""

    feed: FeedRecord
    entries: int


@dataclass(frozen=True)
class OtherFeed:
    """A feed an article came through besides its own (the same page listed in a second feed): its title as when the
    entry arrived, its URL and folder (None once the feed is removed)."""

    title: str | None
    url: str | None
    folder: str | None


@dataclass(frozen=True)
class StoredPage:
    """The article already stored for a page (a canonical URL), and its story."""

    article_id: int
    story_id: str | None


@dataclass(frozen=True)
class Member:
    """One article of a story, with why it joined."""

    article_id: int
    key: str  # external id when the article came from a corpus, else the database id
    title: str
    url: str | None
    source: str | None
    folder: str | None
    feed_url: str | None
    published: datetime | None
    copy_of: int | None
    copy_of_key: str | None
    score: float
    evidence: dict[str, Any]
    joined_at: datetime
    summary: str
    seen_at: datetime  # when wiredesk stored the article
    other_feeds: tuple[OtherFeed, ...] = ()  # the other feeds that listed the same page, in the order they did
    extracted_from: TextSource = TextSource.PAGE  # where its text came from: the page, or the feed's own content
    page_url: str | None = None  # the page its text was fetched from, after redirects (None: its link, or no page)

    @property
    def feeds(self) -> tuple[str, ...]:
        """The names of every feed it came through: its own first, then the others (each name once)."""
        names = [self.source, *(f.title or f.url for f in self.other_feeds)]
        return tuple(dict.fromkeys(n for n in names if n))

    @property
    def news_time(self) -> datetime:
        """Its publication time, never later than when wiredesk saw it; that time when it has none."""
        if self.published is None or self.published > self.seen_at:
            return self.seen_at
        return self.published


@dataclass(frozen=True)
class StoryView:
    """A stored story with its members in the order they joined.

    ``created_at``/``updated_at`` are when wiredesk stored the story and its newest member; ``published``/``updated``
    are news time: the earliest and the newest member's publication time, each member's time capped at when wiredesk
    first stored it (a member without a publication time counts from then).
    """

    id: str
    uuid: str
    title: str
    created_at: datetime
    updated_at: datetime
    members: tuple[Member, ...]
    published: datetime
    updated: datetime
    # found through the id (or urn:uuid) of a story merged into this one: that id; None when asked for by its own
    alias: str | None = None
    # the merges and moves that brought articles here or took them away, oldest first (by find_story)
    changes: tuple[StoredChange, ...] = ()

    @property
    def copies(self) -> int:
        return sum(1 for m in self.members if m.copy_of is not None)


class StoriesVersion(NamedTuple):
    """What the stored stories look like, in two index lookups: a change to either means a digest may differ."""

    last_seq: int | None  # the newest membership's seq
    last_update: datetime | None  # the newest story update


@dataclass(frozen=True)
class StoreCounts:
    """How much is stored, for /metrics."""

    feeds_by_status: dict[str, int]
    entries: int
    articles: int
    stories: int


# ---- a feed's update: what the decider reads and what it asks storage to write ---------------------------------


@dataclass(frozen=True)
class StoredFeed:
    """What a feed's update needs of the stored feed."""

    id: int
    url: str
    title: str | None
    site_url: str | None
    error_count: int
    poll_interval_seconds: float | None = None  # the feed's own interval; None: adaptive
    websub_state: WebSubState | None = None  # active: a hub pushes it, polling is the safety net


@dataclass(frozen=True)
class KnownEntry:
    """What a feed's update needs of a stored entry: whether an item is it, and whether it changed."""

    id: int
    identity: str
    url: str | None
    content_hash: str
    published: datetime | None
    updated: datetime | None = None  # when the feed last said it changed (its <updated>), as stored


@dataclass(frozen=True)
class FeedUpdateContext:
    """Everything stored that the update of a batch of feeds depends on, read in the update's transaction."""

    feeds: dict[int, StoredFeed]  # feeds removed meanwhile are absent
    known: dict[int, list[KnownEntry]]  # of the feeds whose entries were parsed, in the order stored
    recent: dict[int, list[datetime]]  # of the feeds that were not modified: their newest entries' dates
    taken_urls: frozenset[str]  # of the URLs feeds moved to, those another stored feed already has


@dataclass(frozen=True)
class FeedValidators:
    """What the next conditional GET of a feed sends back (its ETag and Last-Modified); None: the server sent none."""

    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class FeedAbout:
    """What a parsed feed says of itself and is kept on the feed (a title the user gave stays the feed's)."""

    title: str | None
    site_url: str | None
    hub_url: str | None  # its WebSub hub, None when it names none
    websub_topic: str | None  # the URL it calls itself, the topic a hub knows it by (with a hub only)


@dataclass(frozen=True)
class FeedChange:
    """A feed's new state after a poll. The optional parts are None when the poll leaves them as stored."""

    polled_at: datetime
    status: FeedStatus
    error_count: int
    last_error: str | None  # the poll's error, or the warning the feed was parsed with; None clears it
    last_error_kind: ErrorKind | None
    next_poll_at: datetime
    interval_seconds: float
    interval_source: IntervalSource
    failed_at: datetime | None = None  # the poll failed: the time of its error
    succeeded_at: datetime | None = None  # the poll succeeded
    validators: FeedValidators | None = None  # new validators for the next conditional GET
    moved_to: str | None = None  # the feed moved permanently: its new URL
    about: FeedAbout | None = None  # the feed was parsed


@dataclass(frozen=True)
class NewEntry:
    """An item seen for the first time: the entry to store, waiting for its article."""

    feed_id: int
    identity: str
    guid: str | None
    url: str | None
    title: str | None
    author: str | None
    summary: str | None
    content: str | None
    published: datetime | None
    updated: datetime | None
    content_hash: str
    state: EntryState
    first_seen_at: datetime
    changed_at: datetime


@dataclass(frozen=True)
class EntryContent:
    """What a stored entry's item says now that it changed (its publication time: the first one known)."""

    guid: str | None
    url: str | None
    title: str | None
    author: str | None
    summary: str | None
    content: str | None
    updated: datetime | None
    published: datetime | None
    content_hash: str
    changed_at: datetime


@dataclass(frozen=True)
class EntryEdit:
    """What changes on a stored entry: its identity (the feed gave the same link a new GUID), its content, or both."""

    identity: str | None = None
    content: EntryContent | None = None


@dataclass(frozen=True)
class FeedUpdateIntent:
    """One feed's update, as storage writes it: the feed's new state, the entries to insert and to change."""

    feed_id: int
    feed: FeedChange
    new_entries: tuple[NewEntry, ...] = ()
    changed_entries: Mapping[int, EntryEdit] = field(default_factory=dict)  # by entry id
    retitled: Mapping[int, str] = field(default_factory=dict)  # entry id -> the new headline of its article


@dataclass(frozen=True)
class EntryRecord:
    """A stored entry on its way to a story (its text, while it has one, stays in the database)."""

    id: int
    feed_id: int
    identity: str
    url: str | None
    title: str | None
    summary: str | None
    content: str | None
    published: datetime | None


# ---- the story-decision transaction (storage/decisions.py) -------------------------------------------------------


@dataclass(frozen=True)
class LockedEntry:
    """An entry locked for its story decision: its state now, and the text found for it while it is ready."""

    id: int
    state: str  # a daemon.states.EntryState value
    text: str | None
    text_source: str | None  # a daemon.states.TextSource value
    page_url: str | None = None  # text from a page: where it was fetched from, after redirects
    page_title: str | None = None  # that page's own title, when the page is on another site than the feed


@dataclass(frozen=True)
class NewArticle:
    """An article to store from a ready entry (its fingerprint comes with its decision)."""

    entry_id: int
    external_id: str | None
    url: str | None
    title: str
    text: str
    source: str | None
    published: datetime | None
    extracted_from: TextSource
    text_hash: str
    url_key: str | None = None  # storage.articles.url_key of the URL: one article per page
    page_url: str | None = None  # the page the text was fetched from, after redirects (text from a page only)


@dataclass(frozen=True)
class StoredMembership:
    """A stored story decision, as the engine restores it: in ``seq`` order, with the article's fingerprint."""

    seq: int
    article_id: int
    story_id: str
    copy_of: int | None
    fingerprint: bytes
    published: datetime | None
    source: str | None


@dataclass(frozen=True)
class StoryDecision:
    """The engine's decision for one stored article, to be written with its story and membership."""

    entry_id: int
    article_id: int
    story_id: str
    copy_of: str | None  # the engine's article id of the copy group's first member
    score: float
    evidence: dict[str, Any]
    fingerprint: bytes


@dataclass(frozen=True)
class DecisionStored:
    """What became of one decision: the article's story and copy source, and the membership's seq."""

    article_id: int
    story_id: str
    copy_of: int | None
    seq: int


# ---- settling: merges and moves of stories (storage/changes.py) --------------------------------------------------


@dataclass(frozen=True)
class StoryChange:
    """A settling pass's change to write: a merge (``from_story`` absorbed into ``to_story``; its articles are those
    stored in it) or a move (``article_ids``, an article then its copies, from ``from_story`` to ``to_story``)."""

    kind: ChangeKind
    from_story: str
    to_story: str
    article_ids: tuple[int, ...]
    score: float
    evidence: dict[str, Any]


@dataclass(frozen=True)
class StoredChange:
    """A stored merge or move, in the memberships' sequence; ``article_keys`` and ``article_titles`` (in the order
    of ``article_ids``) are filled where the change is shown to a person."""

    seq: int
    kind: ChangeKind
    from_story: str
    to_story: str
    article_ids: tuple[int, ...]
    score: float
    evidence: dict[str, Any]
    at: datetime
    article_keys: tuple[str, ...] = ()
    article_titles: tuple[str, ...] = ()
