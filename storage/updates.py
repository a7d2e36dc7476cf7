"""Feed updates: what a batch of feed updates reads, and writing what the decider decided, in one transaction.

The caller's ``decide`` runs inside the transaction, between the reads and the writes, so that a feed's update is
computed from the state it replaces and is whole or absent. Each kind of change is one statement for the whole
batch: a thousand feeds do not cost a thousand round trips.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, func, insert, select, type_coerce, update

from daemon.states import WebSubState
from storage.db import Database
from storage.models import Article, Entry, Feed
from storage.records import (
    EntryEdit,
    FeedChange,
    FeedUpdateContext,
    FeedUpdateIntent,
    KnownEntry,
    NewEntry,
    StoredFeed,
)

R = TypeVar("R")


def update_feeds(
    db: Database,
    feed_ids: Collection[int],
    *,
    parsed: Collection[int],
    not_modified: Collection[int],
    moved_to: Collection[str],
    recent_entries: int,
    decide: Callable[[FeedUpdateContext], tuple[R, Sequence[FeedUpdateIntent]]],
) -> R:
    """Read what the update of ``feed_ids`` depends on (the known entries of the ``parsed`` feeds, the publication
    dates of the ``recent_entries`` newest entries of the ``not_modified`` ones, which of the ``moved_to`` URLs are
    taken), ``decide``, write its intents, commit; returns what ``decide`` returned beside its intents."""
    with db.session() as s:
        feeds = {
            row.id: StoredFeed(
                row.id,
                row.url,
                row.title,
                row.site_url,
                row.error_count,
                row.poll_interval_seconds,
                WebSubState(row.websub_state) if row.websub_state in WebSubState._value2member_map_ else None,
            )
            for row in s.execute(
                select(
                    Feed.id,
                    Feed.url,
                    Feed.title,
                    Feed.site_url,
                    Feed.error_count,
                    Feed.poll_interval_seconds,
                    Feed.websub_state,
                ).where(Feed.id.in_(list(feed_ids)))
            )
        }
        taken: frozenset[str] = frozenset()
        if moved_to:
            taken = frozenset(s.scalars(select(Feed.url).where(Feed.url.in_(list(moved_to)))))
        context = FeedUpdateContext(
            feeds=feeds,
            known=_known_entries(s, [i for i in parsed if i in feeds]),
            recent=_recent_entry_times(s, [i for i in not_modified if i in feeds], recent_entries),
            taken_urls=taken,
        )
        result, intents = decide(context)
        _write(s, intents)
    return result


def _feed_columns(change: FeedChange) -> dict[str, Any]:
    """The feed's columns a poll writes; the parts it leaves as stored are not among them."""
    columns: dict[str, Any] = {
        "last_polled_at": change.polled_at,
        "lease_owner": None,  # the poll is over: its lease ends
        "lease_until": None,
        "status": change.status.value,
        "error_count": change.error_count,
        "last_error": change.last_error,
        "last_error_kind": change.last_error_kind.value if change.last_error_kind else None,
        "next_poll_at": change.next_poll_at,
        "interval_seconds": change.interval_seconds,
        "interval_source": change.interval_source.value,
    }
    if change.failed_at is not None:
        columns["last_error_at"] = change.failed_at
    if change.succeeded_at is not None:
        columns["last_success_at"] = change.succeeded_at
    if change.validators is not None:
        columns.update(etag=change.validators.etag, last_modified=change.validators.last_modified)
    if change.moved_to is not None:
        columns["url"] = change.moved_to
    if change.about is not None:
        columns.update(asdict(change.about))
    return columns


def _entry_row(entry: NewEntry) -> dict[str, Any]:
    return {**asdict(entry), "state": entry.state.value}


def _entry_columns(edit: EntryEdit) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    if edit.identity is not None:
        columns["identity"] = edit.identity
    if edit.content is not None:
        columns.update(asdict(edit.content))
    return columns


def _write(s, intents: Sequence[FeedUpdateIntent]) -> None:
    _update_by_id(s, Feed, [{"id": i.feed_id, **_feed_columns(i.feed)} for i in intents])
    rows = [_entry_row(entry) for i in intents for entry in i.new_entries]
    if rows:
        s.execute(insert(Entry), rows)
    _update_by_id(
        s,
        Entry,
        [{"id": entry_id, **_entry_columns(edit)} for i in intents for entry_id, edit in i.changed_entries.items()],
    )
    for i in intents:
        for entry_id, title in i.retitled.items():
            # the article keeps its story; its headline follows the feed's correction
            s.execute(update(Article).where(Article.entry_id == entry_id).values(title=title))


def _update_by_id(s, model, rows: list[dict[str, Any]]) -> None:
    """UPDATE rows by primary key, one executemany per set of columns changed."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for same_columns in groups.values():
        s.execute(update(model), same_columns)


def _known_entries(s, feed_ids: Sequence[int]) -> dict[int, list[KnownEntry]]:
    known: dict[int, list[KnownEntry]] = {}
    if feed_ids:
        rows = s.execute(
            select(
                Entry.feed_id, Entry.id, Entry.identity, Entry.url, Entry.content_hash, Entry.published, Entry.updated
            )
            .where(Entry.feed_id.in_(feed_ids))
            .order_by(Entry.id)
        )
        for feed_id, *columns in rows:
            known.setdefault(feed_id, []).append(KnownEntry(*columns))
    return known


def _recent_entry_times(s, feed_ids: Sequence[int], limit: int) -> dict[int, list[datetime]]:
    """The newest ``limit`` publication dates of each feed, in no particular order."""
    times: dict[int, list[datetime]] = {}
    if feed_ids:
        rank = func.row_number().over(partition_by=Entry.feed_id, order_by=Entry.published.desc()).label("rank")
        # Plain DateTime results: the stored column's UTC wrapper costs more than the query here, and the schedule
        # reads a datetime without a zone as UTC, which is what the column stores.
        published = type_coerce(Entry.published, DateTime(timezone=True)).label("published")
        ranked = (
            select(Entry.feed_id, published, rank)
            .where(Entry.feed_id.in_(feed_ids), Entry.published.is_not(None))
            .subquery()
        )
        rows = s.execute(select(ranked.c.feed_id, ranked.c.published).where(ranked.c.rank <= limit))
        for feed_id, published in rows:
            times.setdefault(feed_id, []).append(published)
    return times
