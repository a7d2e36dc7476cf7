"""The page of one story (/story/<id>): every member with its outlet, time, link, what it copies and why it joined.

Built like the digest page (daemon/publish/render.py): lxml's builder escapes every text and attribute, feed text is
made plain or sanitised by the same helpers, links are kept only when they are http(s), and the page carries the
same Content-Security-Policy, so nothing a feed sends can run or load in the reader's browser.
"""

from __future__ import annotations

import lxml.html
from lxml.html import builder as E

from daemon.publish.render import (
    _CSP,
    _CSS,
    GENERATOR,
    DigestMeta,
    DigestStory,
    _append_text,
    _clean_summary,
    _count,
    _human_time,
    _plain,
    _rfc3339,
    _safe_url,
    _story_title,
    digest_url,
    outlet_count,
    unverified_link,
)

_PAGE_CSS = _CSS + "ol>li{margin:.6rem 0}.why{white-space:pre-line;color:#555;font-size:.85rem;display:block}\n"


def render_story_page(story: DigestStory, meta: DigestMeta) -> bytes:
    """One story as an HTML page, its sources in the digest's order (primary first, then by time)."""
    digest_title = _plain(meta.title) or GENERATOR
    title = _story_title(story)
    head = E.HEAD(
        E.META(charset="utf-8"),
        E.META(name="viewport", content="width=device-width, initial-scale=1"),
        E.META({"http-equiv": "Content-Security-Policy", "content": _CSP}),
        E.META(name="referrer", content="no-referrer"),
        E.TITLE(f"{title} — {digest_title}"),
        E.LINK(
            rel="alternate", type="application/atom+xml", title=f"{digest_title} (Atom)", href=digest_url(meta, "atom")
        ),
        E.STYLE(_PAGE_CSS),
    )
    header = E.E.header(E.P(E.A(f"← {digest_title}", href=meta.home_url)))
    headline = E.H1()
    link = _safe_url(story.primary.url)
    if link:
        headline.append(E.A(title, href=link, rel="noopener noreferrer"))
    else:
        headline.text = title
    header.append(headline)
    outlets = outlet_count(story)
    facts = E.P(
        f"{_count(len(story.sources), 'article', 'articles')} from {_count(outlets, 'outlet', 'outlets')}, "
        f"{_count(story.copies, 'copy', 'copies') if story.copies else 'no copies'} · first published ",
        E.E.time(_human_time(story.created), datetime=_rfc3339(story.created)),
        " · updated ",
        E.E.time(_human_time(story.updated), datetime=_rfc3339(story.updated)),
    )
    header.append(facts)
    main = E.E.main()
    summary = _clean_summary(story.primary.summary, story.primary.url)
    if summary:
        main.append(lxml.html.fragment_fromstring(summary, create_parent="blockquote"))
    main.append(E.H2("Sources"))
    by_id = {s.article_id: s for s in story.sources}
    items = E.OL()
    for source in story.sources:
        li = E.LI(id="article-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in source.article_id))
        name = _plain(source.title) or "(untitled)"
        href = _safe_url(source.url)
        li.append(E.A(name, href=href, rel="noopener noreferrer") if href else E.STRONG(name))
        li[-1].tail = f" — {_plain(source.outlet) or 'unknown outlet'}{unverified_link(source)}, "
        if source.published is not None:
            li.append(E.E.time(_human_time(source.published), datetime=_rfc3339(source.published)))
        else:
            li.append(E.SMALL("time unknown"))
        if source.article_id == story.primary.article_id:
            _append_text(li, " (primary source)")
        if len(source.feeds) > 1:
            _append_text(li, " — in the feeds " + ", ".join(_plain(f) for f in source.feeds))
        if source.copy_of is not None:
            original = by_id.get(source.copy_of)
            if original is None:
                _append_text(li, f" — copy of article {_plain(source.copy_of)}")
            else:
                _append_text(li, " — copy of ")
                anchor = "#article-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in original.article_id)
                li.append(E.A(_plain(original.outlet) or "unknown outlet", href=anchor))
        why = "\n".join(_plain(line) for line in (source.why or "").splitlines() if _plain(line))
        if why:
            li.append(E.SMALL(why, {"class": "why"}))
        items.append(li)
    main.append(items)
    page = E.HTML(head, E.BODY(header, main), lang="en")
    return lxml.html.tostring(page, doctype="<!DOCTYPE html>", encoding="utf-8", method="html", pretty_print=True)
