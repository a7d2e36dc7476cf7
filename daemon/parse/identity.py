"""What makes two sightings of an entry the same entry, and canonical article URLs; a parsed feed with each entry's
keys (``parse_feed_keyed``, what a poll's parse workers return)."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from urllib.parse import urldefrag

import courlan

from daemon.errors import first_line
from daemon.parse.feed import ParsedEntry, ParsedFeed, parse_feed


def canonical_url(url: str | None) -> str | None:
    """The URL with tracking parameters (utm_*, fbclid, ...) and the fragment removed, host lower-cased."""
    if not url:
        return None
    url = url.strip()
    try:
        # not strict: strict mode also drops ordinary parameters (view.php?ud=...), which identify many articles
        cleaned = courlan.normalize_url(url, strict=False)
    except Exception:  # courlan raises on some malformed URLs; keep the URL as given then
        return url
    if not cleaned:
        return url
    return urldefrag(cleaned)[0]


def entry_identity(entry: ParsedEntry) -> str:
    """GUID, else the canonical link, else a hash of the content: stable across polls of the same feed."""
    if entry.guid and entry.guid.strip():
        return "guid:" + entry.guid.strip()[:2000]
    link = canonical_url(entry.url)
    if link:
        return "url:" + link[:2000]
    h = hashlib.sha256()
    for part in (entry.title, entry.summary, entry.content):
        h.update((part or "").encode("utf-8", "surrogatepass") + b"\x00")
    return "hash:" + h.hexdigest()


@dataclass(frozen=True)
class EntryKeys:
    """What storing an entry compares: its identity, its canonical link and its content hash."""

    identity: str
    url: str | None
    content_hash: str


@dataclass(frozen=True)
class KeyedFeed:
    feed: ParsedFeed
    keys: tuple[EntryKeys, ...]  # one per entry, in the same order


def parse_feed_keyed(data: bytes, url: str, headers: dict | None = None, max_entries: int | None = None) -> KeyedFeed:
    """parse_feed, plus each entry's keys: computed where the parse runs (a worker process during a poll), because
    normalising thousands of links is otherwise the largest cost left in the process that stores them."""
    feed = parse_feed(data, url, headers, max_entries)
    entries, keys, failed = [], [], []
    for entry in feed.entries:
        try:
            keys.append(EntryKeys(entry_identity(entry), canonical_url(entry.url), entry.content_hash))
            entries.append(entry)
        except Exception as exc:  # an entry whose identity cannot be found is left out, not the feed
            failed.append(f"{type(exc).__name__}: {first_line(exc, 200)}")
    if failed:
        note = f"left out {len(failed)} entr{'ies' if len(failed) > 1 else 'y'} without an identity ({failed[0]})"
        feed = dataclasses.replace(
            feed, entries=tuple(entries), warning=f"{feed.warning}; {note}" if feed.warning else note
        )
    return KeyedFeed(feed, tuple(keys))
