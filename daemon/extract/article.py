"""Article text: trafilatura on the page, the feed's own content when the page gives nothing."""

from __future__ import annotations

import html
import logging
import re

import lxml.html
import trafilatura

logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

MIN_CHARS = 200  # shorter than this, a page "extraction" is usually a cookie wall or a teaser


def extract_page(page: bytes | str, url: str | None = None) -> str | None:
    """Main text of an article page, paragraphs separated by blank lines; None when nothing article-like is found."""
    try:
        text = trafilatura.extract(
            page,
            url=url,
            include_comments=False,
            include_tables=False,
            favor_precision=True,
            # no: trafilatura's deduplication keeps a process-wide memory of seen paragraphs, so the same page
            # would lose text the second time a long-running process saw it
            deduplicate=False,
        )
    except Exception:  # trafilatura raises a variety of parser errors on hostile markup
        return None
    if not text:
        return None
    text = _paragraphs(text)
    return text if len(text) >= MIN_CHARS else None


MAX_TITLE_CHARS = 1_000  # as an entry's title (daemon.parse.feed)


def title_of_page(page: bytes | str) -> str | None:
    """The page's own title: its ``og:title``, else its first ``<h1>``, else its ``<title>``; plain text on one line,
    at most MAX_TITLE_CHARS characters. None when it has none."""
    from daemon.parse.feed import clean_name

    try:
        doc = lxml.html.document_fromstring(page)
    except (ValueError, lxml.etree.ParserError):
        return None
    found = [str(v) for v in doc.xpath("//meta[@property='og:title']/@content")[:1]]
    found += [h.text_content() for h in doc.xpath("//h1")[:1]]
    found += [t.text_content() for t in doc.xpath("//title")[:1]]
    for candidate in found:
        title = clean_name(candidate, MAX_TITLE_CHARS)
        if title:
            return title
    return None


def text_from_feed(content: str | None, summary: str | None) -> str | None:
    """Plain text from the feed's HTML body (or summary), kept paragraph by paragraph."""
    for candidate in (content, summary):
        if not candidate or not candidate.strip():
            continue
        text = html_to_text(candidate)
        if text:
            return text
    return None


_BLOCK = re.compile(r"(?i)</?(p|div|br|li|h[1-6]|blockquote|section|article|tr)\b[^>]*>")


def html_to_text(fragment: str) -> str:
    if "<" not in fragment:
        return _paragraphs(html.unescape(fragment))
    marked = _BLOCK.sub("\n\n", fragment)
    try:
        doc = lxml.html.fromstring(f"<div>{marked}</div>")
        for bad in doc.xpath("//script|//style|//noscript"):
            bad.drop_tree()
        text = doc.text_content()
    except (ValueError, lxml.etree.ParserError):
        text = re.sub(r"<[^>]+>", " ", marked)
    return _paragraphs(text)


def _paragraphs(text: str) -> str:
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n|\n", text)]
    return "\n\n".join(p for p in paras if p)
