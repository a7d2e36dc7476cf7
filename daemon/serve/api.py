"""The JSON API and the story pages of `wiredesk run`, beside the digests.

/api/stories takes the digest's query (filters, ``limit``, ``offset``) and answers the same stories in the same order
as the digest; /api/stories/<id> and /story/<id> take a story id, a unique prefix of it, its urn:uuid or the key of
one of its articles (as `wiredesk story` does), and the id of a story merged into another redirects (301) to the
survivor's; /api/feeds lists the feeds. Each function returns a ``Reply``;
the HTTP handler only sends it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from daemon.errors import AmbiguousStory
from daemon.fetch.urls import redact
from daemon.publish.render import DigestMeta, DigestStory, _plain, _rfc3339, _safe_url, _story_title, outlet_key
from daemon.publish.select import DigestQuery, digest_stories, to_digest_story
from daemon.publish.story_page import render_story_page
from daemon.publish.tables import change_words, why_changed
from storage import Database
from storage.feeds import feed_summaries
from storage.records import StoryView
from storage.stories import find_story

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"
PLAIN = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    location: str | None = None  # where a redirect leads


MERGED = 301  # a story merged into another: its links lead to the survivor for good


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def _time(value: datetime | None) -> str | None:
    return _rfc3339(value) if value is not None else None


def story_record(story: DigestStory, *, explain: bool = False) -> dict:
    """A story as the API gives it: news times, outlets (primary first) and every article."""
    outlets: list[str] = []
    seen: set[str] = set()
    for s in story.sources:
        name = _plain(s.outlet)
        if name and outlet_key(s) not in seen:
            seen.add(outlet_key(s))
            outlets.append(name)
    articles = []
    for s in story.sources:
        article = {
            "id": s.article_id,
            "title": _plain(s.title),
            "url": _safe_url(s.url),
            "outlet": _plain(s.outlet),
            "publisher": s.publisher,
            "publisher_from": s.publisher_from,
            "published": _time(s.published),
            "copy_of": s.copy_of,
            "feeds": [_plain(f) for f in s.feeds],
        }
        if explain:
            article["why"] = s.why
        articles.append(article)
    return {
        "id": story.story_id,
        "uuid": story.uuid,
        "title": _story_title(story),
        "published": _time(story.created),
        "updated": _time(story.updated),
        "url": _safe_url(story.primary.url),
        "page": _safe_url(story.page_url),
        "outlets": outlets,
        "copies": story.copies,
        "articles": articles,
    }


def stories(db: Database, config, query: DigestQuery) -> Reply:
    found = digest_stories(db, config, query)
    return Reply(200, _json({"stories": [story_record(s) for s in found]}), JSON)


def _one(db: Database, config, ident: str, path: str) -> tuple[StoryView, DigestStory] | Reply:
    try:
        view = find_story(db, ident)
    except AmbiguousStory as exc:
        return Reply(400, f"{exc}\n".encode(), PLAIN)
    if view is None:
        return Reply(404, f"story {ident[:80]!r} not found\n".encode(), PLAIN)
    if view.alias is not None:
        # a story absorbed by a merge: its id is an alias, and its links lead to the story that holds its articles.
        # The Location is relative to the asked URL (its last segment replaced), so it holds behind a proxy's prefix.
        where = quote(view.id, safe="")
        body = f"story {view.alias} was merged into {view.id}: {path}{where}\n".encode()
        return Reply(MERGED, body, PLAIN, where)
    return view, to_digest_story(
        view,
        tuple(config["digest"]["preferred_outlets"]),
        base_url=config["digest"]["base_url"],
        explain=True,
        outlets=getattr(config, "outlets", None),
    )


def story(db: Database, config, ident: str) -> Reply:
    found = _one(db, config, ident, "/api/stories/")
    if isinstance(found, Reply):
        return found
    view, digest = found
    record = story_record(digest, explain=True)
    # what settling did to it: the merges into it and the moves in and out, oldest first, in words
    record["changes"] = [
        {
            "kind": c.kind,
            "at": _time(c.at),
            "from_story": c.from_story,
            "to_story": c.to_story,
            "articles": list(c.article_keys),
            "what": change_words(c, view.id),
            "why": why_changed(c),
        }
        for c in view.changes
    ]
    return Reply(200, _json(record), JSON)


def story_page(db: Database, config, ident: str) -> Reply:
    found = _one(db, config, ident, "/story/")
    if isinstance(found, Reply):
        return found
    base = config["digest"]["base_url"].rstrip("/") + "/"
    meta = DigestMeta(title=config["digest"]["title"], self_url=base + "digest.atom", home_url=base)
    return Reply(200, render_story_page(found[1], meta), HTML)


def feeds(db: Database) -> Reply:
    out = []
    for summary in feed_summaries(db):
        f = summary.feed
        out.append(
            {
                "id": f.id,
                "url": redact(f.url),
                "title": f.title,
                "site_url": redact(f.site_url),
                "folder": f.folder,
                "status": f.status,
                "entries": summary.entries,
                "error_count": f.error_count,
                "last_error": redact(f.last_error),
                "last_success_at": _time(f.last_success_at),
                "last_polled_at": _time(f.last_polled_at),
                "next_poll_at": _time(f.next_poll_at),
            }
        )
    return Reply(200, _json({"feeds": out}), JSON)
