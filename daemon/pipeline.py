"""The one pipeline that `run`, `poll --once` and `replay` share.

Two stages, each safe to interrupt at any point:

1. **Feeds** — fetch every due feed (concurrently), parse it, and store its new or changed entries together with the
   feed's new state (validators, schedule, error) in ONE transaction per feed. A new entry is stored as *pending*.
2. **Articles** — for every pending entry: fetch its page, extract the body (falling back to the feed's own content),
   then, in publication order, fingerprint it and assign it to a story; the article and its story membership are
   written in one transaction. A crash between the stages leaves pending entries that the next run finishes.

Only the source of bytes differs between the daemon (HTTP) and replay (fixture files served by a transport).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from daemon.engine import Document, Engine
from daemon.errors import FeedError
from daemon.extract import extract_page, text_from_feed
from daemon.fetcher import Fetcher, FetchResult, Validators
from daemon.identity import canonical_url, entry_identity
from daemon.parser import ParsedFeed, parse_feed
from daemon.schedule import ScheduleSettings, next_poll
from storage import Database
from storage.models import Article, Entry, Feed, Membership, Story

log = logging.getLogger("wiredesk")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class FeedOutcome:
    feed_url: str
    ok: bool
    new_entries: int = 0
    changed_entries: int = 0
    not_modified: bool = False
    error: str | None = None
    error_kind: str | None = None
    warning: str | None = None


@dataclass(frozen=True)
class ArticleOutcome:
    entry_id: int
    url: str | None
    article_id: int | None
    story_id: str | None
    copy_of: int | None
    error: str | None = None
    storage: bool = False  # the error was the database's, not the article's


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
        return [f.error for f in self.feeds if f.error_kind == "storage"] + [a.error for a in self.articles if a.storage]


def storage_reason(exc: SQLAlchemyError) -> str:
    """The driver's own words ("database or disk is full", "attempt to write a readonly database"), one line."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


@dataclass(frozen=True)
class PipelineSettings:
    fetch_articles: bool = True
    max_entries_per_feed: int = 500
    max_article_chars: int = 200_000
    schedule: ScheduleSettings = ScheduleSettings()


