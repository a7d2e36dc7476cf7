"""`wiredesk feeds ...`: adding, removing, listing, OPML import and export."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import listparser
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from daemon.errors import InputError
from storage import Database
from storage.models import Entry, Feed


def check_feed_url(url: str, where: str = "") -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"{where}{url!r} is not an http(s) URL (a feed URL looks like https://example.com/feed.xml)")
    return url


def add_feed(db: Database, url: str, title: str | None = None, folder: str | None = None) -> bool:
    url = check_feed_url(url)
    try:
        with db.session() as s:
            if s.scalar(select(Feed.id).where(Feed.url == url)) is not None:
                return False
            s.add(Feed(url=url, title=title, folder=folder, status="active", error_count=0, created_at=datetime.now(timezone.utc)))
    except IntegrityError:
        return False  # another worker starting at the same moment added it first
    return True


def remove_feed(db: Database, url: str) -> bool:
    with db.session() as s:
        feed = s.scalar(select(Feed).where(Feed.url == url.strip()))
        if feed is None:
            return False
        s.delete(feed)
    return True


def sync_config_feeds(db: Database, config) -> int:
    """Feeds listed in the config file are added on start (never removed: the database is the record)."""
    added = 0
    for i, f in enumerate(config.feeds, 1):
        check_feed_url(f.url, where=f"{config.path or 'config'}: feeds #{i}: ")
    if not config.feeds:
        return 0
    # one query for what is already there: a config listing a thousand feeds costs one round trip on each start
    with db.session() as s:
        known = set(s.scalars(select(Feed.url)))
    for f in config.feeds:
        if f.url.strip() not in known:
            added += add_feed(db, f.url, f.title, f.folder)
            known.add(f.url.strip())
    return added


def parse_opml(path: str) -> list[tuple[str, str | None, str | None]]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read OPML file {path}: {exc.strerror}") from exc
    # listparser forgives a truncated file; a cut-off export must not be half-imported, so check the XML first
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InputError(f"{path} is not a valid OPML file (XML error: {exc}); export it again from your feed reader") from exc
    if root.tag.rsplit("}", 1)[-1].lower() != "opml":
        raise InputError(f"{path} is not an OPML file (its root element is <{root.tag}>, expected <opml>)")
    result = listparser.parse(data)
    if result.get("bozo"):
        reason = str(result.get("bozo_exception") or "not OPML").splitlines()[0]
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
    bad = [u for u, _, _ in feeds if urlsplit(u).scheme not in ("http", "https")]
    if bad:
        raise InputError(f"{path}: {bad[0]!r} is not an http(s) feed URL; nothing was imported")
    return feeds


def export_opml(db: Database) -> bytes:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = "wiredesk feeds"
    ET.SubElement(head, "dateCreated").text = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    with db.session() as s:
        feeds = list(s.scalars(select(Feed).order_by(Feed.folder, Feed.id)))
    for f in feeds:
        parent = body
        if f.folder:
            parent = folders.get(f.folder)
            if parent is None:
                parent = folders[f.folder] = ET.SubElement(body, "outline", text=f.folder, title=f.folder)
        attrs = {"type": "rss", "text": f.title or f.url, "title": f.title or f.url, "xmlUrl": f.url}
        if f.site_url:
            attrs["htmlUrl"] = f.site_url
        ET.SubElement(parent, "outline", attrs)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def list_feeds(db: Database) -> list[dict]:
    with db.session() as s:
        counts = {k: v for k, v in s.execute(select(Entry.feed_id, func.count()).group_by(Entry.feed_id))}
        return [
            {
                "url": f.url,
                "title": f.title,
                "folder": f.folder,
                "status": f.status,
                "entries": counts.get(f.id, 0),
                "last_success": f.last_success_at.isoformat() if f.last_success_at else None,
                "last_error": f.last_error,
                "error_count": f.error_count,
                "next_poll": f.next_poll_at.isoformat() if f.next_poll_at else None,
            }
            for f in s.scalars(select(Feed).order_by(Feed.folder, Feed.id))
        ]


def command(args, config) -> int:
    from daemon.app import database

    action = args.feeds_command
    # check what the user gave before touching the database, so a mistake writes nothing
    if action == "add":
        check_feed_url(args.url)
    items = parse_opml(args.file) if action == "import" else []
    db = database(config)
    if action == "add":
        added = add_feed(db, args.url, args.title, args.folder)
        print(f"added {args.url}" if added else f"{args.url} is already a feed")
    elif action == "remove":
        if not remove_feed(db, args.url):
            raise InputError(f"{args.url} is not a feed (wiredesk feeds list shows them)")
        print(f"removed {args.url}")
    elif action == "import":
        added = sum(add_feed(db, url, title, folder) for url, title, folder in items)
        print(f"imported {added} new feeds from {args.file} ({len(items) - added} already present)")
    elif action == "export":
        body = export_opml(db)
        if args.output:
            Path(args.output).write_bytes(body)
        else:
            sys.stdout.buffer.write(body)
    elif action == "list":
        rows = list_feeds(db)
        if args.json:
            print(json.dumps(rows, indent=2, ensure_ascii=False))
            return 0
        from rich.table import Table

        from daemon.tables import console

        table = Table(title=f"{len(rows)} feeds")
        # URLs are what people copy from this table: keep them on one line
        table.add_column("feed", no_wrap=True, min_width=min(60, max((len(r["url"]) for r in rows), default=4)))
        for col in ("folder", "status", "entries", "last success", "last error", "next poll"):
            table.add_column(col)
        for r in rows:
            status_style = {"active": "green", "error": "yellow", "gone": "red"}.get(r["status"], "")
            table.add_row(
                f"{r['title'] or ''}\n{r['url']}" if r["title"] else r["url"],
                r["folder"] or "",
                f"[{status_style}]{r['status']}[/]",
                str(r["entries"]),
                (r["last_success"] or "-")[:16].replace("T", " "),
                r["last_error"] or "",
                (r["next_poll"] or "now")[:16].replace("T", " "),
            )
        console().print(table)
    return 0
