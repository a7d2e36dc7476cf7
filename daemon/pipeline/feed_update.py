"""The feed-update decider: what one poll of a feed changes, as data.

A pure function of the stored feed, the fetch result, the parsed feed, the entries already known and the time; it
reads no clock, opens no connection and writes nothing. The pipeline hands it what storage read in the update's
transaction and gives what it returns to storage to write, so the rules of a feed update (which items are new
entries, which changed, what a failed fetch does to the feed's status and schedule, when a feed follows a permanent
redirect) are tested without HTTP or a database (tests/test_feed_decider.py).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone

from daemon.parse.feed import ParsedFeed
from daemon.parse.identity import EntryKeys
from daemon.pipeline.records import FeedOutcome, Fetched
from daemon.schedule import ScheduleSettings, next_poll
from daemon.states import EntryState, ErrorKind, FeedStatus, IntervalSource, WebSubState
from storage.records import (
    MAX_URL,
    EntryContent,
    EntryEdit,
    FeedAbout,
    FeedChange,
    FeedUpdateIntent,
    FeedValidators,
    KnownEntry,
    NewEntry,
    StoredFeed,
)

log = logging.getLogger("wiredesk")

__all__ = ["EntryChanges", "decide_feed_update", "merge_entries"]


@dataclass
class _Working:
    """An entry while the feed's items are merged: a known one (``id`` set) or one new in this poll (``new``).

    Mutable on purpose: a feed may list one entry twice, or move an entry to a new GUID, and later items must see
    the change."""

    id: int | None
    identity: str
    url: str | None
    content_hash: str
    published: datetime | None
    new: NewEntry | None = None  # the entry to store, for entries not stored yet
    updated: datetime | None = None  # the stored entry's <updated>


@dataclass
class EntryChanges:
    """What the merge of a feed's items decided: entries to insert, edits of stored ones, headlines to correct."""

    inserts: list[_Working] = field(default_factory=list)
    updates: dict[int, EntryEdit] = field(default_factory=dict)
    retitled: dict[int, str] = field(default_factory=dict)
    new: int = 0
    changed: int = 0

    def new_identity(self, row: _Working, identity: str) -> None:
        if row.new is not None:
            row.new = dataclasses.replace(row.new, identity=identity)
        else:
            assert row.id is not None
            self.updates[row.id] = dataclasses.replace(self.updates.get(row.id, EntryEdit()), identity=identity)

    def new_content(self, row: _Working, content: EntryContent) -> None:
        if row.new is not None:
            row.new = dataclasses.replace(row.new, **{f.name: getattr(content, f.name) for f in fields(content)})
        else:
            assert row.id is not None
            self.updates[row.id] = dataclasses.replace(self.updates.get(row.id, EntryEdit()), content=content)


def _older(given: datetime | None, stored: datetime | None) -> bool:
    """An item dated before the version stored (a replayed push, a stale mirror) changes nothing."""
    if given is None or stored is None:
        return False
    if given.tzinfo is None:
        given = given.replace(tzinfo=timezone.utc)
    if stored.tzinfo is None:
        stored = stored.replace(tzinfo=timezone.utc)
    return given < stored


def merge_entries(
    feed_id: int, parsed: ParsedFeed, keys: Sequence[EntryKeys], known: Sequence[KnownEntry], now: datetime
) -> EntryChanges:
    """Which of the feed's items are new entries and which changed stored ones."""
    rows = [_Working(k.id, k.identity, k.url, k.content_hash, k.published, updated=k.updated) for k in known]
    existing = {row.identity: row for row in rows}
    by_url = {row.url: row for row in rows if row.url}
    changes = EntryChanges()
    for item, key in zip(parsed.entries, keys, strict=True):
        identity, url, content_hash = key.identity, key.url, key.content_hash
        row = existing.get(identity)
        if row is None and url and url in by_url:
            # the same link under a new GUID: feeds that regenerate GUIDs must not duplicate entries
            row = by_url[url]
            row.identity = identity
            changes.new_identity(row, identity)
            existing[identity] = row
        if row is None:
            row = _Working(
                None,
                identity,
                url,
                content_hash,
                item.published,
                new=NewEntry(
                    feed_id=feed_id,
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
                    state=EntryState.PENDING,
                    first_seen_at=now,
                    changed_at=now,
                ),
            )
            changes.inserts.append(row)
            existing[identity] = row
            if url:
                by_url[url] = row
            changes.new += 1
        elif row.content_hash != content_hash and not _older(item.updated, row.updated):
            row.url, row.content_hash, row.updated = url, content_hash, item.updated or row.updated
            row.published = row.published or item.published
            changes.new_content(
                row,
                EntryContent(
                    guid=item.guid,
                    url=url,
                    title=item.title,
                    author=item.author,
                    summary=item.summary,
                    content=item.content,
                    updated=item.updated,
                    published=row.published,
                    content_hash=content_hash,
                    changed_at=now,
                ),
            )
            changes.changed += 1
            if item.title and row.id is not None:
                changes.retitled[row.id] = item.title
    return changes