class Progress:
    """What long work reports as it goes; the CLI draws it, the daemon logs it."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, detail: str = "") -> None: ...

    def done(self, stage: str) -> None: ...


class EngineState:
    """The in-memory engine, rebuilt from stored fingerprints when first needed or after a failed write."""

    def __init__(self, db: Database, factory: Callable[[], Engine]):
        self.db = db
        self.factory = factory
        self._engine: Engine | None = None

    def get(self) -> Engine:
        if self._engine is None:
            engine = self.factory()
            with self.db.session() as s:
                rows = s.execute(
                    select(Membership.article_id, Membership.story_id, Membership.copy_of, Article.fingerprint, Article.published)
                    .join(Article, Article.id == Membership.article_id)
                    .order_by(Membership.seq)
                )
                for article_id, story_id, copy_of, fingerprint, published in rows:
                    engine.restore(str(article_id), fingerprint, story_id, str(copy_of) if copy_of else None, published)
            self._engine = engine
        return self._engine

    def invalidate(self) -> None:
        self._engine = None


def new_story_id() -> str:
    return uuid.uuid4().hex


class Pipeline:
    def __init__(
        self,
        db: Database,
        fetcher: Fetcher,
        settings: PipelineSettings = PipelineSettings(),
        engine: EngineState | None = None,
        progress: Progress | None = None,
        parse_executor: Executor | None = None,
        external_ids: dict[str, str] | None = None,
    ):
        self.db = db
        self.fetcher = fetcher
        self.settings = settings
        self.engine = engine or EngineState(db, lambda: Engine(new_story_id=new_story_id))
        self.progress = progress or Progress()
        self.parse_executor = parse_executor
        # replay gives fixture ids by article URL, so that output speaks of the fixtures' own names
        self.external_ids = external_ids or {}

    # ---- stage 1: feeds -------------------------------------------------------------------------------------

    def due_feeds(self, now: datetime | None = None, all_feeds: bool = False) -> list[Feed]:
        now = now or utcnow()
        with self.db.session() as s:
            q = select(Feed).where(Feed.status != "gone").order_by(Feed.id)
            if not all_feeds:
                q = q.where((Feed.next_poll_at.is_(None)) | (Feed.next_poll_at <= now))
            return list(s.scalars(q))

    async def poll(self, feeds: Sequence[Feed] | None = None, *, process_articles: bool = True) -> PollReport:
        feeds = list(self.due_feeds() if feeds is None else feeds)
        report = PollReport()
        self.progress.start("feeds", len(feeds))
        loop = asyncio.get_running_loop()

        async def one(feed: Feed) -> None:
            try:
                outcome = await self._poll_feed(feed, loop)
            except SQLAlchemyError as exc:
                # a full or read-only disk: nothing of this feed's update was written, so the next poll redoes it
                outcome = FeedOutcome(feed.url, ok=False, error=f"{feed.url}: cannot store the update: {storage_reason(exc)}",
                                      error_kind="storage")
            report.feeds.append(outcome)
            self.progress.advance("feeds", feed.url)
            if outcome.error:
                log.warning("%s", outcome.error)

        await asyncio.gather(*(one(f) for f in feeds))
        self.progress.done("feeds")
        if process_articles:
            report.articles.extend(await self.process_pending())
        return report

    async def _poll_feed(self, feed: Feed, loop: asyncio.AbstractEventLoop) -> FeedOutcome:
        result = await self.fetcher.fetch(feed.url, Validators(feed.etag, feed.last_modified))
        parsed: ParsedFeed | None = None
        parse_error: FeedError | None = None
        if result.content is not None and not result.error_kind:
            try:
                parsed = await loop.run_in_executor(
                    self.parse_executor, parse_feed, result.content, feed.url, dict(result.headers), self.settings.max_entries_per_feed
                )
            except FeedError as exc:
                parse_error = exc
        return self._store_feed(feed.id, result, parsed, parse_error)

    def _store_feed(self, feed_id: int, result: FetchResult, parsed: ParsedFeed | None, parse_error: FeedError | None) -> FeedOutcome:
        now = utcnow()
        with self.db.session() as s:
            feed = s.get(Feed, feed_id)
            if feed is None:  # removed while we were fetching
                return FeedOutcome(result.url, ok=False, error="feed was removed during the poll")
            feed.last_polled_at = now
            error_kind = result.error_kind or (parse_error.kind if parse_error else None)
            error = result.error or (str(parse_error) if parse_error else None)
            entry_times: list[datetime] = []
            new = changed = 0
            if error_kind:
                feed.error_count += 1
                feed.last_error = error
                feed.last_error_kind = error_kind
                feed.last_error_at = now
                if error_kind == "gone":
                    feed.status = "gone"
                else:
                    feed.status = "error"
            else:
                feed.status = "active"
                feed.error_count = 0
                feed.last_success_at = now
                if result.etag or result.last_modified or not result.not_modified:
                    feed.etag = result.etag
                    feed.last_modified = result.last_modified
                if result.permanent_url and result.permanent_url != feed.url:
                    clash = s.scalar(select(Feed.id).where(Feed.url == result.permanent_url))
                    if clash is None:
                        log.info("feed %s moved permanently to %s", feed.url, result.permanent_url)
                        feed.url = result.permanent_url
                if parsed is not None:
                    feed.title = feed.title or parsed.title
                    feed.site_url = parsed.site_url or feed.site_url
                    new, changed = self._store_entries(s, feed, parsed, now)
                    entry_times = [e.published for e in parsed.entries if e.published]
                    feed.last_error = parsed.warning and f"parsed with a warning: {parsed.warning}"
                    feed.last_error_kind = "warning" if parsed.warning else None
                else:
                    feed.last_error = None
                    feed.last_error_kind = None
                    # 304: the feed has not changed, so its publishing rhythm is the one its stored entries show
                    entry_times = list(s.scalars(
                        select(Entry.published).where(Entry.feed_id == feed.id, Entry.published.is_not(None))
                        .order_by(Entry.published.desc()).limit(20)
                    ))
            when, interval = next_poll(
                now,
                self.settings.schedule,
                ok=not error_kind,
                error_count=feed.error_count,
                entry_times=entry_times,
                headers=dict(result.headers or {}),
                ttl=parsed.ttl_minutes if parsed else None,
                retry_after=result.retry_after,
            )
            feed.next_poll_at = when
            feed.interval_seconds = interval
            return FeedOutcome(
                feed.url,
                ok=not error_kind,
                new_entries=new,
                changed_entries=changed,
                not_modified=result.not_modified,
                error=f"{feed.url}: {error}" if error and not error.startswith(feed.url) and result.url not in error else error,
                error_kind=error_kind,
                warning=parsed.warning if parsed else None,
            )

    def _store_entries(self, s, feed: Feed, parsed: ParsedFeed, now: datetime) -> tuple[int, int]:
        existing = {e.identity: e for e in s.scalars(select(Entry).where(Entry.feed_id == feed.id))}
        by_url = {e.url: e for e in existing.values() if e.url}
        new = changed = 0
        for item in parsed.entries:
            identity = entry_identity(item)
            url = canonical_url(item.url)
            row = existing.get(identity)
            if row is None and url and url in by_url:
                # the same link under a new GUID: feeds that regenerate GUIDs must not duplicate entries
                row = by_url[url]
                row.identity = identity
                existing[identity] = row
            content_hash = item.content_hash
            if row is None:
                row = Entry(
                    feed_id=feed.id,
                    identity=identity,
                    guid=item.guid,
                    url=url,
                    title=item.title,
                    author=item.author,
                    summary=item.summary,
                    content=item.content,
                    published=item.published,
                    updated=item.updated,
                    content_hash=content_hash,
                    state="pending",
                    first_seen_at=now,
                    changed_at=now,
                )
                s.add(row)
                existing[identity] = row
                if url:
                    by_url[url] = row
                new += 1
            elif row.content_hash != content_hash:
                row.guid, row.url, row.title, row.author = item.guid, url, item.title, item.author
                row.summary, row.content, row.updated = item.summary, item.content, item.updated
                row.published = row.published or item.published
                row.content_hash = content_hash
                row.changed_at = now
                changed += 1
                if row.title:
                    # the article keeps its story; its headline follows the feed's correction
                    article = s.scalar(select(Article).where(Article.entry_id == row.id))
                    if article is not None:
                        article.title = row.title
        return new, changed

    # ---- stage 2: articles ----------------------------------------------------------------------------------

    def pending_entries(self) -> list[tuple[Entry, Feed]]:
        with self.db.session() as s:
            rows = s.execute(select(Entry, Feed).join(Feed, Feed.id == Entry.feed_id).where(Entry.state == "pending"))
            return [tuple(r) for r in rows]

    async def process_pending(self) -> list[ArticleOutcome]:
        pending = self.pending_entries()
        if not pending:
            return []
        self.progress.start("articles", len(pending))
        loop = asyncio.get_running_loop()

        async def gather_text(entry: Entry, feed: Feed) -> tuple[Entry, Feed, str | None, str, str | None]:
            text, source, problem = None, "feed", None
            if self.settings.fetch_articles and entry.url:
                page = await self.fetcher.fetch(entry.url)
                if page.content is not None and not page.error_kind:
                    text = await loop.run_in_executor(None, extract_page, page.content, page.final_url)
                    if text:
                        source = "page"
                    else:
                        problem = f"no article text in the page {entry.url}"
                else:
                    problem = page.error or f"could not fetch {entry.url}"
            if not text:
                text = text_from_feed(entry.content, entry.summary)
            if not text:
                why = problem or "no link and no content in the feed"
                return entry, feed, None, source, f"entry {entry.url or entry.identity} of {feed.url}: {why}, and the feed carries no text"
            if problem:
                log.info("%s; used the feed's own content", problem)
            return entry, feed, text[: self.settings.max_article_chars], source, None

        gathered = await asyncio.gather(*(gather_text(e, f) for e, f in pending))
        # assign in publication order so that an original is seen before the copies published after it
        gathered.sort(key=lambda g: (g[0].published or g[0].first_seen_at, g[0].id))
        outcomes: list[ArticleOutcome] = []
        for entry, feed, text, source, error in gathered:
            try:
                if error:
                    outcomes.append(self._mark_no_text(entry, error))
                else:
                    outcomes.append(self._assign(entry, feed, text, source))
            except SQLAlchemyError as exc:
                # the entry stays pending and is taken up again by the next poll; the rest would fail the same way
                reason = f"cannot store articles: {storage_reason(exc)}"
                outcomes.append(ArticleOutcome(entry.id, entry.url, None, None, None, reason, storage=True))
                break
            self.progress.advance("articles", entry.url or "")
        self.progress.done("articles")
        return outcomes

    def _mark_no_text(self, entry: Entry, error: str) -> ArticleOutcome:
        log.warning("%s", error)
        with self.db.session() as s:
            row = s.get(Entry, entry.id)
            if row is not None:
                row.state = "no_text"
                row.error = error
        return ArticleOutcome(entry.id, entry.url, None, None, None, error)

    def _assign(self, entry: Entry, feed: Feed, text: str, source: str) -> ArticleOutcome:
        now = utcnow()
        engine = self.engine.get()
        try:
            with self.db.session() as s:
                row = s.get(Entry, entry.id)
                if row is None or row.state != "pending":
                    return ArticleOutcome(entry.id, entry.url, None, None, None, None)
                title = (entry.title or "").strip() or text.split("\n", 1)[0][:200]
                article = Article(
                    entry_id=entry.id,
                    external_id=self.external_ids.get(entry.url or ""),
                    url=entry.url,
                    title=title,
                    text=text,
                    source=feed.title or feed.url,
                    published=entry.published,
                    extracted_from=source,
                    text_hash=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
                    fingerprint=b"",
                    created_at=now,
                )
                s.add(article)
                s.flush()
                decision = engine.add(
                    Document(id=str(article.id), title=title, text=text, published=entry.published, source=article.source, url=entry.url)
                )
                article.fingerprint = decision.fingerprint
                story = s.get(Story, decision.story_id)
                if story is None:
                    story = Story(id=decision.story_id, uuid=f"urn:uuid:{uuid.UUID(hex=decision.story_id) if len(decision.story_id) == 32 else uuid.uuid4()}",
                                  title=title, created_at=now, updated_at=now, article_count=0)
                    s.add(story)
                story.updated_at = now
                story.article_count += 1
                seq = (s.scalar(select(func.max(Membership.seq))) or 0) + 1
                copy_of = int(decision.copy_of) if decision.copy_of else None
                s.add(Membership(article_id=article.id, story_id=story.id, copy_of=copy_of, score=float(decision.score),
                                 evidence=decision.evidence, created_at=now, seq=seq))
                row.state = "done"
                row.error = None
                article_id, story_id = article.id, story.id
        except BaseException:
            # the engine already indexed the article; rebuild it from what was actually committed
            self.engine.invalidate()
            raise
        return ArticleOutcome(entry.id, entry.url, article_id, story_id, copy_of)


def register_feeds(db: Database, feeds: Iterable[tuple[str, str | None, str | None]]) -> int:
    """Add (url, title, folder) feeds that are not stored yet; returns how many were added."""
    added = 0
    now = utcnow()
    with db.session() as s:
        known = set(s.scalars(select(Feed.url)))
        for url, title, folder in feeds:
            if url in known:
                continue
            s.add(Feed(url=url, title=title, folder=folder, status="active", error_count=0, created_at=now))
            known.add(url)
            added += 1
    return added
