"""The records the pipeline's stages pass to each other and report: typed, frozen where they travel."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from daemon.errors import FeedError, first_line
from daemon.fetch.client import FetchResult
from daemon.parse.feed import ParsedFeed
from daemon.parse.identity import EntryKeys
from daemon.schedule import ScheduleSettings
from daemon.states import ErrorKind
from storage.entries import FoundText
from storage.records import EntryRecord, FeedRecord


@dataclass(frozen=True)
class FeedOutcome:
    feed_url: str
    ok: bool
    new_entries: int = 0
    changed_entries: int = 0
    not_modified: bool = False
    error: str | None = None
    error_kind: ErrorKind | None = None
    warning: str | None = None


@dataclass(frozen=True)
class ArticleOutcome:
    entry_id: int | None  # None: an error of the whole stage (the database failed)
    url: str | None
    article_id: int | None
    story_id: str | None
    copy_of: int | None
    error: str | None = None
    storage: bool = False  # the error was the database's, not the article's
    same_as: int | None = None  # the article stored for the same page (another feed listed it): no new article


@dataclass
class PollReport:
    feeds: list[FeedOutcome] = field(default_factory=list)
    articles: list[ArticleOutcome] = field(default_factory=list)

    @property
    def failed_feeds(self) -> list[FeedOutcome]:
        return [f for f in self.feeds if not f.ok]

    @property
    def failed_articles(self) -> list[ArticleOutcome]:
        return [a for a in self.articles if a.error and not a.storage]

    @property
    def storage_errors(self) -> list[str]:
        return [f.error or "" for f in self.feeds if f.error_kind == ErrorKind.STORAGE] + [
            a.error or "" for a in self.articles if a.storage
        ]


@dataclass(frozen=True)
class PipelineSettings:
    fetch_articles: bool = True
    max_entries_per_feed: int = 500
    max_article_chars: int = 200_000
    schedule: ScheduleSettings = ScheduleSettings()
    lease_seconds: float = 600.0  # how long a worker may hold a feed it is polling before others take it over
    lsh_storage: dict[str, Any] | None = (
        None  # datasketch storage_config for the copy and story indexes (Redis), None: in memory
    )
    embedder: Any = None  # the semantic model (engine.embed.Embedder), None: lexical signals only
    # Several workers: story decisions wait until no other worker is still polling or finding texts, so that they are
    # taken in one canonical order whatever the number of workers. A service gives up waiting for texts found longer
    # ago than this (a deployment whose workers never pause); None waits (a one-off poll: the last worker decides).
    decide_wait: float | None = None


class Progress:
    """What long work reports as it goes; the CLI draws it, the daemon logs it."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, detail: str = "") -> None: ...

    def done(self, stage: str) -> None: ...


@dataclass(frozen=True)
class GatheredText:
    """What the article stage found for one pending entry: its text (where from, which page), or why there is none."""

    entry: EntryRecord
    feed: FeedRecord
    found: FoundText | None  # None: no text anywhere (``error`` says why)
    error: str | None = None


@dataclass(frozen=True)
class Fetched:
    """One feed's fetch and parse, waiting for the writer."""

    feed_id: int
    url: str
    result: FetchResult
    parsed: ParsedFeed | None
    keys: tuple[EntryKeys, ...]  # of the parsed entries, in order
    parse_error: FeedError | None


def failed_fetch(feed_id: int, url: str, error: FeedError, result: FetchResult | None = None) -> Fetched:
    """A feed's fetch that ends in ``error``: stored like any failed fetch (the error, a backed-off schedule)."""
    if result is None:
        result = FetchResult(
            url=url,
            final_url=url,
            status=None,
            content=None,
            headers={},
            etag=None,
            last_modified=None,
            permanent_url=None,
            not_modified=False,
            retry_after=None,
            error_kind=None,
            error=None,
            elapsed=0.0,
        )
    else:
        result = dataclasses.replace(
            result, content=None, permanent_url=None, not_modified=False, error_kind=None, error=None
        )
    return Fetched(feed_id, url, result, None, (), error)


def describe_failure(exc: BaseException) -> str:
    """One line for an unexpected exception: its type and the first line of its message."""
    said = getattr(exc, "orig", None) or exc
    return f"{type(said).__name__}: {first_line(said, 300)}" if str(said).strip() else type(said).__name__
