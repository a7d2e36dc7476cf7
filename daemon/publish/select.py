"""From stored stories to digest documents: the query, the primary source, the rendering.

Shared by `wiredesk digest` and the HTTP server, so that both publish the same documents for the same query.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit

from daemon.errors import InputError
from daemon.fetch.urls import publisher_of, redact
from daemon.publish.render import (
    FORMATS,
    DigestMeta,
    DigestSource,
    DigestStory,
    choose_primary,
    filter_stories,
    outlet_key,
    render,
)
from daemon.publish.why import explain as in_words
from storage import Database
from storage.records import Member, StoryView
from storage.stories import load_stories, story_ids_by_update

# Stories are read from the database in batches of this many (or twice the limit), newest first, until enough
# pass the filters: a digest of 100 entries never loads the whole history.
BATCH = 200


@dataclass(frozen=True)
class DigestQuery:
    min_outlets: int = 1
    window_days: float | None = None  # None or 0: no time window
    folders: tuple[str, ...] = ()  # OPML folders; a story needs a source in one of them
    feeds: tuple[str, ...] = ()  # feed titles (outlet names) or feed URLs; a story needs a source from one of them
    limit: int | None = 100
    offset: int = 0  # stories skipped before the first one given (a page further down the digest)
    search: str | None = None  # words every story needs an article holding (title or text), all of them


def query_from_config(config, **given) -> DigestQuery:
    """The configured digest ([digest] section), with the values in ``given`` that are not None taken instead.

    ``limit`` never exceeds ``digest.max_entries``: the configured cap holds whatever a subscriber asks for.
    """
    d = config["digest"]
    cap = d["max_entries"] if d["max_entries"] and d["max_entries"] > 0 else None
    limit = given.get("limit")
    if limit is None:
        limit = cap
    elif cap is not None:
        limit = min(limit, cap)
    pick = lambda name, default: default if given.get(name) is None else given[name]  # noqa: E731
    return DigestQuery(
        min_outlets=pick("min_outlets", d["min_outlets"]),
        window_days=pick("window_days", d["window_days"]),
        folders=tuple(pick("folders", ()) or d["folders"]),
        feeds=tuple(pick("feeds", ()) or d["feeds"]),
        limit=limit,
        offset=given.get("offset") or 0,
        search=given.get("search") or None,
    )


def attribution(member: Member) -> tuple[str | None, str]:
    """(the article's publisher, how wiredesk knows it). An article is its link's publisher's only when its text was
    fetched from there ("page": the site of the page after redirects); otherwise the link is only what its feed
    wrote, and its publisher is the feed's own site, where wiredesk fetched the feed from ("feed"). A feed that
    links another outlet's domain cannot make its entries that outlet's."""
    if member.extracted_from == "page":
        return publisher_of(member.page_url or member.url), "page"
    return publisher_of(member.feed_url), "feed"


def outlet_name(member: Member, publisher: str | None, outlets: dict[str, str] | None) -> str:
    """The name an article's outlet is shown by: the [outlets] name of its publisher, else its feed's title."""
    return (outlets or {}).get(publisher or "") or member.source or publisher or "unknown outlet"


def story_outlets(
    story: StoryView, preferred: tuple[str, ...] = (), outlets: dict[str, str] | None = None
) -> list[str]:
    """The story's outlets as the digest counts and names them (the primary source's first); none for a story
    without members."""
    from daemon.publish.render import outlet_names

    return outlet_names(to_digest_story(story, preferred, outlets=outlets)) if story.members else []


def to_digest_story(
    story: StoryView,
    preferred: tuple[str, ...],
    *,
    base_url: str | None = None,
    explain: bool = False,
    outlets: dict[str, str] | None = None,
) -> DigestStory:
    """The digest's view of a stored story; ``base_url`` gives it a link to its page, ``explain`` each member's
    evidence in words (the story page and the API show it, the feeds do not)."""
    members, feeds, alias = _one_per_link(story.members)
    attributed = [attribution(m) for m in members]
    sources = [
        DigestSource(
            article_id=m.key,
            title=m.title,
            url=m.url,
            outlet=outlet_name(m, publisher, outlets),
            published=m.published,
            copy_of=alias.get(m.copy_of_key, m.copy_of_key) if m.copy_of_key else None,
            summary=m.summary,
            folder=m.folder,
            why=in_words(m.evidence, m.copy_of_key) if explain else None,
            publisher=publisher,
            publisher_from=known_by,
            link_site=_other_site(m.url, publisher) if known_by == "feed" else None,
            named_by_config=bool(publisher and (outlets or {}).get(publisher)),
            feeds=tuple(redact(name) or name for name in names),
            other_folders=tuple(f.folder for f in m.other_feeds if f.folder),
        )
        for m, (publisher, known_by), names in zip(members, attributed, feeds)
    ]
    primary = choose_primary(sources, preferred)
    far = datetime.max.replace(tzinfo=timezone.utc)
    rest = sorted((s for s in sources if s is not primary), key=lambda s: (s.published or far, s.article_id))
    # the member whose news time is the story's: what the entry tells first when the story grew
    times = {id(s): m.news_time for s, m in zip(sources, members)}
    newest = max(sources, key=lambda s: times[id(s)]) if len(sources) > 1 else None
    return DigestStory(
        story_id=story.id,
        uuid=story.uuid,
        title=headline(sources, primary, times),
        primary=primary,
        sources=(primary, *rest),
        created=story.published,
        updated=story.updated,
        copies=sum(1 for s in sources if s.copy_of is not None),
        page_url=story_page_url(base_url, story.id) if base_url else None,
        newest=newest,
    )


def _other_site(url: str | None, publisher: str | None) -> str | None:
    """The site the link names when it is not the publisher's (a feed linking another outlet's pages)."""
    site = publisher_of(url)
    return site if site and site != publisher else None


def _link_key(url: str | None) -> str | None:
    # the same page whatever the feed wrote: scheme and host in any case, no fragment, no trailing slash
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}?{parts.query}"


def _one_per_link(members) -> tuple[list, list[list[str]], dict[str, str]]:
    """The members with one article per link, each with the names of every feed it came through.

    Since migration 0007 a page listed by a second feed is one stored article (``Member.other_feeds``); a page
    stored twice before it is folded here: the later article is folded into the earlier member, which keeps the
    names of both feeds. Also the keys of the folded articles mapped to the key of the member they were folded
    into, for the copies that point at them."""
    kept: list = []
    feeds: list[list[str]] = []
    alias: dict[str, str] = {}
    at: dict[str, int] = {}
    for m in members:
        key = _link_key(m.url)
        if key is not None and key in at:
            i = at[key]
            alias[m.key] = kept[i].key
            feeds[i] += [name for name in m.feeds if name not in feeds[i]]
            continue
        if key is not None:
            at[key] = len(kept)
        kept.append(m)
        feeds.append(list(m.feeds))
    return kept, feeds, alias


def headline(sources: list[DigestSource], primary: DigestSource, times: dict[int, datetime]) -> str:
    """The story's headline: the newest article's title from the primary source's outlet.

    The primary source is the outlet the reader prefers, else the wire that others copy: when that outlet files
    again ("three dead" becomes "five dead"), the headline follows it; an article from any other outlet never
    replaces it, so the headline changes only on the word of the source the entry is presented by."""
    same = [s for s in sources if outlet_key(s) == outlet_key(primary)]
    return max(same, key=lambda s: times[id(s)]).title if same else primary.title


def story_page_url(base_url: str, story_id: str) -> str:
    """Where the running service shows one story: ``/story/<id>`` beside the digest."""
    return base_url.rstrip("/") + "/story/" + story_id


def window_start(window_days: float | None, now: datetime | None = None) -> datetime | None:
    """The oldest news time a story may have to be in the digest; None when there is no window."""
    if not window_days:
        return None
    now = now or datetime.now(timezone.utc)
    try:
        return now - timedelta(days=window_days)
    except OverflowError:  # a window reaching back before year 1 keeps everything
        return None


def _from_feed(story: StoryView, names: set[str], urls: set[str]) -> bool:
    # A feed is named by its title (what the digest shows as the outlet) or by its URL (what the user subscribed to).
    # A page listed by several feeds is from each of them.
    return any(
        any(" ".join(name.split()).casefold() in names for name in m.feeds)
        or any(url and url.rstrip("/") in urls for url in (m.feed_url, *(f.url for f in m.other_feeds)))
        for m in story.members
    )


def digest_stories(db: Database, config, query: DigestQuery, now: datetime | None = None) -> list[DigestStory]:
    """The stories of the digest for ``query``, newest update first."""
    preferred = tuple(config["digest"]["preferred_outlets"])
    base = config["digest"]["base_url"]
    since = window_start(query.window_days, now)
    names = {" ".join(f.split()).casefold() for f in query.feeds}
    urls = {f.rstrip("/") for f in query.feeds}
    ids = story_ids_by_update(db, since, search=query.search)
    wanted = None if query.limit is None else query.offset + query.limit
    batch = max(BATCH, 2 * (wanted or 0))
    kept: list[DigestStory] = []
    for start in range(0, len(ids), batch):
        views = load_stories(db, ids[start : start + batch])
        if query.feeds:
            views = [v for v in views if _from_feed(v, names, urls)]
        kept += filter_stories(
            (to_digest_story(v, preferred, base_url=base, outlets=getattr(config, "outlets", None)) for v in views),
            min_outlets=query.min_outlets,
            since=since,
            folders=query.folders,
        )
        if wanted is not None and len(kept) >= wanted:
            break
    # filter_stories sorts each batch; sorting the whole again keeps the newest across batches (the sort is stable)
    # the instants are made distinct over the whole list, so that a page further down keeps the same dates
    return distinct_updates(filter_stories(kept, limit=wanted))[query.offset :]


def distinct_updates(stories: list[DigestStory]) -> list[DigestStory]:
    """The stories (newest first) with no two sharing an update instant: a tie moves the later-listed story one
    second earlier, so readers keep the order and validators see one entry per atom:updated (whole seconds, as RSS
    dates have no fraction)."""
    out: list[DigestStory] = []
    for story in stories:
        updated = story.updated.replace(microsecond=0)
        if out and updated >= out[-1].updated:
            updated = out[-1].updated - timedelta(seconds=1)
        if updated < story.created.replace(microsecond=0):
            story = replace(story, created=updated)
        out.append(replace(story, updated=updated))
    return out


def _page_query(config, query: DigestQuery) -> str:
    """The query string of ``query``: the parameters that differ from the configured digest, offset last."""
    default = query_from_config(config)
    params: list[tuple[str, object]] = []
    if query.search:
        params.append(("q", query.search))
    if query.min_outlets != default.min_outlets:
        params.append(("min_outlets", query.min_outlets))
    if query.window_days != default.window_days and query.window_days:
        params.append(("days", f"{query.window_days:g}"))
    if query.folders != default.folders:
        params += [("folder", f) for f in query.folders]
    if query.feeds != default.feeds:
        params += [("feed", f) for f in query.feeds]
    if query.limit != default.limit:
        params.append(("limit", query.limit))
    if query.offset:
        params.append(("offset", query.offset))
    return "?" + urlencode(params) if params else ""


def render_digest(
    db: Database, config, fmt: str, query: DigestQuery, *, empty_updated: datetime | None = None
) -> tuple[bytes, str]:
    """The digest for ``query`` in ``fmt`` and its Content-Type.

    The document's update time is its newest story's; an empty digest takes ``empty_updated`` when given (the
    server passes a fixed time so that an empty digest keeps one ETag), else the time of rendering.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown digest format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    base = config["digest"]["base_url"].rstrip("/") + "/"
    newer = older = None
    if fmt == "html" and query.limit is not None:
        # the page links to the pages before and after it: one story more than shown tells whether there is one
        stories = digest_stories(db, config, replace(query, limit=query.limit + 1))
        if len(stories) > query.limit:
            stories = stories[: query.limit]
            older = base + _page_query(config, replace(query, offset=query.offset + query.limit))
        if query.offset:
            newer = base + _page_query(config, replace(query, offset=max(0, query.offset - query.limit)))
    else:
        stories = digest_stories(db, config, query)
    ext = {"atom": "digest.atom", "rss": "digest.rss", "json": "digest.json", "html": ""}[fmt]
    meta = DigestMeta(
        title=config["digest"]["title"],
        self_url=base + ext,
        home_url=base,
        updated=max((s.updated for s in stories), default=empty_updated),
        timezone=config["digest"].get("timezone", "UTC"),
        newer_url=newer,
        older_url=older,
    )
    return render(stories, fmt, meta), FORMATS[fmt]
