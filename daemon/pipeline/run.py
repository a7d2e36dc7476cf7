"""The Pipeline: the stages in order (see the package's docstring), their concurrency and their failures."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import BrokenExecutor, Executor
from datetime import datetime, timedelta, timezone
from typing import TypeGuard

from daemon.engine import Document, Engine
from daemon.errors import EngineError, FeedError, StorageConflict, StorageError
from daemon.extract.article import extract_page, text_from_feed, title_of_page
from daemon.fetch.client import Fetcher, FetchResult, Validators
from daemon.fetch.urls import publisher_of
from daemon.parse.feed import ParsedFeed
from daemon.parse.identity import EntryKeys, parse_feed_keyed
from daemon.pipeline import settle as settling
from daemon.pipeline.feed_update import decide_feed_update
from daemon.pipeline.records import (
    ArticleOutcome,
    FeedOutcome,
    Fetched,
    GatheredText,
    PipelineSettings,
    PollReport,
    Progress,
    describe_failure,
    failed_fetch,
)
from daemon.schedule import RECENT_ENTRIES
from daemon.states import ChangeKind, EntryState, ErrorKind, TextSource
from storage import Database
from storage.articles import url_key
from storage.decisions import DecisionTransaction, decision_transaction
from storage.entries import FoundText, mark_no_text, mark_ready, pending_entries, ready_entries
from storage.feeds import claim_due_feeds, feed_by_id
from storage.records import (
    EntryRecord,
    FeedRecord,
    FeedUpdateContext,
    FeedUpdateIntent,
    KnownEntry,
    NewArticle,
    StoredChange,
    StoredFeed,
    StoredPage,
    StoryDecision,
)
from storage.updates import update_feeds

log = logging.getLogger("wiredesk")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


CLAIM_CHUNK = 25  # feeds a worker claims at a time on a shared database


class EngineState:
    """The in-memory engine, kept equal to what is stored.

    Built from the stored fingerprints when first needed, rebuilt after a failed write, and brought up to date
    before every decision with the memberships other processes committed since (``catch_up``), so several
    workers sharing one database decide on the same state.
    """

    def __init__(self, db: Database, factory: Callable[[], Engine]):
        self.db = db
        self.factory = factory
        self._engine: Engine | None = None
        self._seq = 0  # the highest membership seq the engine has seen

    def get(self) -> Engine:
        if self._engine is None:
            self._engine = self.factory()
            self._seq = 0
            with decision_transaction(self.db) as tx:
                self.catch_up(tx)  # the bulk of a restart, without holding up other workers' decisions
            with decision_transaction(self.db) as tx:
                tx.lock()
                self.catch_up(tx)
                if self._engine.shared_indexes_ahead():
                    # Nobody can decide while we hold the lock, so Redis knowing more articles than the database
                    # means its keys outlived an earlier database at this URL: start them again from this one.
                    log.warning(
                        "the Redis indexes hold articles this database does not (an earlier database at the "
                        "same URL?): clearing them and rebuilding from the database"
                    )
                    self._engine.clear_shared_indexes()
                    self._engine = self.factory()
                    self._seq = 0
                    self.catch_up(tx)
        return self._engine

    def catch_up(self, tx: DecisionTransaction) -> None:
        """Restore the decisions stored since (each in the story its article is in now) and replay the settling
        passes' merges and moves, in seq order; a change the restored state already shows is a no-op."""
        engine = self._engine if self._engine is not None else self.get()
        restored: set[int] = set()  # restored in their current story: later moves of them are already in it
        for m in tx.log_after(self._seq):
            if isinstance(m, StoredChange):
                if not (m.kind == ChangeKind.MOVE and restored.issuperset(m.article_ids)):
                    try:
                        engine.apply(settling.to_engine(m))
                    except EngineError as exc:
                        # a change this engine cannot replay (an article it no longer keeps the terms of): a fresh
                        # engine restores every article where it is now, which no change needs replaying on
                        log.info("rebuilding the story engine from the database: %s", exc)
                        self._engine, self._seq = self.factory(), 0
                        self.catch_up(tx)
                        return
            else:
                restored.add(m.article_id)
                engine.restore(
                    str(m.article_id),
                    m.fingerprint,
                    m.story_id,
                    str(m.copy_of) if m.copy_of else None,
                    m.published,
                    m.source,
                )
            self._seq = m.seq

    def advance(self, seq: int) -> None:
        self._seq = seq

    def invalidate(self) -> None:
        self._engine = None


