"""`wiredesk feeds ...`: adding, removing, listing, OPML import and export.

Everything given is checked before anything is written: a bad URL, title or folder anywhere in an OPML file, and
nothing of the file is imported.
"""

from __future__ import annotations

import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import listparser

from daemon.config import MAX_FEED_TITLE_CHARS, MAX_FOLDER_CHARS
from daemon.errors import InputError
from daemon.fetch.urls import http_url_problem
from daemon.states import FeedStatus
from storage import Database
from storage import feeds as stored


def check_feed_url(url: str, where: str = "") -> str:
    url = url.strip()
    problem = http_url_problem(url)
    if problem:
        shown = repr(url) if len(url) <= 100 else repr(url[:97] + "...")
        raise InputError(
            f"{where}{shown} is not an http(s) URL a feed can be read from: {problem} "
            "(a feed URL looks like https://example.com/feed.xml)"
        )
    return url


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in text)


def check_label(value: str | None, what: str, max_chars: int, where: str = "") -> str | None:
    """A title or folder given by the user: refused when too long or when it hides control characters."""
    if value is None:
        return None
    if len(value) > max_chars:
        raise InputError(f"{where}the {what} is {len(value)} characters long; at most {max_chars} are allowed")
    if _has_control(value):
        raise InputError(f"{where}the {what} {value[:60]!r} contains a control character")
    return value.strip() or None


_SPACES = re.compile(r"\s+")


def clean_label(value: str | None, max_chars: int) -> str | None:
    """A title read from a file: control characters dropped, whitespace collapsed, cut to ``max_chars``."""
    if not value:
        return None
    if value.isascii() and value.isprintable():
        return _SPACES.sub(" ", value).strip()[:max_chars] or None
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in value
                   if unicodedata.category(c) != "Cf")
    return _SPACES.sub(" ", kept).strip()[:max_chars] or None


def check_feed(url: str, title: str | None, folder: str | None, where: str = "") -> tuple[str, str | None, str | None]:
    return (check_feed_url(url, where), check_label(title, "title", MAX_FEED_TITLE_CHARS, where),
            check_label(folder, "folder", MAX_FOLDER_CHARS, where))


def add_feed(db: Database, url: str, title: str | None = None, folder: str | None = None) -> bool:
    url, title, folder = check_feed(url, title, folder)
    return stored.add_feed(db, url, title, folder)


def add_feeds(db: Database, items: list[tuple[str, str | None, str | None]]) -> int:
    """Add checked feeds in one transaction, all or none; those already present stay as they are. Returns how
    many were new."""
    unique: dict[str, tuple[str | None, str | None]] = {}
    for url, title, folder in items:
        unique.setdefault(url, (title, folder))
    for _attempt in (1, 2):
        added = stored.add_new_feeds(db, unique)
        if added is not None:
            return added
    # added by another process twice in a row: say so rather than loop
    raise InputError("feeds were being added by another wiredesk process at the same time; nothing was "
                     "imported, run the import again")


def remove_feed(db: Database, url: str) -> bool:
    return stored.remove_feed(db, url.strip())


def sync_config_feeds(db: Database, config) -> int:
    """Feeds listed in the config file are added on start (never removed: the database is the record)."""
    items = [check_feed(f.url, f.title, f.folder, where=f"{config.path or 'config'}: feeds #{i}: ")
             for i, f in enumerate(config.feeds, 1)]
    if not items:
        return 0
    # one lookup for what is already there: a config listing a thousand feeds costs a few round trips on each start
    return add_feeds(db, items)


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
    checked = []
    for n, (url, title, folder) in enumerate(feeds, 1):
        problem = http_url_problem(url)
        if problem:
            shown = repr(url) if len(url) <= 100 else repr(url[:97] + "...")
            raise InputError(f"{path}: feed #{n} {shown} is not an http(s) URL a feed can be read from: {problem}; "
                             "nothing was imported")
        folder = clean_label(folder, MAX_FOLDER_CHARS + 1)
        if folder is not None and len(folder) > MAX_FOLDER_CHARS:
            raise InputError(f"{path}: feed #{n} is in a folder named with over {MAX_FOLDER_CHARS} characters "
                             f"({folder[:40]!r}...); nothing was imported")
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


def list_feeds(db: Database) -> list[dict]:
    return [
        {
            "url": f.url,
            "title": f.title,
            "folder": f.folder,
            "status": f.status,
            "entries": entries,
            "last_success": f.last_success_at.isoformat() if f.last_success_at else None,
            "last_error": f.last_error,
            "error_count": f.error_count,
            "next_poll": f.next_poll_at.isoformat() if f.next_poll_at else None,
        }
        for f, entries in ((summary.feed, summary.entries) for summary in stored.feed_summaries(db))
    ]


def command(args, config) -> int:
    from daemon.app import database
    from daemon.cli.main import check_output_path, write_output

    action = args.feeds_command
    # check what the user gave before touching the database, so a mistake writes nothing
    if action == "add":
        url, title, folder = check_feed(args.url, args.title, args.folder)
    if action == "export" and args.output:
        check_output_path(args.output)
    items = parse_opml(args.file) if action == "import" else []
    db = database(config)
    if action == "add":
        added = add_feed(db, url, title, folder)
        print(f"added {url}" if added else f"{url} is already a feed")
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
        for col in ("folder", "status", "entries", "last success", "last error", "next poll"):
            table.add_column(col)
        for r in rows:
            status_style = {FeedStatus.ACTIVE: "green", FeedStatus.ERROR: "yellow", FeedStatus.GONE: "red"}.get(r["status"], "")
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
