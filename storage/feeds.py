"""Queries on feeds: adding, removing, listing. Records out, never ORM objects."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update

from daemon.errors import StorageConflict
from daemon.states import FeedStatus
from storage.db import Database
from storage.models import Entry, Feed
from storage.records import FeedRecord, FeedSummary

# URLs looked up per query when importing many feeds at once (well under every backend's parameter limit).
LOOKUP_CHUNK = 500


def add_feed(db: Database, url: str, title: str | None, folder: str | None, now: datetime) -> bool:
    """Add one feed (already checked), added ``now``; False when it is there already."""
    try:
        with db.session() as s:
            if s.scalar(select(Feed.id).where(Feed.url == url)) is not None:
                return False
            s.add(
                Feed(
                    url=url,
                    title=title,
                    folder=folder,
                    status=FeedStatus.ACTIVE.value,
                    error_count=0,
                    created_at=now,
                )
            )
    except StorageConflict:
        return False  # another worker starting at the same moment added it first
    return True


def add_new_feeds(db: Database, feeds: dict[str, tuple[str | None, str | None]], now: datetime) -> int | None:
    """Add the feeds ``{url: (title, folder)}`` not stored yet, added ``now``, in one transaction; how many were
    new, or None when another process added some of them meanwhile (then nothing was added). One lookup per few
    hundred URLs and one bulk insert: 100,000 feeds in seconds, not minutes."""
    try:
        with db.session() as s:
            urls = list(feeds)
            known: set[str] = set()
            for i in range(0, len(urls), LOOKUP_CHUNK):
                known.update(s.scalars(select(Feed.url).where(Feed.url.in_(urls[i : i + LOOKUP_CHUNK]))))
            rows = [
                {
                    "url": u,
                    "title": t,
                    "folder": f,
                    "status": FeedStatus.ACTIVE.value,
                    "error_count": 0,
                    "created_at": now,
                }
                for u, (t, f) in feeds.items()
                if u not in known
            ]
            if rows:
                s.execute(insert(Feed), rows)
        return len(rows)
    except StorageConflict:
        return None


def remove_feed(db: Database, url: str) -> bool:
    """Remove the feed and its entries (its articles and stories stay); False when there is no such feed."""
    with db.session() as s:
        feed = s.scalar(select(Feed).where(Feed.url == url))
        if feed is None:
            return False
        s.delete(feed)
    return True


def all_feeds(db: Database) -> list[FeedRecord]:
    """Every feed, by folder, then in the order they were added."""
    with db.session() as s:
        return [FeedRecord.of(f) for f in s.scalars(select(Feed).order_by(Feed.folder, Feed.id))]


def feed_summaries(db: Database) -> list[FeedSummary]:
    """Every feed with its number of stored entries, by folder, then in the order they were added."""
    with db.session() as s:
        counts = {k: v for k, v in s.execute(select(Entry.feed_id, func.count()).group_by(Entry.feed_id))}
        return [
            FeedSummary(FeedRecord.of(f), counts.get(f.id, 0))
            for f in s.scalars(select(Feed).order_by(Feed.folder, Feed.id))
        ]


def feeds_by_url(db: Database, urls: Sequence[str] | Iterable[str]) -> list[FeedRecord]:
    """The stored feeds among ``urls``, in the order given."""
    urls = list(urls)
    with db.session() as s:
        rows = {f.url: FeedRecord.of(f) for f in s.scalars(select(Feed).where(Feed.url.in_(urls)))}
    return [rows[u] for u in urls if u in rows]


def claim_due_feeds(
    db: Database,
    worker: str,
    now: datetime,
    lease_seconds: float,
    *,
    all_feeds: bool = False,
    limit: int | None = None,
    exclude: Sequence[int] = (),
) -> list[FeedRecord]:
    """The feeds to poll now, leased to ``worker`` so that no other worker polls them at the same time.

    On PostgreSQL the rows are claimed with FOR UPDATE SKIP LOCKED: several workers never block on or take the
    same feed. A lease ends when the feed's update is stored, or expires (a worker that died) after
    ``lease_seconds``, when another worker takes the feed over.
    """
    with db.session() as s:
        q = select(Feed).where(Feed.status != FeedStatus.GONE.value).order_by(Feed.id)
        if db.dialect != "sqlite":
            # SQLite has one writer by design (see instance_lock): no one to share with, so a crashed process's
            # leases must not hold up its restart
            q = q.where((Feed.lease_until.is_(None)) | (Feed.lease_until < now) | (Feed.lease_owner == worker))
            q = q.with_for_update(skip_locked=True)
        if not all_feeds:
            q = q.where((Feed.next_poll_at.is_(None)) | (Feed.next_poll_at <= now))
        if exclude:
            q = q.where(Feed.id.not_in(list(exclude)))
        if limit:
            q = q.limit(limit)
        feeds = list(s.scalars(q))
        if db.dialect != "sqlite":
            until = now + timedelta(seconds=lease_seconds)
            for f in feeds:
                f.lease_owner = worker
                f.lease_until = until
        return [FeedRecord.of(f) for f in feeds]


UNSET = object()  # a setting edit_feed leaves as it is


def apply_feed_settings(db: Database, settings: Sequence[tuple[str, dict]]) -> None:
    """Set column values per feed URL (``[(url, {"title": ..., "poll_interval_seconds": ...})]``), in one transaction."""
    with db.session() as s:
        for url, values in settings:
            s.execute(update(Feed).where(Feed.url == url).values(**values))


def edit_feed(db: Database, url: str, values: dict, interval, now: datetime) -> bool:
    """Set a feed's own settings (`values`: title, folder, fetch_articles) and, unless UNSET, its own interval in
    seconds (None: the adaptive schedule). A new interval takes effect at once: the next poll moves to that long
    after the last one (or now, for a feed never polled). False when there is no such feed."""
    with db.session() as s:
        feed = s.scalar(select(Feed).where(Feed.url == url))
        if feed is None:
            return False
        if interval is not UNSET:
            feed.poll_interval_seconds = interval
            if interval is not None:
                due = (feed.last_polled_at or now) + timedelta(seconds=interval)
                if feed.next_poll_at is None or feed.next_poll_at > due or feed.interval_source == "user":
                    feed.next_poll_at = max(due, now) if feed.last_polled_at else now
                feed.interval_seconds, feed.interval_source = interval, "user"
        for key, value in values.items():
            setattr(feed, key, value)
    return True


def mark_due(db: Database, urls: Sequence[str], now: datetime) -> None:
    """Make these feeds due now: a running service takes them at its next look for due feeds."""
    with db.session() as s:
        s.execute(
            update(Feed).where(Feed.url.in_(list(urls)), Feed.status != FeedStatus.GONE.value).values(next_poll_at=now)
        )


def feed_by_id(db: Database, feed_id: int) -> FeedRecord | None:
    with db.session() as s:
        feed = s.get(Feed, feed_id)
        return FeedRecord.of(feed) if feed is not None else None
