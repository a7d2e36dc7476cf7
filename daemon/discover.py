"""Feed discovery: the feeds a web page links, for `wiredesk feeds add https://site.example/`.

A site's home page names its feeds in its head (``<link rel="alternate" type="application/rss+xml" href=...>``), as
Miniflux and FreshRSS look for them; wiredesk reads RSS and Atom, so those come first and a JSON Feed is named but
not added.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/rdf+xml": "RSS",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON Feed",
}


@dataclass(frozen=True)
class FoundFeed:
    url: str
    title: str | None
    kind: str  # "RSS", "Atom" or "JSON Feed"

    @property
    def readable(self) -> bool:
        """wiredesk reads RSS and Atom."""
        return self.kind != "JSON Feed"


def looks_like_html(content: bytes, headers) -> bool:
    kind = (headers or {}).get("content-type", "").split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        return True
    head = content[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]


def feed_links(content: bytes, page_url: str) -> list[FoundFeed]:
    """The feeds the page links in ``<link rel="alternate">`` elements, in page order, RSS and Atom first, each URL
    once, made absolute against the page's URL (or its ``<base href>``)."""
    import lxml.html

    try:
        doc = lxml.html.document_fromstring(content)
    except (ValueError, lxml.etree.ParserError):
        return []
    base = page_url
    for href in doc.xpath("//base/@href"):
        base = urljoin(page_url, href.strip())
        break
    found: list[FoundFeed] = []
    seen: set[str] = set()
    for link in doc.xpath("//link[@href]"):
        rel = (link.get("rel") or "").lower().split()
        kind = FEED_TYPES.get((link.get("type") or "").split(";")[0].strip().lower())
        if "alternate" not in rel or kind is None:
            continue
        url = urljoin(base, link.get("href").strip())
        if not url.lower().startswith(("http://", "https://")) or url in seen:
            continue
        seen.add(url)
        title = " ".join((link.get("title") or "").split()) or None
        found.append(FoundFeed(url, title, kind))
    return sorted(found, key=lambda f: not f.readable)  # stable: page order within each group
