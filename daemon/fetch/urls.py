"""What counts as a usable http(s) URL: one check shared by feed URLs, OPML imports and the digest's base URL.

The URL is read by a real parser (``urllib.parse``, then httpx, which the fetcher uses), never by pattern alone:
the port must be a number from 1 to 65535, a host must be present and well formed, and no control character or
space may hide anywhere in it (they break the OPML export, log lines and HTTP requests).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import lru_cache
from urllib.parse import urlsplit

from tld import get_fld

__all__ = ["MAX_URL_CHARS", "http_url_problem", "publisher_of", "redact"]

# The feeds table stores URLs in a column of this many characters (PostgreSQL enforces it, SQLite does not).
MAX_URL_CHARS = 2048

# A host name label: letters (any script, for internationalised names), digits, hyphens and underscores.
_LABEL = re.compile(r"[^\W_](?:[\w-]*[^\W_])?")


_ASCII_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def _has_control(text: str) -> bool:
    # Cc (C0, DEL, C1), and also Cf format characters (bidi overrides, zero-width) that make a URL read differently
    # from what it is; spaces have no place in a URL either (they are written %20). Most URLs are ASCII: one regex.
    if text.isascii():
        return _ASCII_CONTROL_OR_SPACE.search(text) is not None
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp") for c in text)


def _host_problem(host: str, bracketed: bool) -> str | None:
    if bracketed:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"[{host}] is not an IPv6 address"
        return None
    try:
        ipaddress.IPv4Address(host)
        return None
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(label and len(label) <= 63 and _LABEL.fullmatch(label) for label in name.split(".")):
        return f"{host!r} is not a host name"
    if name.replace(".", "").isdigit():
        return f"{host!r} is not an IPv4 address"
    return None


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable absolute http(s) URL, in a few words; None when it is one."""
    if not isinstance(url, str):
        return "it is not text"
    if len(url) > MAX_URL_CHARS:
        return f"it is {len(url)} characters long, over the limit of {MAX_URL_CHARS}"
    if _has_control(url):
        return "it contains a control character or a space"
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed here: ValueError for "abc" or a number out of range
    except ValueError as exc:
        return f"it cannot be parsed ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"its scheme is {parts.scheme + ':' if parts.scheme else 'missing'}, not http: or https:"
    host = parts.hostname or ""
    if not host:
        return "it has no host"
    if port is not None and not 1 <= port <= 65535:
        return f"its port {port} is outside 1-65535"
    netloc_host = parts.netloc.rpartition("@")[2]
    problem = _host_problem(host, netloc_host.startswith("["))
    if problem:
        return problem
    if not host.isascii() or "xn--" in host:
        # an internationalised name: the fetcher's own parser must be able to encode it (IDNA)
        import httpx

        try:
            httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            return f"its host cannot be encoded ({exc})"
    return None


@lru_cache(maxsize=4096)
def _registered_domain(host: str) -> str | None:
    return get_fld(host, fix_protocol=True, fail_silently=True)


def publisher_of(url: str | None) -> str | None:
    """The registered domain of a URL's host ("koreaherald.com" for www.koreaherald.com and news.koreaherald.com):
    the site a page or a feed is on. None without one (no URL, an address, an unknown top-level domain)."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    return _registered_domain(host.lower().rstrip("."))


# user:password@ (or a token as the user) in any URL of a text: what a log line, an error or the API would give away
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")


def redact(text: str | None) -> str | None:
    """``text`` with the credentials of every URL in it replaced by ``***`` ("https://***@host/feed"): how a feed's
    URL is shown (the API, `feeds list`, errors, logs, digests). `feeds export` keeps them: it is a backup."""
    if not text or "@" not in text:
        return text
    return _CREDENTIALS.sub(r"\1***@", text)
