"""Render the digest: one entry per story, as Atom 1.0, RSS 2.0, JSON Feed 1.1 or an HTML page.

Everything here is a pure function over the frozen dataclasses below; mapping database rows to them and serving the
bytes over HTTP happen elsewhere. Text from feeds is untrusted: titles and outlet names are reduced to plain text,
summaries are sanitised with nh3 against a small allow-list, links are kept only when they are http(s), and every
entry's HTML is sanitised once more as a whole, so no script, style, event handler or ``javascript:`` URL can reach
a subscriber. XML is built with lxml, which escapes text and attributes; characters that XML 1.0 forbids are removed
first because lxml refuses them.

Each format is served next to the others: ``DigestMeta.self_url`` with the format's extension (``digest.atom``,
``digest.rss``, ``digest.json``, ``digest.html``), see ``digest_url``. The Atom feed's id and self link are
``self_url`` itself.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from email.utils import format_datetime
from urllib.parse import quote, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import lxml.html
import nh3
from lxml import etree
from lxml.html import builder as E

from daemon.errors import InputError, StorageError
from daemon.parse.feed import INVISIBLE_CHARS

__all__ = [
    "FORMATS",
    "DigestMeta",
    "DigestSource",
    "DigestStory",
    "choose_primary",
    "digest_url",
    "filter_stories",
    "render",
]


@dataclass(frozen=True)
class DigestSource:
    article_id: str
    title: str
    url: str | None
    outlet: str  # outlet / feed title
    published: datetime | None  # tz-aware; a naive value is taken as UTC
    copy_of: str | None  # article id it copies, or None
    summary: str | None = None  # untrusted text/HTML (first paragraph)
    folder: str | None = None  # OPML folder of its feed
    why: str | None = None  # why it joined its story, in words (the stored evidence); for the story page and the API
    publisher: str | None = None  # the registered domain of its publisher's site: what makes two feeds one outlet
    # how the publisher is known: "page" (the text was fetched from the publisher's site) or "feed" (the feed's own
    # site: the text is the feed's, and its link names only what the feed claims)
    publisher_from: str | None = None
    link_site: str | None = None  # text from the feed: the site its link names, when not the feed's own
    named_by_config: bool = False  # its outlet's name is the one [outlets] gives its publisher (not a feed's title)
    feeds: tuple[str, ...] = ()  # the names of the feeds it came through (several when more than one listed it)
    other_folders: tuple[str, ...] = ()  # the folders of the other feeds that listed it


@dataclass(frozen=True)
class DigestStory:
    uuid: str  # "urn:uuid:..." minted once per story, never reused
    title: str  # the primary source's title
    primary: DigestSource
    sources: tuple[DigestSource, ...]  # all members, primary first, then by time
    created: datetime  # news time: the earliest member's publication time
    updated: datetime  # news time: the newest member's publication time (never after wiredesk saw it)
    copies: int  # members that are copies of another member
    story_id: str | None = None  # the stored story's id, for its page
    page_url: str | None = None  # the story's own page (/story/<id>) on the running service
    newest: DigestSource | None = None  # the member that last moved ``updated``, told first ("New: ...")


@dataclass(frozen=True)
class DigestMeta:
    title: str = "wiredesk digest"
    self_url: str = "http://localhost:8080/digest.atom"  # base for links/ids; see digest_url
    home_url: str = "http://localhost:8080/"
    updated: datetime | None = None  # else the newest story's update time, else now
    timezone: str = "UTC"  # the page's times (the feeds give theirs in UTC, each reader shows its own zone)
    now: datetime | None = None  # what the page's relative times count from; None: the time of rendering
    newer_url: str | None = None  # the page before this one (pagination of the HTML page)
    older_url: str | None = None  # the page after this one


FORMATS = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
_EXTENSIONS = {"atom": ".atom", "rss": ".rss", "json": ".json", "html": ".html"}

GENERATOR = "wiredesk"
ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# XML 1.0 forbids most C0 controls, surrogates and U+FFFE/U+FFFF; C1 controls are legal but are never text a person
# wrote, and feed validators flag them.
_ILLEGAL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SEPARATORS = re.compile("[\x0b\x0c\x85]")
PLAIN_MAX_CHARS = 4096  # of a title or a name, before it is made plain
_SPACES = re.compile(r"\s+")

# What a summary may keep: enough for a paragraph with emphasis, lists and links, nothing that runs or restyles.
_SUMMARY_TAGS = {"a", "b", "blockquote", "br", "code", "em", "i", "li", "ol", "p", "pre", "q", "strong", "ul"}
# The entry body adds the few elements the renderer itself uses around the summary.
_CONTENT_TAGS = _SUMMARY_TAGS | {"div", "small"}
_ATTRIBUTES = {"a": {"href", "title"}}
_URL_SCHEMES = {"http", "https"}
# Removed together with their content: the text inside them is code or markup, not prose.
_DROP_WITH_CONTENT = {"script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math", "title"}

_CSS = """\
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;\
color:#1d1d1f;background:#fff}
header{border-bottom:2px solid #ddd;margin-bottom:1rem}
header p,article>p{color:#666;font-size:.9rem;margin:.25rem 0}
article{border-bottom:1px solid #eee;padding:.75rem 0 1rem}
h1{font-size:1.6rem;margin:0 0 .25rem}
h2{font-size:1.2rem;margin:.25rem 0}
a{color:#1a4fa0}
blockquote{margin:.5rem 0;padding-left:.75rem;border-left:3px solid #ddd;color:#333}
ul{padding-left:1.2rem;margin:.25rem 0}
li{margin:.2rem 0}
small{color:#666}
@media (prefers-color-scheme:dark){body{background:#111;color:#ddd}a{color:#8ab4f8}blockquote{color:#bbb}}
"""
# The page embeds feed text: even if sanitising ever missed something, the browser must not run or fetch it.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; base-uri 'none'; form-action 'none'"


# --- selection ---------------------------------------------------------------------------------------------------


def choose_primary(members: Sequence[DigestSource], preferred_outlets: Sequence[str] = ()) -> DigestSource:
    """The source a story is presented by.

    1. the first outlet of ``preferred_outlets`` (case-insensitive) that has a member, its earliest article;
    2. else the original wire copy: an article that others copy and that is itself no copy (when several copy
       groups exist, the most copied one, then the earliest);
    3. else the earliest article (unknown times count as latest; ties keep the given order).
    """
    if not members:
        raise StorageError("a story needs at least one member to choose its primary source")
    order = {id(m): i for i, m in enumerate(members)}

    def earliest(candidates: Iterable[DigestSource]) -> DigestSource:
        return min(candidates, key=lambda m: (_time_key(m.published), order[id(m)]))

    for name in preferred_outlets:
        wanted = _fold(name)
        matching = [m for m in members if wanted and wanted in (_fold(m.outlet), m.publisher)]
        # a name that [outlets] gives a publisher belongs to that publisher: a feed that takes it as its title
        # ("Yonhap") is not preferred over the real one
        vouched = [m for m in matching if m.named_by_config or m.publisher == wanted]
        matching = vouched or matching
        if matching:
            return earliest(matching)

    copied: dict[str, int] = {}
    for m in members:
        if m.copy_of is not None and m.copy_of != m.article_id:
            copied[m.copy_of] = copied.get(m.copy_of, 0) + 1
    originals = [m for m in members if m.copy_of is None and m.article_id in copied]
    if originals:
        most = max(copied[m.article_id] for m in originals)
        return earliest(m for m in originals if copied[m.article_id] == most)
    return earliest(members)


def unverified_link(source: DigestSource) -> str:
    """Said after the outlet's name when the link names another site than the publisher's: the text is the feed's
    own and was not fetched from that site, so the link is only the feed's claim."""
    if not source.link_site:
        return ""
    return f" (text from its feed; the link to {source.link_site} is the feed's claim)"


def outlet_key(source: DigestSource) -> str:
    """What counts as one outlet: the publisher (registered domain of the link), else the outlet's name."""
    return source.publisher or _fold(source.outlet)


def outlet_count(story: DigestStory) -> int:
    return len({outlet_key(s) for s in story.sources})


def outlet_names(story: DigestStory) -> list[str]:
    """The story's outlets as the digest counts them, one name each (its first source's), the primary's first."""
    names: dict[str, str] = {}
    for s in story.sources:
        names.setdefault(outlet_key(s), s.outlet)
    return list(names.values())


def filter_stories(
    stories: Iterable[DigestStory],
    *,
    min_outlets: int = 1,
    since: datetime | None = None,
    folders: Sequence[str] = (),
    feeds: Sequence[str] = (),
    limit: int | None = None,
) -> list[DigestStory]:
    """The stories a subscriber asked for, newest update first.

    Each criterion narrows the result: at least ``min_outlets`` distinct outlets; updated at or after ``since``;
    at least one source in one of ``folders``; at least one source from one of ``feeds`` (outlet / feed titles).
    Names compare case-insensitively. ``limit`` keeps the newest stories.
    """
    if limit is not None and limit < 0:
        raise InputError(f"digest limit must be 0 or more, got {limit}")
    folder_set = {_fold(f) for f in folders}
    feed_set = {_fold(f) for f in feeds}
    since_utc = _utc(since) if since is not None else None

    kept = []
    for story in stories:
        if outlet_count(story) < min_outlets:
            continue
        if since_utc is not None and _utc(story.updated) < since_utc:
            continue
        if folder_set and not any(
            f is not None and _fold(f) in folder_set for s in story.sources for f in (s.folder, *s.other_folders)
        ):
            continue
        if feed_set and not any(_fold(s.outlet) in feed_set for s in story.sources):
            continue
        kept.append(story)
    # Stable sort: stories updated at the same instant keep the caller's order.
    kept.sort(key=lambda s: _utc(s.updated), reverse=True)
    return kept if limit is None else kept[:limit]


# --- rendering ---------------------------------------------------------------------------------------------------


def digest_url(meta: DigestMeta, fmt: str) -> str:
    """Where the digest in ``fmt`` is served: ``self_url`` with the format's extension.

    ``http://h/digest.atom`` (or ``.rss``, ``.json``, ``.html``, ``.xml``) gives ``http://h/digest.rss`` and so on;
    a directory such as ``http://h/`` gives ``http://h/digest.rss``.
    """
    _check_format(fmt)
    parts = urlsplit(meta.self_url)
    path = parts.path
    stem, dot, ext = path.rpartition(".")
    if dot and "/" not in ext and ext in {"atom", "rss", "json", "html", "xml"}:
        path = stem
    elif path == "" or path.endswith("/"):
        path = path.rstrip("/") + "/digest"
    return urlunsplit(parts._replace(path=path + _EXTENSIONS[fmt]))


def render(stories: Sequence[DigestStory], fmt: str, meta: DigestMeta) -> bytes:
    """The digest of ``stories`` (in the given order) in ``fmt``, one of ``FORMATS``, as UTF-8 bytes."""
    _check_format(fmt)
    return {"atom": _render_atom, "rss": _render_rss, "json": _render_json, "html": _render_html}[fmt](stories, meta)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"unknown digest format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def _feed_updated(stories: Sequence[DigestStory], meta: DigestMeta) -> datetime:
    if meta.updated is not None:
        return _utc(meta.updated)
    if stories:
        return max(_utc(s.updated) for s in stories)
    # Nothing has happened yet: the digest is as new as this rendering (a fixed old date reads as a broken clock).
    return datetime.now(timezone.utc)


def _render_atom(stories: Sequence[DigestStory], meta: DigestMeta) -> bytes:
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})

    def add(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
        el = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    add(feed, "title", _plain(meta.title) or GENERATOR)
    add(feed, "id", meta.self_url)
    add(feed, "updated", _rfc3339(_feed_updated(stories, meta)))
    add(feed, "link", rel="self", type="application/atom+xml", href=meta.self_url)
    add(feed, "link", rel="alternate", type="text/html", href=meta.home_url)
    add(add(feed, "author"), "name", GENERATOR)
    add(feed, "generator", GENERATOR)
    for story in stories:
        entry = add(feed, "entry")
        add(entry, "id", story.uuid)
        add(entry, "title", _story_title(story))
        add(entry, "updated", _rfc3339(story.updated))
        add(entry, "published", _rfc3339(story.created))
        outlet = _plain(story.primary.outlet)
        if outlet:
            add(add(entry, "author"), "name", outlet)
        link = _safe_url(story.primary.url)
        if link:
            add(entry, "link", rel="alternate", type="text/html", href=link)
        page = _safe_url(story.page_url)
        if page:
            add(entry, "link", rel="related", type="text/html", href=page, title="All sources of this story")
        for folder in _folders(story):
            add(entry, "category", term=folder)
        add(entry, "content", _entry_html(story), type="html")
    return etree.tostring(feed, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _render_rss(stories: Sequence[DigestStory], meta: DigestMeta) -> bytes:
    rss = etree.Element("rss", version="2.0", nsmap={"atom": ATOM_NS, "dc": DC_NS})
    channel = etree.SubElement(rss, "channel")

    def add(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
        el = etree.SubElement(parent, tag, attrs)
        if text is not None:
            el.text = text
        return el

    title = _plain(meta.title) or GENERATOR
    add(channel, "title", title)
    add(channel, "link", meta.home_url)
    add(channel, "description", f"{title}: one entry per story, with every outlet that carried it")
    add(channel, f"{{{ATOM_NS}}}link", href=digest_url(meta, "rss"), rel="self", type="application/rss+xml")
    add(channel, "lastBuildDate", _rfc822(_feed_updated(stories, meta)))
    add(channel, "generator", GENERATOR)
    for story in stories:
        item = add(channel, "item")
        add(item, "title", _story_title(story))
        link = _safe_url(story.primary.url)
        if link:
            add(item, "link", link)
        add(item, "description", _entry_html(story))
        outlet = _plain(story.primary.outlet)
        if outlet:
            add(item, f"{{{DC_NS}}}creator", outlet)
        for folder in _folders(story):
            add(item, "category", folder)
        add(item, "guid", story.uuid, isPermaLink="false")
        add(item, "pubDate", _rfc822(story.updated))
    return etree.tostring(rss, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _render_json(stories: Sequence[DigestStory], meta: DigestMeta) -> bytes:
    items = []
    for story in stories:
        item: dict[str, object] = {"id": story.uuid}
        link = _safe_url(story.primary.url)
        if link:
            item["url"] = link
        item["title"] = _story_title(story)
        item["content_html"] = _entry_html(story)
        item["date_published"] = _rfc3339(story.created)
        item["date_modified"] = _rfc3339(story.updated)
        outlet = _plain(story.primary.outlet)
        if outlet:
            item["authors"] = [{"name": outlet}]
        folders = _folders(story)
        if folders:
            item["tags"] = folders
        # JSON Feed extensions start with an underscore; this one gives programs the sources without parsing HTML.
        item["_wiredesk"] = {
            "page": _safe_url(story.page_url),
            "copies": story.copies,
            "sources": [
                {
                    "id": s.article_id,
                    "title": _plain(s.title),
                    "url": _safe_url(s.url),
                    "outlet": _plain(s.outlet),
                    "published": _rfc3339(s.published) if s.published else None,
                    "copy_of": s.copy_of,
                }
                for s in story.sources
            ],
        }
        items.append(item)
    feed = {
        "version": JSONFEED_VERSION,
        "title": _plain(meta.title) or GENERATOR,
        "home_page_url": meta.home_url,
        "feed_url": digest_url(meta, "json"),
        "description": "One entry per story, with every outlet that carried it",
        "authors": [{"name": GENERATOR}],
        "items": items,
    }
    return json.dumps(feed, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def _render_html(stories: Sequence[DigestStory], meta: DigestMeta) -> bytes:
    title = _plain(meta.title) or GENERATOR
    updated = _feed_updated(stories, meta)
    zone = _zone(meta.timezone)
    now = _utc(meta.now) if meta.now is not None else datetime.now(timezone.utc)

    def when(dt: datetime) -> lxml.html.HtmlElement:
        # relative, the absolute time in the configured zone on hover, the exact instant for machines
        return E.E.time(_relative(dt, now), datetime=_rfc3339(dt), title=_human_time(dt, zone))

    head = E.HEAD(
        E.META(charset="utf-8"),
        E.META(name="viewport", content="width=device-width, initial-scale=1"),
        E.META({"http-equiv": "Content-Security-Policy", "content": _CSP}),
        E.META(name="referrer", content="no-referrer"),
        E.TITLE(title),
        E.LINK(rel="alternate", type="application/atom+xml", title=f"{title} (Atom)", href=digest_url(meta, "atom")),
        E.LINK(rel="alternate", type="application/rss+xml", title=f"{title} (RSS)", href=digest_url(meta, "rss")),
        E.LINK(
            rel="alternate", type="application/feed+json", title=f"{title} (JSON Feed)", href=digest_url(meta, "json")
        ),
        E.STYLE(_CSS),
    )
    header = E.E.header(
        E.H1(title),
        E.P(
            f"{_count(len(stories), 'story', 'stories')}, updated ",
            when(updated),
            " · subscribe: ",
            E.A("Atom", href=digest_url(meta, "atom")),
            " · ",
            E.A("RSS", href=digest_url(meta, "rss")),
            " · ",
            E.A("JSON Feed", href=digest_url(meta, "json")),
        ),
    )
    main = E.E.main()
    if not stories:
        main.append(E.P("No stories yet."))
    for story in stories:
        article = E.E.article(id="story-" + _anchor(story.uuid))
        headline = E.H2()
        link = _safe_url(story.primary.url)
        if link:
            headline.append(E.A(_story_title(story), href=link, rel="noopener noreferrer"))
        else:
            headline.text = _story_title(story)
        article.append(headline)
        byline = E.P(_plain(story.primary.outlet) or "unknown outlet")
        if story.primary.published is not None:
            _append_text(byline, " · ")
            byline.append(when(story.primary.published))
        _append_text(byline, " · story updated ")
        byline.append(when(story.updated))
        page_link = _safe_url(story.page_url)
        if page_link:
            _append_text(byline, " · ")
            byline.append(E.A("story page", href=page_link))
        article.append(byline)
        # The same sanitised body the feeds carry, so the page can show nothing the feeds would not.
        body = lxml.html.fragment_fromstring(_entry_html(story, zone), create_parent="div")
        article.extend(body)
        main.append(article)
    pages = E.E.nav()
    for label, href in (("← newer stories", meta.newer_url), ("older stories →", meta.older_url)):
        link = _safe_url(href)
        if link:
            if len(pages):
                pages[-1].tail = " · "
            pages.append(E.A(label, href=link, rel="prev" if label.startswith("←") else "next"))
    if len(pages):
        main.append(pages)
    page = E.HTML(head, E.BODY(header, main), lang="en")
    return lxml.html.tostring(page, doctype="<!DOCTYPE html>", encoding="utf-8", method="html", pretty_print=True)


def _append_text(el: lxml.html.HtmlElement, text: str) -> None:
    if len(el):
        el[-1].tail = (el[-1].tail or "") + text
    else:
        el.text = (el.text or "") + text


# --- entry body --------------------------------------------------------------------------------------------------


# Copy outlets named after "carried by"; the rest are counted, and every one is listed on the story page.
CARRIERS_NAMED = 2


def _entry_html(story: DigestStory, zone: tzinfo | None = None) -> str:
    """The HTML every format carries for a story: what is new, the primary's lede, the counts, and every original
    source with the outlets that carried a copy of it folded under it."""
    body = E.DIV()
    newest = story.newest
    if newest is not None and newest.article_id != story.primary.article_id:
        line = E.P(E.STRONG("New:"), f" {_plain(newest.outlet) or 'unknown outlet'}")
        if newest.published is not None:
            _append_text(line, f", {_human_time(newest.published, zone)}")
        _append_text(line, " — ")
        title = _plain(newest.title) or "(untitled)"
        newest_link = _safe_url(newest.url)
        line.append(E.A(title, href=newest_link) if newest_link else E.EM(title))
        body.append(line)
    summary = _clean_summary(story.primary.summary, story.primary.url)
    if summary:
        quote_el = lxml.html.fragment_fromstring(summary, create_parent="blockquote")
        body.append(quote_el)
    outlets = outlet_count(story)
    body.append(
        E.P(
            f"{_count(len(story.sources), 'article', 'articles')} from {_count(outlets, 'outlet', 'outlets')}, "
            f"{_count(story.copies, 'copy', 'copies') if story.copies else 'no copies'}."
        )
    )
    by_id = {s.article_id: s for s in story.sources}
    carriers: dict[str, list[DigestSource]] = {}
    for source in story.sources:
        if source.copy_of is not None and source.copy_of in by_id and source.copy_of != source.article_id:
            carriers.setdefault(source.copy_of, []).append(source)
    folded = {id(s) for copies in carriers.values() for s in copies}
    items = E.UL()
    for source in story.sources:
        if id(source) in folded:
            continue
        li = E.LI()
        title = _plain(source.title) or "(untitled)"
        link = _safe_url(source.url)
        li.append(E.A(title, href=link) if link else E.STRONG(title))
        li[-1].tail = f" — {_plain(source.outlet) or 'unknown outlet'}{unverified_link(source)}, "
        li.append(E.SMALL(_human_time(source.published, zone) if source.published else "time unknown"))
        if source.article_id == story.primary.article_id:
            _append_text(li, " (primary source)")
        if source.copy_of is not None:
            original = by_id.get(source.copy_of)
            if original is None:
                _append_text(li, f" — copy of article {_plain(source.copy_of)}")
            else:
                _append_text(li, " — copy of ")
                name = _plain(original.outlet) or "unknown outlet"
                original_link = _safe_url(original.url)
                li.append(E.A(name, href=original_link) if original_link else E.EM(name))
        copies = carriers.get(source.article_id, [])
        if copies:
            _append_text(li, " — carried by ")
            for i, copy in enumerate(copies[:CARRIERS_NAMED]):
                if i:
                    _append_text(li, ", ")
                name = _plain(copy.outlet) or "unknown outlet"
                copy_link = _safe_url(copy.url)
                li.append(E.A(name, href=copy_link) if copy_link else E.EM(name))
                _append_text(li, unverified_link(copy))
            if len(copies) > CARRIERS_NAMED:
                _append_text(li, f" (+{len(copies) - CARRIERS_NAMED})")
        items.append(li)
    body.append(items)
    page_link = _safe_url(story.page_url)
    if page_link:
        body.append(E.P(E.A("Every source and why it belongs to this story", href=page_link)))
    markup = lxml.html.tostring(body, encoding="unicode", method="html")
    # The final pass over the whole body is the guarantee: whatever the pieces were, only the allow-list remains.
    return _sanitise(markup, _CONTENT_TAGS, None)


def _clean_summary(summary: str | None, base_url: str | None) -> str:
    if not summary:
        return ""
    # Plain text needs no separate path: as HTML it only has "<" and "&" to escape, which the sanitiser does.
    return _sanitise(summary, _SUMMARY_TAGS, _safe_url(base_url)).strip()


def _sanitise(markup: str, tags: set[str], base_url: str | None) -> str:
    def absolute(url: str) -> str | None:
        # Relative links would resolve against the digest, not the article: make them absolute or drop them.
        return _safe_url(urljoin(base_url, url)) if base_url else None

    cleaned = nh3.clean(
        _strip_illegal(markup),
        tags=tags,
        clean_content_tags=_DROP_WITH_CONTENT - tags,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        url_relative=absolute,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return _strip_illegal(cleaned)


# --- small helpers -----------------------------------------------------------------------------------------------


def _strip_illegal(text: str) -> str:
    # Vertical tab, form feed and next-line separate words; the other forbidden characters carry nothing.
    return _ILLEGAL_CHARS.sub("", _SEPARATORS.sub(" ", text))


def _plain(text: str | None) -> str:
    """Untrusted text as plain text: markup removed (however many times it was entity-escaped), invisible and
    bidirectional control characters removed, whitespace collapsed. The caller escapes it once for its format."""
    if not text:
        return ""
    # titles and names are capped where feeds are parsed; this bounds the rounds below for anything stored before
    value = _strip_illegal(text[:PLAIN_MAX_CHARS])
    # Unescaping can reveal markup that was escaped once, twice or ten times: repeat until nothing changes (a fixed
    # point). A round that changes the text shortens it, so there are fewer rounds than characters; the check on the
    # length makes that a guarantee.
    while True:
        stripped = _strip_illegal(html.unescape(nh3.clean(value, tags=set(), clean_content_tags=_DROP_WITH_CONTENT)))
        if stripped == value or len(stripped) >= len(value):
            break
        value = stripped
    return _SPACES.sub(" ", INVISIBLE_CHARS.sub("", value)).strip()


def _story_title(story: DigestStory) -> str:
    return _plain(story.title) or _plain(story.primary.title) or "(untitled story)"


def _folders(story: DigestStory) -> list[str]:
    seen: dict[str, str] = {}
    for s in story.sources:
        name = _plain(s.folder)
        if name and _fold(name) not in seen:
            seen[_fold(name)] = name
    return list(seen.values())


def _safe_url(url: str | None) -> str | None:
    """An absolute http(s) URL, percent-encoded where needed, or None."""
    if not url:
        return None
    url = _ILLEGAL_CHARS.sub("", url).strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _URL_SCHEMES or not host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username or parts.password:
        return None  # credentials in a published link are a leak or a phishing trick
    safe = "/:@!$&'()*+,;=%~-._"
    return urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            quote(parts.path, safe=safe),
            quote(parts.query, safe=safe + "?"),
            quote(parts.fragment, safe=safe + "?"),
        )
    )


def _fold(name: str | None) -> str:
    return _SPACES.sub(" ", name or "").strip().casefold()


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _time_key(dt: datetime | None) -> tuple[int, datetime]:
    return (1, _EPOCH) if dt is None else (0, _utc(dt))


def _rfc3339(dt: datetime) -> str:
    # fractional seconds kept: stories made within one second must not share an atom:updated (validators warn)
    return _utc(dt).isoformat().replace("+00:00", "Z")


def _rfc822(dt: datetime) -> str:
    return format_datetime(_utc(dt).replace(microsecond=0), usegmt=True)


def _human_time(dt: datetime, zone: tzinfo | None = None) -> str:
    if zone is None or zone is timezone.utc:
        return _utc(dt).strftime("%Y-%m-%d %H:%M UTC")
    return _utc(dt).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _zone(name: str | None) -> tzinfo:
    if not name or name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc  # the config checks the name; a zone removed from the system since falls back to UTC


def _relative(dt: datetime, now: datetime) -> str:
    """How long ago, in the largest unit that is at least one: "just now", "5 min ago", "3 h ago", "2 days ago"."""
    seconds = (now - _utc(dt)).total_seconds()
    if seconds < 60:
        return "just now"
    for size, one, many in (
        (365 * 86400, "year", "years"),
        (30 * 86400, "month", "months"),
        (86400, "day", "days"),
        (3600, "h", "h"),
        (60, "min", "min"),
    ):
        if seconds >= size:
            return f"{_count(int(seconds // size), one, many)} ago"
    return "just now"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _anchor(uuid: str) -> str:
    tail = uuid.rsplit(":", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_-]", "-", tail) or "story"
