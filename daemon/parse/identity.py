"""What makes two sightings of an entry the same entry, and canonical article URLs."""

from __future__ import annotations

import hashlib
from urllib.parse import urldefrag

import courlan

from daemon.parse.feed import ParsedEntry


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
