"""Feed parsing: bytes in, typed entries out (feedparser does the reading).

A feed that feedparser can read only partly (``bozo`` set but entries found) is accepted with a warning, because
real feeds are often slightly broken; a feed with no usable entries and a bozo exception is refused with the reason.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import feedparser

from daemon.errors import FeedError


@dataclass(frozen=True)
class ParsedEntry:
    guid: str | None
    url: str | None
    title: str | None
    author: str | None
    summary: str | None
    content: str | None  # the fullest HTML body the feed carries (content:encoded, atom:content)
    published: datetime | None
    updated: datetime | None

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        for part in (self.title, self.url, self.summary, self.content):
            h.update((part or "").encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        return h.hexdigest()


@dataclass(frozen=True)
class ParsedFeed:
    url: str
    title: str | None
    site_url: str | None
    ttl_minutes: int | None
    entries: tuple[ParsedEntry, ...]
    warning: str | None  # set when feedparser had to recover from a problem


def _time(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def _entry(raw) -> ParsedEntry:
    content = None
    contents = raw.get("content") or []
    if contents:
        # prefer HTML over plain text, and the longest body when a feed carries several
        best = max(contents, key=lambda c: ("html" in (c.get("type") or ""), len(c.get("value") or "")))
        content = best.get("value") or None
    summary = raw.get("summary") or None
    if content and summary and content.strip() == summary.strip():
        summary = None
    return ParsedEntry(
        guid=(raw.get("id") or None),
        url=(raw.get("link") or None),
        title=(raw.get("title") or None),
        author=(raw.get("author") or None),
        summary=summary,
        content=content,
        # dict.get: feedparser's own get() maps a missing updated_parsed to published_parsed with a warning
        published=_time(dict.get(raw, "published_parsed")) or _time(dict.get(raw, "updated_parsed")),
        updated=_time(dict.get(raw, "updated_parsed")),
    )


_DOCTYPE = re.compile(rb"<!DOCTYPE(?:[^\[>]|\[.*?\])*>", re.S | re.I)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.I)


def refuse_entities(data: bytes, url: str) -> None:
    """Refuse documents that declare entities: the billion-laughs and external-entity (XXE) attacks need them, and
    real feeds do not. Only the prolog is looked at, so this costs nothing on an ordinary feed."""
    head = data[:65536]
    # UTF-16/32 feeds: look at the text with the NULs dropped
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00<\x00" in head[:8] or b"<\x00" in head[:4]:
        head = head.replace(b"\x00", b"")
    if b"<!" not in head:
        return
    doctype = _DOCTYPE.search(head)
    if doctype and _ENTITY_DECL.search(doctype.group(0)):
        raise FeedError(url, "refused: the feed declares XML entities in its DOCTYPE (a billion-laughs or external-entity attack)", kind="refused_xml")
    if doctype is None and b"<!DOCTYPE" in head.upper() and _ENTITY_DECL.search(head):
        raise FeedError(url, "refused: the feed's DOCTYPE is unterminated and declares XML entities", kind="refused_xml")


def parse_feed(data: bytes, url: str, headers: dict | None = None, max_entries: int | None = None) -> ParsedFeed:
    refuse_entities(data, url)
    # feedparser never fetches here: it is given bytes, and the response headers only for the encoding.
    parsed = feedparser.parse(data, response_headers=dict(headers or {}), sanitize_html=False, resolve_relative_uris=True)
    problem = parsed.get("bozo_exception")
    version = parsed.get("version") or ""
    raw_entries = parsed.get("entries") or []
    if not version and not raw_entries:
        reason = f"not a feed ({_describe(problem)})" if problem else "not an RSS or Atom feed"
        raise FeedError(url, reason, kind="parse")
    entries = tuple(_entry(e) for e in raw_entries[: max_entries or None])
    ttl = None
    try:
        ttl = int(parsed.feed.get("ttl")) if parsed.feed.get("ttl") else None
    except (TypeError, ValueError):
        ttl = None
    warning = _describe(problem) if parsed.get("bozo") and problem else None
    if max_entries and len(raw_entries) > max_entries:
        extra = f"kept the first {max_entries} of {len(raw_entries)} entries (fetch.max_entries_per_feed)"
        warning = f"{warning}; {extra}" if warning else extra
    return ParsedFeed(
        url=url,
        title=parsed.feed.get("title") or None,
        site_url=parsed.feed.get("link") or None,
        ttl_minutes=ttl,
        entries=entries,
        warning=warning,
    )


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown problem"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