def _alive(owner: str | None) -> bool:
    """Whether a lease's owner may still be working: a process on this host that no longer exists is not (an
    interrupted `poll --once`, say), so nobody waits for its leases to expire before deciding stories."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:40] or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


def _database_failed(exc: BaseException) -> TypeGuard[StorageError]:
    """Whether the database itself failed (a full or read-only disk, a lost connection, Redis out of reach), as
    opposed to one feed's or one article's content that it refused: only the first stops a poll's writing."""
    return isinstance(exc, StorageError) and exc.database_failed


def new_story_id() -> str:
    return uuid.uuid4().hex


class Pipeline:
    def __init__(
        self,
        db: Database,
        fetcher: Fetcher,
        settings: PipelineSettings = PipelineSettings(),  # noqa: B008 - frozen: one shared default is safe
        engine: EngineState | None = None,
        progress: Progress | None = None,
        parse_executor: Executor | None = None,
        external_ids: dict[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.db = db
        self.fetcher = fetcher
        self.settings = settings
        # who holds a feed's lease: unique per pipeline, readable in the database by a person
        self.worker = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.engine = engine or EngineState(
            db, lambda: Engine(new_story_id=new_story_id, lsh_storage=settings.lsh_storage, embedder=settings.embedder)
        )
        self.progress = progress or Progress()
        self.parse_executor = parse_executor
        # replay gives fixture ids by article URL, so that output speaks of the fixtures' own names
        self.external_ids = external_ids or {}
        # what "now" is for leases, schedules and stored times: tests move it instead of waiting
        self.clock = clock

    # ---- stage 1: feeds -------------------------------------------------------------------------------------

    def due_feeds(
        self,
        now: datetime | None = None,
        all_feeds: bool = False,
        limit: int | None = None,
        exclude: Sequence[int] = (),
    ) -> list[FeedRecord]:
        """The feeds to poll now, leased to this process so that no other worker polls them at the same time
        (storage.feeds.claim_due_feeds)."""
        return claim_due_feeds(
            self.db,
            self.worker,
            now or self.clock(),
            self.settings.lease_seconds,
            all_feeds=all_feeds,
            limit=limit,
            exclude=exclude,
        )

    async def poll(self, feeds: Sequence[FeedRecord] | None = None, *, process_articles: bool = True) -> PollReport:
        """One poll, the stages in order: the due feeds (or ``feeds``) fetched, parsed, decided and stored; then the
        pending entries' pages fetched and extracted; then the stories of the articles found decided and stored."""
        report = PollReport()
        report.feeds.extend(await self.update_feeds(self.due_feeds() if feeds is None else feeds))
        if process_articles:
            report.articles.extend(await self.process_pending())  # texts, then story decisions (decide_ready)
        return report

    async def update_feeds(self, feeds: Sequence[FeedRecord]) -> list[FeedOutcome]:
        """Stage 1: fetch and parse the feeds concurrently, decide each one's update, store them in batches."""
        feeds = list(feeds)
        outcomes: list[FeedOutcome] = []
        self.progress.start("feeds", len(feeds))
        loop = asyncio.get_running_loop()
        # Fetching and parsing run concurrently; one writer stores what is ready, several feeds per transaction, so
        # that a thousand feeds do not cost a thousand commits.
        ready: asyncio.Queue[Fetched] = asyncio.Queue()

        async def fetch(feed: FeedRecord) -> None:
            try:
                item = await self._fetch_feed(feed, loop)
            except Exception as exc:  # whatever went wrong is this feed's error; the poll goes on
                log.debug("fetching %s failed", feed.url, exc_info=True)
                item = failed_fetch(
                    feed.id,
                    feed.url,
                    FeedError(feed.url, f"cannot fetch the feed: {describe_failure(exc)}", kind=ErrorKind.FETCH),
                )
            ready.put_nowait(item)

        async def write() -> None:
            remaining = len(feeds)
            while remaining:
                batch = [await ready.get()]
                if ready.qsize() < min(WRITE_BATCH, remaining) - 1:
                    await asyncio.sleep(WRITE_PAUSE)  # let more feeds arrive: fewer, fuller transactions
                while len(batch) < WRITE_BATCH and not ready.empty():
                    batch.append(ready.get_nowait())
                remaining -= len(batch)
                for outcome in self._store_feeds(batch):
                    outcomes.append(outcome)
                    self.progress.advance("feeds", outcome.feed_url)
                    if outcome.error:
                        log.warning("%s", outcome.error)

        fetching = [asyncio.ensure_future(fetch(f)) for f in feeds]
        try:
            await write()
        finally:
            # cancelled (the service is stopping) or failed: what was written stays written, the rest is redone
            for task in fetching:
                task.cancel()
        self.progress.done("feeds")
        return outcomes

    async def take_push(self, feed_id: int, content: bytes, headers: dict) -> PollReport:
        """Content a WebSub hub pushed for this feed: parsed, stored and processed as a poll's would be."""
        report = PollReport()
        feed = feed_by_id(self.db, feed_id)
        if feed is None:
            return report
        result = FetchResult(
            url=feed.url,
            final_url=feed.url,
            status=200,
            content=content,
            headers=headers,
            etag=feed.etag,
            last_modified=feed.last_modified,
            permanent_url=None,
            not_modified=False,
            retry_after=None,
            error_kind=None,
            error=None,
            elapsed=0.0,
        )
        loop = asyncio.get_running_loop()
        parsed: ParsedFeed | None = None
        keys: tuple[EntryKeys, ...] = ()
        parse_error: FeedError | None = None
        try:
            keyed = await loop.run_in_executor(
                None, parse_feed_keyed, content, feed.url, headers, self.settings.max_entries_per_feed
            )
            # the subscription is the one wiredesk made: a push (without a Link header, or naming another hub) never
            # moves or ends it; the feed's own polls say where its hub is
            parsed = dataclasses.replace(keyed.feed, hub_url=feed.hub_url, self_url=feed.websub_topic)
            keys = keyed.keys
        except FeedError as exc:
            parse_error = exc
        report.feeds.extend(self._store_feeds([Fetched(feed.id, feed.url, result, parsed, keys, parse_error)]))
        report.articles.extend(await self.process_pending([feed.id]))
        return report

    async def _fetch_feed(self, feed: FeedRecord, loop: asyncio.AbstractEventLoop) -> Fetched:
        result = await self.fetcher.fetch(feed.url, Validators(feed.etag, feed.last_modified))
        parsed: ParsedFeed | None = None
        keys: tuple[EntryKeys, ...] = ()
        parse_error: FeedError | None = None
        if result.content is not None and not result.error_kind:
            parse = functools.partial(
                parse_feed_keyed, result.content, feed.url, dict(result.headers), self.settings.max_entries_per_feed
            )
            try:
                executor = self.parse_executor
                try:
                    keyed = await loop.run_in_executor(executor, parse)
                except BrokenExecutor:
                    # A parse worker died (killed, out of memory) and took the pool with it: every later feed would
                    # fail alike, so the rest are parsed in threads of this process, this one included.
                    if self.parse_executor is executor:
                        log.warning("a feed parsing process ended unexpectedly; parsing in this process from now on")
                        self.parse_executor = None
                    keyed = await loop.run_in_executor(None, parse)
                parsed, keys = keyed.feed, keyed.keys
            except FeedError as exc:
                parse_error = exc
            except Exception as exc:  # a parser bug or a worker that died: the feed's error, with the reason
                log.debug("parsing %s failed", feed.url, exc_info=True)
                parse_error = FeedError(
                    feed.url, f"cannot parse the feed: {describe_failure(exc)}", kind=ErrorKind.PARSE
                )
        return Fetched(feed.id, feed.url, result, parsed, keys, parse_error)

    def _store_feeds(self, batch: Sequence[Fetched]) -> list[FeedOutcome]:
        """Store several feeds' updates in one transaction; each feed's update is whole or absent.

        If the transaction fails, nothing of it was written and the feeds are stored again one per transaction, so
        that one feed's bad data or a database error costs that feed alone, never its neighbours in the batch.
        """
        if not batch:
            return []
        try:
            return self._write_feeds(batch)
        except Exception as exc:
            if len(batch) > 1:
                log.debug("storing %d feeds together failed (%s); storing them one at a time", len(batch), exc)
                return [outcome for item in batch for outcome in self._store_feeds([item])]
            url = batch[0].url
            if _database_failed(exc):
                # a full or read-only disk: nothing of this feed's update was written, so the next poll redoes it
                return [
                    FeedOutcome(
                        url,
                        ok=False,
                        error=f"{url}: cannot store the update: {exc.reason}",
                        error_kind=ErrorKind.STORAGE,
                    )
                ]
            # this feed's content (or a bug it triggers): the feed's error, and its schedule backs off
            log.debug("storing the update of %s failed", url, exc_info=True)
            failed = failed_fetch(
                batch[0].feed_id,
                url,
                FeedError(url, f"cannot store the update: {describe_failure(exc)}", kind=ErrorKind.STORE),
                batch[0].result,
            )
            try:
                return self._write_feeds([failed])
            except Exception as again:
                if not _database_failed(again):
                    raise
                return [
                    FeedOutcome(
                        url,
                        ok=False,
                        error=f"{url}: cannot store the update: {again.reason}",
                        error_kind=ErrorKind.STORAGE,
                    )
                ]

    def _write_feeds(self, batch: Sequence[Fetched]) -> list[FeedOutcome]:
        """Decide each feed's update from what storage read for the batch, and have it written, in one transaction."""
        now = self.clock()

        def decide(stored: FeedUpdateContext) -> tuple[list[FeedOutcome], list[FeedUpdateIntent]]:
            outcomes, intents = [], []
            for item in batch:
                feed = stored.feeds.get(item.feed_id)
                if feed is None:  # removed while we were fetching
                    outcomes.append(FeedOutcome(item.result.url, ok=False, error="feed was removed during the poll"))
                    continue
                intent, outcome = self._update_feed(
                    feed, item, now, stored.known.get(feed.id, []), stored.recent.get(feed.id, []), stored.taken_urls
                )
                outcomes.append(outcome)
                intents.append(intent)
            return outcomes, intents

        # what the batch needs from the entries table, in two queries rather than two per feed
        return update_feeds(
            self.db,
            [item.feed_id for item in batch],
            parsed=[item.feed_id for item in batch if item.parsed is not None],
            not_modified=[item.feed_id for item in batch if item.result.not_modified],
            moved_to={item.result.permanent_url for item in batch if item.result.permanent_url},
            recent_entries=RECENT_ENTRIES,  # the schedule reads a not-modified feed's rhythm from these
            decide=decide,
        )

    def _update_feed(
        self,
        feed: StoredFeed,
        item: Fetched,
        now: datetime,
        known: list[KnownEntry],
        recent: list[datetime],
        taken_urls: Collection[str],
    ) -> tuple[FeedUpdateIntent, FeedOutcome]:
        """The feed's update and outcome: the pure decider, with this pipeline's schedule."""
        return decide_feed_update(feed, item, known, recent, now, self.settings.schedule, taken_urls)

    # ---- stage 2: articles ----------------------------------------------------------------------------------

    def pending_entries(self, feed_ids: Sequence[int] | None = None) -> list[tuple[EntryRecord, FeedRecord]]:
        """Entries waiting for their article: of the given feeds (the ones this worker polled) plus any left over
        longer than a lease (a worker died before finishing them); all of them when no feeds are given."""
        stale = self.clock() - timedelta(seconds=self.settings.lease_seconds)
        return pending_entries(self.db, feed_ids, stale_before=stale)

    async def poll_due(self, all_feeds: bool = False, process_articles: bool = True) -> PollReport:
        """Poll what is due, claiming feeds a few at a time so that workers sharing a database share the work."""
        report = PollReport()
        try:
            if self.db.dialect == "sqlite":  # one worker: take everything at once
                return await self.poll(self.due_feeds(all_feeds=all_feeds), process_articles=process_articles)
            return await self._poll_shared(report, all_feeds, process_articles)
        except StorageError as exc:
            # claiming feeds is a write too: a full or read-only database stops the poll before it starts
            report.feeds.append(
                FeedOutcome(
                    "(claiming due feeds)",
                    ok=False,
                    error_kind=ErrorKind.STORAGE,
                    error=f"cannot claim due feeds: {exc.reason}",
                )
            )
            return report

    async def _poll_shared(self, report: PollReport, all_feeds: bool, process_articles: bool) -> PollReport:
        polled: list[int] = []
        while True:
            batch = self.due_feeds(all_feeds=all_feeds, limit=CLAIM_CHUNK, exclude=polled)
            if not batch:
                break
            polled.extend(f.id for f in batch)
            report.feeds.extend((await self.poll(batch, process_articles=False)).feeds)
        if process_articles:
            report.articles.extend(await self.process_pending(polled))
        return report

    async def process_pending(self, feed_ids: Sequence[int] | None = None) -> list[ArticleOutcome]:
        pending = self.pending_entries(feed_ids)
        if not pending:
            return self.decide_ready()  # texts another worker found and left for the last one to decide
        self.progress.start("articles", len(pending))
        loop = asyncio.get_running_loop()

        async def gather_text(entry: EntryRecord, feed: FeedRecord) -> GatheredText:
            text, source, problem = None, TextSource.FEED, None
            page_url = page_title = None
            fetch_page = self.settings.fetch_articles if feed.fetch_articles is None else feed.fetch_articles
            if fetch_page and entry.url:
                page = await self.fetcher.fetch(entry.url)
                if page.content is not None and not page.error_kind:
                    text = await loop.run_in_executor(None, extract_page, page.content, page.final_url)
                    if text:
                        source, page_url = TextSource.PAGE, page.final_url
                        if publisher_of(page_url) != publisher_of(feed.url):
                            # the feed is not the page's publisher: what is shown under the publisher's name is
                            # what the publisher wrote, its title included, not what the feed says it wrote
                            page_title = await loop.run_in_executor(None, title_of_page, page.content)
                    else:
                        problem = f"no article text in the page {entry.url}"
                else:
                    problem = page.error or f"could not fetch {entry.url}"
            if not text:
                text = text_from_feed(entry.content, entry.summary)
            if not text:
                why = problem or "no link and no content in the feed"
                return GatheredText(
                    entry,
                    feed,
                    None,
                    f"entry {entry.url or entry.identity} of {feed.url}: {why}, and the feed carries no text",
                )
            if problem:
                log.info("%s; used the feed's own content", problem)
            kept = FoundText(entry.id, text[: self.settings.max_article_chars], source, page_url, page_title)
            return GatheredText(entry, feed, kept)

        async def found(entry: EntryRecord, feed: FeedRecord) -> GatheredText:
            try:
                result = await gather_text(entry, feed)
            except Exception as exc:  # an extractor or fetcher bug on this entry: the entry's error, not the poll's
                log.debug("finding the text of %s failed", entry.url or entry.identity, exc_info=True)
                result = GatheredText(
                    entry,
                    feed,
                    None,
                    f"entry {entry.url or entry.identity} of {feed.url}: cannot find its text: {describe_failure(exc)}",
                )
            self.progress.advance("articles", entry.url or "")
            return result

        gathered = await asyncio.gather(*(found(e, f) for e, f in pending))
        self.progress.done("articles")
        outcomes: list[ArticleOutcome] = []
        ready: list[FoundText] = []
        try:
            for got in gathered:
                if got.found is None:
                    outcomes.append(self._mark_no_text(got.entry, got.error or "no text"))
                else:
                    ready.append(got.found)
            mark_ready(self.db, ready)
        except StorageError as exc:
            # the entries stay pending and are taken up again by the next poll
            outcomes.append(
                ArticleOutcome(None, None, None, None, None, f"cannot store articles: {exc.reason}", storage=True)
            )
            return outcomes
        outcomes.extend(self.decide_ready())
        return outcomes

    def decide_ready(self) -> list[ArticleOutcome]:
        """Decide the stories of every entry whose text is found, one at a time in one canonical order (publication
        time, then feed URL and entry identity), so that one worker or several take the same decisions.

        With several workers sharing the database, whoever finishes last decides: while another worker holds feeds
        or has entries still waiting for their text, this returns at once (unless texts have waited longer than
        ``decide_wait``) and that worker decides when it is done.
        """
        rows = ready_entries(
            self.db,
            shared=self.db.dialect != "sqlite",
            worker=self.worker,
            now=self.clock(),
            lease_seconds=self.settings.lease_seconds,
            decide_wait=self.settings.decide_wait,
            alive=_alive,
        )
        if not rows:
            return []
        self.progress.start("stories", len(rows))
        outcomes: list[ArticleOutcome] = []
        for at in range(0, len(rows), DECIDE_BATCH):
            chunk = rows[at : at + DECIDE_BATCH]
            try:
                outcomes.extend(self._assign_each(chunk))
            except Exception as exc:
                if not _database_failed(exc):
                    raise
                # the chunk's entries stay ready and are decided by the next poll; the rest would fail the same way
                reason = f"cannot store articles: {exc.reason}"
                entry = chunk[0][0]
                outcomes.append(ArticleOutcome(entry.id, entry.url, None, None, None, reason, storage=True))
                break
            for entry, _ in chunk:
                self.progress.advance("stories", entry.url or "")
        self.progress.done("stories")
        return outcomes

    def _mark_no_text(
        self, entry: EntryRecord, error: str, states: Sequence[str] = (EntryState.PENDING, EntryState.READY)
    ) -> ArticleOutcome:
        log.warning("%s", error)
        mark_no_text(self.db, entry.id, error, states)
        return ArticleOutcome(entry.id, entry.url, None, None, None, error)

    def _assign_each(self, chunk: list[tuple[EntryRecord, FeedRecord]], again: bool = True) -> list[ArticleOutcome]:
        """_assign, and when the chunk fails for another reason than the database's, each entry alone: the entry
        that cannot be stored or decided is set aside with its error, the others are decided in their turn."""
        self.engine.get()  # an engine that cannot be built is no entry's fault: that error goes up as it is
        try:
            return self._assign(chunk)
        except Exception as exc:
            if _database_failed(exc):
                raise
            if len(chunk) == 1 and again and isinstance(exc, StorageConflict):
                # another worker stored the same page meanwhile: looked up again, the entry is recorded on it
                return self._assign_each(chunk, again=False)
            if len(chunk) == 1:
                entry, feed = chunk[0]
                log.debug("deciding the story of %s failed", entry.url or entry.identity, exc_info=True)
                return [
                    self._mark_no_text(
                        entry,
                        f"entry {entry.url or entry.identity} of {feed.url}: cannot store "
                        f"its article: {describe_failure(exc)}",
                        states=(EntryState.READY,),
                    )
                ]
            log.debug("deciding %d articles together failed (%s); deciding them one at a time", len(chunk), exc)
        return [outcome for item in chunk for outcome in self._assign_each([item])]

    def _assign(self, chunk: list[tuple[EntryRecord, FeedRecord]]) -> list[ArticleOutcome]:
        """Store the articles of ready entries (their texts were found and kept on the entries) and decide their stories,
        in the order given, in one transaction."""
        now = self.clock()
        engine = self.engine.get()
        outcomes: list[ArticleOutcome | None] = []  # in the chunk's order; None until decided below
        try:
            with decision_transaction(self.db) as tx:
                # locked: another worker deciding the same entries waits here, then finds them done
                locked = tx.lock_entries([entry.id for entry, _ in chunk])
                # one article per page: an entry whose canonical URL is stored already, or new earlier in the chunk,
                # is recorded on that article (the unique url_key stops a second one from another worker)
                pages = tx.stored_pages({key for entry, _ in chunk if (key := url_key(entry.url))})
                same: list[tuple[int, EntryRecord, FeedRecord, str]] = []
                new_pages: set[str] = set()
                todo: list[tuple[int, EntryRecord, NewArticle, Document]] = []
                for at, (entry, feed) in enumerate(chunk):
                    row = locked.get(entry.id)
                    if row is None or row.state != EntryState.READY:
                        outcomes.append(ArticleOutcome(entry.id, entry.url, None, None, None, None))
                        continue
                    outcomes.append(None)
                    key = url_key(entry.url)
                    if key is not None and (key in pages or key in new_pages):
                        same.append((at, entry, feed, key))
                        continue
                    if key is not None:
                        new_pages.add(key)
                    text, source = row.text or "", TextSource(row.text_source or TextSource.FEED)
                    title = (row.page_title or entry.title or "").strip() or text.split("\n", 1)[0][:200]
                    article = NewArticle(
                        entry_id=entry.id,
                        external_id=self.external_ids.get(entry.url or ""),
                        url=entry.url,
                        title=title,
                        text=text,
                        source=feed.title or feed.url,
                        published=entry.published,
                        url_key=key,
                        extracted_from=source,
                        page_url=row.page_url if source == "page" else None,
                        text_hash=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
                    )
                    # a pure function of the title and text: computed before the decision lock is taken
                    doc = Document(
                        id="", title=title, text=text, published=entry.published, source=article.source, url=entry.url
                    )
                    todo.append((at, entry, article, doc))
                if not todo:
                    self._record_same_pages(tx, same, pages, now, outcomes)
                    return [outcome for outcome in outcomes if outcome is not None]
                # the chunk's fingerprints together: the semantic vectors of all but the copies in one batch, in
                # the parse worker processes where there are some
                fps = engine.fingerprints_to_add([doc for _, _, _, doc in todo], executor=self.parse_executor)
                article_ids = tx.add_articles([article for _, _, article, _ in todo], now)
                # one decision at a time across processes: PostgreSQL serialises on an advisory lock held until commit;
                # SQLite already holds its single write lock since the articles were written
                tx.lock()
                self.engine.catch_up(tx)
                seq = tx.last_seq()
                decisions = [
                    engine.add(dataclasses.replace(doc, id=str(article_id)), fingerprint=fp)
                    for (_, _, _, doc), article_id, fp in zip(todo, article_ids, fps)
                ]
                stored = tx.store(
                    [
                        StoryDecision(entry.id, article_id, d.story_id, d.copy_of, d.score, d.evidence, d.fingerprint)
                        for (_, entry, _, _), article_id, d in zip(todo, article_ids, decisions)
                    ],
                    now,
                    seq,
                )
                for (at, entry, article, _), done in zip(todo, stored):
                    outcomes[at] = ArticleOutcome(entry.id, entry.url, done.article_id, done.story_id, done.copy_of)
                    if article.url_key is not None:
                        pages[article.url_key] = StoredPage(done.article_id, done.story_id)
                self._record_same_pages(tx, same, pages, now, outcomes)
                self.engine.advance(stored[-1].seq if stored else seq)
        except BaseException:
            # the engine already indexed the articles; rebuild it from what was actually committed
            self.engine.invalidate()
            raise
        return [outcome for outcome in outcomes if outcome is not None]

    # ---- settling: the young stories revisited ------------------------------------------------------------------

    def settle(self, *, stream_time: bool = False) -> settling.SettleReport:
        """One settling pass: under the story-decision lock, the engine catches up with what is stored, revisits
        its young stories (Engine.settle) and the merges and moves it makes are stored in the same transaction. A
        failure rolls everything back and the engine is rebuilt from what is stored.

        Young is reckoned from the clock, or with ``stream_time`` from the newest publication time stored (a replayed
        corpus of the past is settled as a daemon would have settled it when it came)."""
        started = time.monotonic()
        now = self.clock()
        engine = self.engine.get()
        try:
            with decision_transaction(self.db) as tx:
                tx.lock()
                self.engine.catch_up(tx)
                seq = tx.last_seq()
                changes = engine.settle(None if stream_time else now)
                stored = tx.store_changes([settling.to_storage(c) for c in changes], now, seq)
                self.engine.advance(stored[-1].seq if stored else seq)
        except BaseException:
            # the engine applied changes that are not stored: rebuild it from what was committed
            self.engine.invalidate()
            raise
        report = settling.SettleReport(tuple(stored), time.monotonic() - started)
        if report.changes:
            log.info("settled the young stories: %s in %.2f s", report.describe(), report.seconds)
        else:
            log.debug("settled the young stories: no change in %.2f s", report.seconds)
        return report

    @staticmethod
    def _record_same_pages(
        tx: DecisionTransaction,
        same: list[tuple[int, EntryRecord, FeedRecord, str]],
        pages: dict[str, StoredPage],
        now: datetime,
        outcomes: list[ArticleOutcome | None],
    ) -> None:
        """The entries whose page is an article already (listed by another feed): each is recorded on that article,
        whose story and copies stay as they are, and is done."""
        for at, entry, feed, key in same:
            page = pages[key]
            tx.record_same_page(entry.id, page, feed.title or feed.url, now)
            outcomes[at] = ArticleOutcome(entry.id, entry.url, None, page.story_id, None, same_as=page.article_id)


# ---- stage 1 helpers: entries written in bulk -------------------------------------------------------------------

# Feeds stored per transaction. Large enough that commits stop mattering, small enough that the event loop (which
# the writes share with the fetches) is never held for long.
WRITE_BATCH = 100
WRITE_PAUSE = 0.05  # seconds the writer waits for a batch to fill: at most 20 transactions a second
# Ready entries stored and decided per transaction: one commit, one catch-up and one lock per batch instead of per
# article. Small enough that the decision lock is never held for long (about 1 ms per article).
DECIDE_BATCH = 64
