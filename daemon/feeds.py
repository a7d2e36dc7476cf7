"""The feed list as a user gives it: checking a feed's URL, title and folder, adding and removing feeds, and applying
the config file's [[feeds]]. The command line (``daemon.cli.feeds``) and the service (on start) both use it; it
imports neither.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone

from daemon.config import MAX_FEED_TITLE_CHARS, MAX_FOLDER_CHARS
from daemon.errors import InputError
from daemon.fetch.urls import http_url_problem
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
    kept = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in value if unicodedata.category(c) != "Cf"
    )
    return _SPACES.sub(" ", kept).strip()[:max_chars] or None


def check_feed(url: str, title: str | None, folder: str | None, where: str = "") -> tuple[str, str | None, str | None]:
    return (
        check_feed_url(url, where),
        check_label(title, "title", MAX_FEED_TITLE_CHARS, where),
        check_label(folder, "folder", MAX_FOLDER_CHARS, where),
    )


def add_feed(db: Database, url: str, title: str | None = None, folder: str | None = None) -> bool:
    url, title, folder = check_feed(url, title, folder)
    return stored.add_feed(db, url, title, folder, datetime.now(timezone.utc))


def add_feeds(db: Database, items: list[tuple[str, str | None, str | None]]) -> int:
    """Add checked feeds in one transaction, all or none; those already present stay as they are. Returns how
    many were new."""
    unique: dict[str, tuple[str | None, str | None]] = {}
    for url, title, folder in items:
        unique.setdefault(url, (title, folder))
    for _attempt in (1, 2):
        added = stored.add_new_feeds(db, unique, datetime.now(timezone.utc))
        if added is not None:
            return added
    # added by another process twice in a row: say so rather than loop
    raise InputError(
        "feeds were being added by another wiredesk process at the same time; nothing was "
        "imported, run the import again"
    )


def remove_feed(db: Database, url: str) -> bool:
    return stored.remove_feed(db, url.strip())


def sync_config_feeds(db: Database, config) -> int:
    """Feeds listed in the config file are added on start (never removed: the database is the record), and the
    settings a [[feeds]] entry gives (title, folder, interval_minutes, fetch_articles) are applied to its feed."""
    items = [
        check_feed(f.url, f.title, f.folder, where=f"{config.path or 'config'}: feeds #{i}: ")
        for i, f in enumerate(config.feeds, 1)
    ]
    if not items:
        return 0
    # one lookup for what is already there: a config listing a thousand feeds costs a few round trips on each start
    added = add_feeds(db, items)
    settings = []
    for (url, title, folder), f in zip(items, config.feeds):
        values = {k: v for k, v in (("title", title), ("folder", folder)) if v is not None}
        if f.interval_minutes is not None:
            values["poll_interval_seconds"] = f.interval_minutes * 60.0
        if f.fetch_articles is not None:
            values["fetch_articles"] = f.fetch_articles
        if values:
            settings.append((url, values))
    if settings:
        stored.apply_feed_settings(db, settings)
    return added
