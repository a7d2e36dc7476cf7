"""`wiredesk feeds ...`: adding, removing, listing, OPML import and export.

Everything given is checked before anything is written: a bad URL, title or folder anywhere in an OPML file, and
nothing of the file is imported.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import listparser

from daemon.config import MAX_FEED_TITLE_CHARS, MAX_FOLDER_CHARS
from daemon.errors import InputError, first_line
from daemon.feeds import (
    add_feed,
    add_feeds,
    check_feed,
    check_feed_url,
    check_label,
    clean_label,
    remove_feed,
    sync_config_feeds,
)
from daemon.fetch.urls import http_url_problem, redact
from daemon.states import FeedStatus
from storage import Database
from storage import feeds as stored

AUTO = "auto"


def parse_interval(value: str) -> float | None:
    """`--interval`: minutes (1 to 43,200) as seconds, or None for "auto" (the adaptive schedule)."""
    if value.strip().lower() == AUTO:
        return None
    try:
        minutes = float(value)
    except ValueError:
        minutes = float("nan")
    if not 1 <= minutes <= 43200:
        raise InputError(f"--interval {value!r}: give minutes from 1 to 43200, or auto for the adaptive schedule")
    return minutes * 60.0


_UNSET = stored.UNSET


def edit_feed(db: Database, url: str, *, title=_UNSET, folder=_UNSET, interval=_UNSET, fetch_articles=_UNSET) -> dict:
    """Change a feed's own settings; returns the changed values. An empty title or folder clears it; an interval
    (seconds, None: adaptive) takes effect at once (see storage.feeds.edit_feed)."""
    values: dict = {}
    if title is not _UNSET:
        values["title"] = check_label(title, "title", MAX_FEED_TITLE_CHARS)
    if folder is not _UNSET:
        values["folder"] = check_label(folder, "folder", MAX_FOLDER_CHARS)
    if fetch_articles is not _UNSET:
        values["fetch_articles"] = fetch_articles
    if not stored.edit_feed(db, url.strip(), values, interval, datetime.now(timezone.utc)):
        raise InputError(f"{url!r} is not a feed (wiredesk feeds list shows them; feeds add adds one)")
    if interval is not _UNSET:
        values["poll_interval_seconds"] = interval
    return values


def known_feeds(db: Database, urls: list[str]):
    """The feeds of `urls`, in that order; an unknown URL is an error that names it."""
    found = stored.feeds_by_url(db, urls)
    missing = sorted(set(urls) - {f.url for f in found}, key=urls.index)
    if missing:
        raise InputError(f"{missing[0]!r} is not a feed (wiredesk feeds list shows them; feeds add adds one)")
    return found


MAX_OPML_BYTES = 256 << 20


def parse_opml(path: str) -> list[tuple[str, str | None, str | None]]:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_OPML_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read OPML file {path}: {exc.strerror}") from exc
    if len(data) > MAX_OPML_BYTES:
        raise InputError(
            f"{path} is larger than {MAX_OPML_BYTES // (1 << 20)} MiB, more than an OPML file of 100,000 feeds; "
            "is it the right file?"
        )
    # listparser forgives a truncated file; a cut-off export must not be half-imported, so check the XML first
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InputError(
            f"{path} is not a valid OPML file (XML error: {exc}); export it again from your feed reader"
        ) from exc
    if root.tag.rsplit("}", 1)[-1].lower() != "opml":
        raise InputError(f"{path} is not an OPML file (its root element is <{root.tag}>, expected <opml>)")
    result = listparser.parse(data)
    if result.get("bozo"):
        problem = result.get("bozo_exception")
        reason = first_line(problem) if problem else "not OPML"
        raise InputError(f"{path} is not a valid OPML file ({reason}); export one from your feed reader and try again")
    feeds = []
    for item in result.feeds:
        url = (item.get("url") or "").strip()
        if not url:
            continue
        folder = None
        for cats in item.get("categories") or []:
            if cats:
                folder = "/".join(cats)
                break
        feeds.append((url, item.get("title") or None, folder))
    if not feeds and not result.get("bozo"):
        raise InputError(f"{path} lists no feeds (expected <outline xmlUrl=...> elements)")
    checked = []
    for n, (url, title, folder) in enumerate(feeds, 1):
        problem = http_url_problem(url)
        if problem:
            shown = repr(url) if len(url) <= 100 else repr(url[:97] + "...")
            raise InputError(
                f"{path}: feed #{n} {shown} is not an http(s) URL a feed can be read from: {problem}; "
                "nothing was imported"
            )
        folder = clean_label(folder, MAX_FOLDER_CHARS + 1)
        if folder is not None and len(folder) > MAX_FOLDER_CHARS:
            raise InputError(
                f"{path}: feed #{n} is in a folder named with over {MAX_FOLDER_CHARS} characters "
                f"({folder[:40]!r}...); nothing was imported"
            )
        checked.append((url, clean_label(title, MAX_FEED_TITLE_CHARS), folder))
    return checked


def export_opml(db: Database) -> bytes:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = "wiredesk feeds"
    ET.SubElement(head, "dateCreated").text = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for f in stored.all_feeds(db):
        parent = body
        if f.folder:
            folder = folders.get(f.folder)
            if folder is None:
                name = _xml_text(f.folder)
                folder = folders[f.folder] = ET.SubElement(body, "outline", text=name, title=name)
            parent = folder
        title = _xml_text(f.title or f.url)
        attrs = {"type": "rss", "text": title, "title": title, "xmlUrl": _xml_text(f.url)}
        if f.site_url:
            attrs["htmlUrl"] = _xml_text(f.site_url)
        ET.SubElement(parent, "outline", attrs)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


# Characters XML 1.0 cannot carry at all: a value stored before URLs were checked must not make the export unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 1)


def list_feeds(db: Database) -> list[dict]:
    return [
        {
            "url": redact(f.url),
            "title": f.title,
            "folder": f.folder,
            "status": f.status,
            "entries": entries,
            "last_success": f.last_success_at.isoformat() if f.last_success_at else None,
            "last_error": redact(f.last_error),
            "error_count": f.error_count,
            "next_poll": f.next_poll_at.isoformat() if f.next_poll_at else None,
            # the interval now in force and where it came from (user, adaptive, ttl, cache, retry-after, backoff,
            # websub); before the first poll: the feed's own interval, else the schedule's
            "interval_minutes": _minutes(
                f.interval_seconds if f.interval_seconds is not None else f.poll_interval_seconds
            ),
            "interval_source": f.interval_source or ("user" if f.poll_interval_seconds is not None else None),
            "own_interval_minutes": _minutes(f.poll_interval_seconds),
            "fetch_articles": f.fetch_articles,
        }
        for f, entries in ((summary.feed, summary.entries) for summary in stored.feed_summaries(db))
    ]


def command(args, config) -> int:
    from daemon.app import database
    from daemon.cli.output import check_output_path, write_output

    action = args.feeds_command
    # check what the user gave before touching the database, so a mistake writes nothing
    if action == "add":
        url, title, folder = check_feed(args.url, args.title, args.folder)
    if action == "edit":
        changes = _edit_args(args)
    if action == "poll":
        urls = [check_feed_url(u) for u in args.urls]
    if action == "export" and args.output:
        check_output_path(args.output)
    items = parse_opml(args.file) if action == "import" else []
    db = database(config)
    sync_config_feeds(db, config)  # feeds and settings from the config are there before anything is listed
    if action == "add":
        return _add_command(db, config, url, title, folder, every=args.all)
    elif action == "edit":
        values = edit_feed(db, args.url, **changes)
        print(f"{args.url.strip()}: " + ", ".join(_describe_change(k, v) for k, v in values.items()))
    elif action == "poll":
        return _poll_command(db, config, urls)
    elif action == "remove":
        if not remove_feed(db, args.url):
            raise InputError(f"{args.url!r} is not a feed (wiredesk feeds list shows them)")
        print(f"removed {args.url}")
    elif action == "import":
        new = add_feeds(db, items)
        unique = len({url for url, _, _ in items})
        print(f"imported {new} new feeds from {args.file} ({unique - new} already present)")
    elif action == "export":
        write_output(export_opml(db), args.output)
    elif action == "list":
        rows = list_feeds(db)
        if args.json:
            print(json.dumps(rows, indent=2, ensure_ascii=False))
            return 0
        from rich.table import Table

        from daemon.publish.tables import console

        table = Table(title=f"{len(rows)} feeds")
        # URLs are what people copy from this table: keep them on one line
        table.add_column("feed", no_wrap=True, min_width=min(60, max((len(r["url"]) for r in rows), default=4)))
        for col in ("folder", "status", "entries", "last success", "last error", "next poll", "interval"):
            table.add_column(col)
        for r in rows:
            status_style = {FeedStatus.ACTIVE: "green", FeedStatus.ERROR: "yellow", FeedStatus.GONE: "red"}.get(
                r["status"], ""
            )
            table.add_row(
                f"{r['title'] or ''}\n{r['url']}" if r["title"] else r["url"],
                r["folder"] or "",
                f"[{status_style}]{r['status']}[/]",
                str(r["entries"]),
                (r["last_success"] or "-")[:16].replace("T", " "),
                r["last_error"] or "",
                (r["next_poll"] or "now")[:16].replace("T", " "),
                f"{r['interval_minutes']:g} min\n{r['interval_source']}"
                if r["interval_minutes"] is not None
                else "adaptive",
            )
        console().print(table)
    return 0


def _edit_args(args) -> dict:
    changes: dict = {}
    if args.title is not None:
        changes["title"] = args.title
    if args.folder is not None:
        changes["folder"] = args.folder
    if args.interval is not None:
        changes["interval"] = parse_interval(args.interval)
    if args.fetch_articles is not None:
        changes["fetch_articles"] = args.fetch_articles
    if not changes:
        raise InputError(
            "feeds edit: nothing to change; give --title, --folder, --interval MINUTES|auto or "
            "--fetch-articles/--no-fetch-articles"
        )
    check_feed_url(args.url)
    return changes


def _describe_change(key: str, value) -> str:
    if key == "poll_interval_seconds":
        return "interval auto (adaptive)" if value is None else f"interval {value / 60:g} min"
    if key == "fetch_articles":
        return "article pages fetched" if value else "article pages not fetched (the feed's own content)"
    return f"{key} {value!r}" if value is not None else f"{key} cleared"


def _add_command(db: Database, config, url: str, title: str | None, folder: str | None, every: bool) -> int:
    """Add a feed; a web page's URL adds the feed(s) it links. A URL that cannot be reached now is added as given
    (it is polled like any other feed and its errors show in `feeds list`)."""
    if stored.feeds_by_url(db, [url]):
        print(f"{url} is already a feed (wiredesk feeds edit changes its title, folder or interval)")
        return 0
    from daemon.discover import feed_links, looks_like_html

    result = _fetch_once(config, url)
    checked = result.ok and result.content is not None
    if not checked or not looks_like_html(result.content, result.headers):
        added = add_feed(db, url, title, folder)
        note = "" if checked else f" (not checked now: {result.error or 'no content'})"
        print(f"added {url}{note}" if added else f"{url} is already a feed")
        return 0
    found = feed_links(result.content, result.final_url)
    readable = [f for f in found if f.readable]
    if not readable:
        also = f" (it links only a JSON Feed, which wiredesk does not read: {found[0].url})" if found else ""
        raise InputError(
            f"{url} is a web page that links no RSS or Atom feed{also}; give the feed's own URL "
            f"(look for an RSS or Atom link on the site)"
        )
    chosen = readable if every else readable[:1]
    for f in chosen:
        feed_url = check_feed_url(f.url)
        added = add_feed(db, feed_url, title or f.title, folder)
        label = f" ({f.title})" if f.title else ""
        print(
            f"{url} is a web page; added its {f.kind} feed {feed_url}{label}"
            if added
            else f"{url} is a web page; its {f.kind} feed {feed_url} is already a feed"
        )
    rest = readable[len(chosen) :]
    if rest:
        print(f"  it links {len(rest)} more: " + ", ".join(f.url for f in rest) + " (--all adds every one)")
    return 0


def _fetch_once(config, url: str):
    import asyncio

    from daemon.app import make_fetcher

    async def go():
        fetcher = make_fetcher(config)
        try:
            return await fetcher.fetch(url)
        finally:
            await fetcher.aclose()

    return asyncio.run(go())


def _poll_command(db: Database, config, urls: list[str]) -> int:
    """Poll these feeds now, due or not. Beside a running `wiredesk run` on the same SQLite database the feeds are
    made due in the database instead, and the service polls them at its next look for due feeds (every
    [schedule] tick_seconds): it alone writes there, and a row it reads anyway needs no port, no credentials and no
    second code path."""
    from daemon.service import poll_here, service_holding

    feeds = known_feeds(db, urls)
    holder = service_holding(db)
    if holder:
        stored.mark_due(db, urls, datetime.now(timezone.utc))
        tick = config["schedule"]["tick_seconds"]
        print(
            f"queued {len(feeds)} feed{'s' if len(feeds) != 1 else ''} for wiredesk run ({holder}): polled within "
            f"{tick:g} s ([schedule] tick_seconds)"
        )
        return 0
    return poll_here(config, db, feeds=feeds)