def decide_feed_update(
    feed: StoredFeed,
    fetched: Fetched,
    known: Sequence[KnownEntry],
    recent: Sequence[datetime],
    now: datetime,
    schedule: ScheduleSettings,
    taken_urls: Collection[str] = (),
    rng: random.Random | None = None,
) -> tuple[FeedUpdateIntent, FeedOutcome]:
    """The feed's update (its new values, its entries to insert and change) and the poll's outcome for it.

    ``known`` are the feed's stored entries (read when the feed was parsed), ``recent`` the publication dates of its
    newest stored entries (read when it was not modified: its rhythm is theirs), ``taken_urls`` the URLs among those
    it moved to that another feed already has; ``rng`` jitters the back-off after an error (a fresh one when None).
    """
    result, parsed, parse_error = fetched.result, fetched.parsed, fetched.parse_error
    url, error_count = feed.url, feed.error_count
    kind = result.error_kind or (parse_error.kind if parse_error else None)
    error_kind = ErrorKind(kind) if kind else None
    error = result.error or (str(parse_error) if parse_error else None)
    entry_times: list[datetime] = []
    changes = EntryChanges()
    # the feed's new state, filled in below; the schedule comes last, from all of it
    status, last_error, last_error_kind = FeedStatus.ACTIVE, None, None
    validators: FeedValidators | None = None
    moved_to: str | None = None
    about: FeedAbout | None = None
    if error_kind:
        error_count += 1
        status = FeedStatus.GONE if error_kind == ErrorKind.GONE else FeedStatus.ERROR
        last_error, last_error_kind = error, error_kind
    else:
        error_count = 0
        if result.etag or result.last_modified or not result.not_modified:
            validators = FeedValidators(result.etag, result.last_modified)
        moved_too_far = None
        if result.permanent_url and result.permanent_url != url and len(result.permanent_url) > MAX_URL:
            # a feed URL is its key: a cut one would name another resource, so the feed stays where it is
            moved_too_far = f"moved permanently to a URL longer than {MAX_URL} characters; polling {url} as before"
            log.info("feed %s %s", url, moved_too_far)
        elif result.permanent_url and result.permanent_url != url and result.permanent_url not in taken_urls:
            # (two feeds of one batch moving to the same URL fail the batch's write; retried one by one, the
            # second then sees the first and stays where it is)
            log.info("feed %s moved permanently to %s", url, result.permanent_url)
            url = moved_to = result.permanent_url
        if parsed is not None:
            changes = merge_entries(feed.id, parsed, fetched.keys, known, now)
            entry_times = [e.published for e in parsed.entries if e.published]
            warning = "; ".join(w for w in (parsed.warning, moved_too_far) if w) or None
            about = FeedAbout(
                title=feed.title or parsed.title,
                site_url=parsed.site_url or feed.site_url,
                hub_url=parsed.hub_url,
                websub_topic=parsed.self_url if parsed.hub_url else None,
            )
            last_error = warning and f"parsed with a warning: {warning}"
            last_error_kind = ErrorKind.WARNING if warning else None
        else:
            last_error, last_error_kind = moved_too_far, ErrorKind.WARNING if moved_too_far else None
            # 304: the feed has not changed, so its publishing rhythm is the one its stored entries show
            entry_times = list(recent)
    pushed = feed.websub_state == WebSubState.ACTIVE
    when, interval, source = next_poll(
        now,
        schedule,
        ok=not error_kind,
        error_count=error_count,
        entry_times=entry_times,
        headers=dict(result.headers or {}),
        ttl=parsed.ttl_minutes if parsed else None,
        retry_after=result.retry_after,
        rng=rng,
        # pushed by a hub: polling stays on at the slow end of the schedule, a safety net
        interval=max(feed.poll_interval_seconds or 0.0, schedule.max_interval)
        if pushed
        else feed.poll_interval_seconds,
    )
    if pushed and source in (IntervalSource.USER, IntervalSource.ADAPTIVE):
        source = IntervalSource.WEBSUB
    outcome = FeedOutcome(
        url,
        ok=not error_kind,
        new_entries=changes.new,
        changed_entries=changes.changed,
        not_modified=result.not_modified,
        error=f"{url}: {error}" if error and not error.startswith(url) and result.url not in error else error,
        error_kind=error_kind,
        warning=parsed.warning if parsed else None,
    )
    change = FeedChange(
        polled_at=now,
        status=status,
        error_count=error_count,
        last_error=last_error,
        last_error_kind=last_error_kind,
        next_poll_at=when,
        interval_seconds=interval,
        interval_source=IntervalSource(source),
        failed_at=now if error_kind else None,
        succeeded_at=None if error_kind else now,
        validators=validators,
        moved_to=moved_to,
        about=about,
    )
    intent = FeedUpdateIntent(
        feed_id=feed.id,
        feed=change,
        new_entries=tuple(row.new for row in changes.inserts if row.new is not None),
        changed_entries=changes.updates,
        retitled=changes.retitled,
    )
    return intent, outcome
