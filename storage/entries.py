"""Queries on entries on their way to a story: pending ones, the texts found for them, the ready ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import defer

from daemon.states import EntryState, TextSource
from storage.db import Database
from storage.models import Entry, Feed
from storage.records import EntryRecord, FeedRecord


@dataclass(frozen=True)
class FoundText:
    """The text found for a pending entry, and where it came from."""

    entry_id: int
    text: str
    source: TextSource
    page_url: str | None = None  # text from a page: where it was fetched from, after redirects
    page_title: str | None = None  # that page's own title, when it is on another site than the feed


def _entry(row: Entry) -> EntryRecord:
    return EntryRecord(row.id, row.feed_id, row.identity, row.url, row.title, row.summary, row.content, row.published)


def pending_entries(
    db: Database, feed_ids: Sequence[int] | None = None, stale_before: datetime | None = None
) -> list[tuple[EntryRecord, FeedRecord]]:
    """Entries waiting for their article, with their feeds: of ``feed_ids`` plus any first seen before
    ``stale_before`` (a worker died before finishing them); all of them when no feeds are given."""
    with db.session() as s:
        q = select(Entry, Feed).join(Feed, Feed.id == Entry.feed_id).where(Entry.state == EntryState.PENDING.value)
        if feed_ids is not None:
            q = q.where(Entry.feed_id.in_(list(feed_ids)) | (Entry.first_seen_at < stale_before))
        return [(_entry(e), FeedRecord.of(f)) for e, f in s.execute(q)]


def mark_ready(db: Database, found: Sequence[FoundText]) -> None:
    """Keep the texts found on their entries, which become ready; only entries still pending: another worker may
    have taken a stale one over and decided it."""
    if not found:
        return
    with db.session() as s:
        table = Entry.__table__  # the Core table: one executemany for the batch, without the ORM
        statement = (
            update(table)  # type: ignore[arg-type]  # a Table, which SQLAlchemy's stubs type as a FromClause
            .where(table.c.id == bindparam("eid"), table.c.state == EntryState.PENDING.value)
            .values(
                state=EntryState.READY.value,
                text=bindparam("text"),
                text_source=bindparam("text_source"),
                page_url=bindparam("page_url"),
                page_title=bindparam("page_title"),
            )
        )
        s.execute(
            statement,
            [
                {
                    "eid": f.entry_id,
                    "text": f.text,
                    "text_source": f.source.value,
                    "page_url": f.page_url,
                    "page_title": f.page_title,
                }
                for f in found
            ],
        )


def mark_no_text(db: Database, entry_id: int, error: str, states: Sequence[str]) -> None:
    """The entry has no text (or cannot be stored): it keeps the error and is not looked at again."""
    with db.session() as s:
        row = s.get(Entry, entry_id)
        if row is not None and row.state in states:
            row.state = EntryState.NO_TEXT.value
            row.error = error
            row.text = row.text_source = row.page_url = row.page_title = None


def ready_entries(
    db: Database,
    *,
    shared: bool,
    worker: str,
    now: datetime,
    lease_seconds: float,
    decide_wait: float | None,
    alive: Callable[[str | None], bool],
) -> list[tuple[EntryRecord, FeedRecord]]:
    """The entries whose texts are found, in the order their stories are decided (publication time, then feed URL
    and entry identity), without their texts.

    On a ``shared`` database, none while another worker holds feeds or still finds texts (``alive`` says whether a
    lease's owner may still be working), unless a text has waited longer than ``decide_wait`` seconds."""
    with db.session() as s:
        if shared and _others_busy(s, worker, now, lease_seconds, alive):
            if decide_wait is None:
                return []
            overdue = s.scalar(
                select(Entry.id)
                .where(
                    Entry.state == EntryState.READY.value, Entry.first_seen_at < now - timedelta(seconds=decide_wait)
                )
                .limit(1)
            )
            if overdue is None:
                return []
        # the texts stay in the database until each entry's turn: a large first poll holds one at a time
        rows = s.execute(
            select(Entry, Feed)
            .join(Feed, Feed.id == Entry.feed_id)
            .where(Entry.state == EntryState.READY.value)
            .options(defer(Entry.text))
            .order_by(func.coalesce(Entry.published, Entry.first_seen_at), Feed.url, Entry.identity)
        )
        return [(_entry(e), FeedRecord.of(f)) for e, f in rows]


def _others_busy(s, worker: str, now: datetime, lease_seconds: float, alive: Callable[[str | None], bool]) -> bool:
    """Another worker holds feeds (polling them) or has entries it is still finding texts for."""
    owners = s.scalars(
        select(Feed.lease_owner).where(Feed.lease_until > now, Feed.lease_owner != worker).distinct().limit(100)
    ).all()
    if any(alive(owner) for owner in owners):
        return True
    fresh = now - timedelta(seconds=lease_seconds)
    return (
        s.scalar(select(Entry.id).where(Entry.state == EntryState.PENDING.value, Entry.first_seen_at >= fresh).limit(1))
        is not None
    )
