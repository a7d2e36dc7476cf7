"""The HTTP side of `wiredesk run`: digests, the HTML page, /healthz and /metrics.

A small threaded server from the standard library: the load is a handful of feed readers polling a few documents,
and every document is rendered once and then served from memory until the stories change, so a heavier framework
would buy nothing. Readers poll with If-None-Match / If-Modified-Since and mostly get a 304.

Endpoints: /digest.atom, /digest.rss, /digest.json, / (also /index.html, /digest.html), /healthz, /metrics; the
story pages and the JSON API (/story/<id>, /api/stories, /api/stories/<id>, /api/feeds) are answered by
daemon/serve/api.py, and all but /api/feeds are kept in memory like the digests.
Digest query parameters: min_outlets, days, folder (repeatable), feed (repeatable, a feed title or URL), limit, offset,
q (words to search for in the articles' titles and texts).
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import logging
import re
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from daemon.errors import InputError
from daemon.publish.select import DigestQuery, query_from_config, render_digest
from daemon.serve import api
from storage import Database
from storage.health import HealthProbe
from storage.stories import search_words, stories_version

log = logging.getLogger("wiredesk.http")

ROUTES = {
    "/digest.atom": "atom",
    "/digest.rss": "rss",
    "/digest.json": "json",
    "/": "html",
    "/index.html": "html",
    "/digest.html": "html",
}
PARAMETERS = ("days", "feed", "folder", "limit", "min_outlets", "offset", "q")
PLAIN = "text/plain; charset=utf-8"
# A rendered document is re-rendered after this many seconds even when no story changed: stories leave the time
# window and headlines follow feed corrections without a new membership.
MAX_AGE_SECONDS = 60.0
# How long a rendered document is served without asking the database whether a story changed.
RECHECK_SECONDS = 1.0
CACHED_DOCUMENTS = 64
# ... and at most this many bytes of them (bodies and their gzipped copies): queries differing only in a parameter
# must not hold the server's memory at 64 times the largest digest.
CACHED_BYTES = 32 * 1024 * 1024
GZIP_MIN_BYTES = 1024
IDLE_CONNECTION_SECONDS = 60  # a keep-alive connection with no request for this long is closed
PUSH_READERS = 4  # WebSub pushes whose bodies are read at the same time (each at most fetch.max_bytes)
MAX_QUERY_FIELDS = 100
HTML_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
MAX_SEARCH_CHARS = 200
_NUMBER = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")


# ---- query parameters --------------------------------------------------------------------------------------------


def _shown(value: str) -> str:
    # Echo what the client sent on one line, short enough to read.
    return repr(value if len(value) <= 40 else value[:40] + "…")


def parse_query(qs: str, config) -> DigestQuery:
    """The digest a query string asks for, within the configured limits; InputError for anything malformed.

    Unknown parameters are refused rather than ignored, so that a misspelt filter never passes silently.
    """
    try:
        pairs = parse_qsl(qs, keep_blank_values=True, max_num_fields=len(PARAMETERS) * 8)
    except ValueError:
        raise InputError("too many query parameters") from None
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value.strip())
    params.pop("token", None)  # the access token, checked before the query is read
    for name in params:
        if name not in PARAMETERS:
            raise InputError(f"unknown query parameter {_shown(name)}; known: {', '.join(PARAMETERS)}")

    def single(name: str) -> str | None:
        values = params.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise InputError(f"query parameter {name} is given {len(values)} times; give it once")
        return values[0]

    def whole(name: str) -> int | None:
        raw = single(name)
        if raw is None:
            return None
        if not _NUMBER.fullmatch(raw) or int(raw) < 1:
            raise InputError(f"query parameter {name} must be a whole number of 1 or more, not {_shown(raw)}")
        return int(raw)

    days = single("days")
    if days is not None and (not _DECIMAL.fullmatch(days) or float(days) <= 0):
        raise InputError(f"query parameter days must be a number of days above 0 (e.g. 7 or 0.5), not {_shown(days)}")
    names: dict[str, tuple[str, ...]] = {}
    for name in ("folder", "feed"):
        values = params.get(name, [])
        if any(not v for v in values):
            raise InputError(f"query parameter {name} must not be empty")
        names[name] = tuple(dict.fromkeys(values))
    return query_from_config(
        config,
        min_outlets=whole("min_outlets"),
        window_days=float(days) if days is not None else None,
        folders=names["folder"],
        feeds=names["feed"],
        limit=whole("limit"),
        offset=_offset(single("offset")),
        search=_search(single("q")),
    )


def _search(raw: str | None) -> str | None:
    if raw is None:
        return None
    if len(raw) > MAX_SEARCH_CHARS:
        raise InputError(f"query parameter q is longer than {MAX_SEARCH_CHARS} characters")
    if not search_words(raw):
        raise InputError(f"query parameter q needs at least one word (letters or digits), not {_shown(raw)}")
    return raw


def _offset(raw: str | None) -> int:
    if raw is None:
        return 0
    if not _NUMBER.fullmatch(raw):
        raise InputError(f"query parameter offset must be a whole number of 0 or more, not {_shown(raw)}")
    return int(raw)


# ---- rendered documents ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    body: bytes
    gzipped: bytes | None  # the body gzip-compressed, for clients that accept it; None when too small to matter
    content_type: str
    etag: str  # strong ETag of the uncompressed body; the gzipped body's is the same with "-gzip" appended
    last_modified: datetime  # whole seconds, UTC
    version: tuple  # what the stored stories looked like when it was rendered
    rendered_at: float  # time.monotonic()
    checked_at: float  # when the stored stories were last seen unchanged since rendering

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gzip"'

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Clock:
    """The server's time: the wall clock for Last-Modified, a monotonic one for the ages of cached documents. The
    service uses the real ones; a test passes its own to move time on without waiting."""

    now: Callable[[], datetime] = _utcnow
    monotonic: Callable[[], float] = time.monotonic


def _whole_second(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(microsecond=0)


class _NotCached(Exception):
    """An answer that is given as it is and not kept (a 404 for an unknown story, a 400)."""

    def __init__(self, reply: api.Reply):
        super().__init__(reply.status)
        self.reply = reply


def _kept(reply: api.Reply) -> tuple[bytes, str]:
    if reply.status != 200:
        raise _NotCached(reply)
    return reply.body, reply.content_type


class DigestCache:
    """Rendered documents by (format, query), served from memory while the stored stories are unchanged.

    The database is asked whether anything changed at most every ``recheck`` seconds per document, and a document
    is rendered again at the latest after ``max_age`` seconds. While a poll stores article after article, readers
    are not made to wait for each new rendering: whoever finds the document out of date renders it, the others get
    the previous one meanwhile, which is at most a moment older.

    Last-Modified is when the document last changed: the newest story update when a story changed it, the time of
    rendering when something else did (a story leaving the time window), and never earlier than before.
    """

    def __init__(
        self,
        db: Database,
        config,
        max_age: float = MAX_AGE_SECONDS,
        recheck: float = RECHECK_SECONDS,
        max_documents: int = CACHED_DOCUMENTS,
        max_bytes: int = CACHED_BYTES,
        clock: Clock | None = None,
    ):
        self.db = db
        self.clock = clock or Clock()
        self.config = config
        self.max_age = max_age
        self.recheck = recheck
        # Until a first story exists, an empty digest is as old as the server; it keeps one ETag meanwhile.
        self.started = _whole_second(self.clock.now())
        self.items: OrderedDict[tuple, Document] = OrderedDict()
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self.bytes = 0  # the size of the documents in items
        self.lock = threading.Lock()  # guards items
        self.render_lock = threading.Lock()  # one rendering at a time; the GIL would allow no more anyway

    def version(self) -> tuple:
        # Index lookups only: this runs once a second per busy document.
        return stories_version(self.db)

    def _peek(self, key: tuple) -> Document | None:
        with self.lock:
            doc = self.items.get(key)
            if doc is not None:
                self.items.move_to_end(key)
            return doc

    def _put(self, key: tuple, doc: Document) -> None:
        with self.lock:
            old = self.items.get(key)
            self.bytes += doc.size - (old.size if old is not None else 0)
            self.items[key] = doc
            self.items.move_to_end(key)
            # least recently used first; the document just rendered stays, whatever its size
            while len(self.items) > 1 and (len(self.items) > self.max_documents or self.bytes > self.max_bytes):
                self.bytes -= self.items.popitem(last=False)[1].size

    def get(self, fmt: str, query: DigestQuery) -> Document:
        """The digest in ``fmt`` for ``query``."""
        return self.get_made(
            (fmt, query),
            lambda changed: render_digest(self.db, self.config, fmt, query, empty_updated=changed or self.started),
        )

    def get_made(self, key: tuple, make: Callable[[datetime | None], tuple[bytes, str]]) -> Document:
        """The document under ``key``, made by ``make`` (given the newest story update; it returns the body and
        its Content-Type, or raises _NotCached with an answer that is not kept) when the stored stories changed."""
        doc = self._peek(key)
        if doc is not None and self.clock.monotonic() - doc.checked_at < self.recheck:
            return doc
        version = self.version()
        now = self.clock.monotonic()
        if doc is not None and doc.version == version and now - doc.rendered_at < self.max_age:
            doc = replace(doc, checked_at=now)
            self._put(key, doc)
            return doc
        if doc is not None:
            if not self.render_lock.acquire(blocking=False):
                return doc  # another reader is rendering; this one is the previous state, moments old
        else:
            self.render_lock.acquire()
        try:
            current = self._peek(key)
            if (
                current is not None
                and current is not doc
                and self.clock.monotonic() - current.checked_at < self.recheck
            ):
                return current  # rendered by the reader this one waited for
            return self._render(key, make, current)
        finally:
            self.render_lock.release()

    def _render(
        self, key: tuple, make: Callable[[datetime | None], tuple[bytes, str]], previous: Document | None
    ) -> Document:
        # read the version before the stories: a story stored in between makes the next check render again
        version = self.version()
        stories_changed_at = version[1]
        body, ctype = make(stories_changed_at)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if previous is not None and previous.etag == etag:
            last_modified = previous.last_modified
        else:
            last_modified = _whole_second(stories_changed_at or self.started)
            if previous is not None and last_modified <= previous.last_modified:
                # Changed without a newer story update (a story left the window, a headline was corrected):
                # now, which is later than before unless within the same second (then the ETag tells the change).
                last_modified = max(_whole_second(self.clock.now()), previous.last_modified)
        gzipped = gzip.compress(body, compresslevel=6, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
        now = self.clock.monotonic()
        doc = Document(body, gzipped, ctype, etag, last_modified, version, now, now)
        self._put(key, doc)
        return doc


# ---- the handler ---------------------------------------------------------------------------------------------------


def make_handler(db: Database, config, metrics, state, clock: Clock | None = None):  # noqa: C901 - the handler's methods are counted here
    cache = DigestCache(db, config, clock=clock)
    # the API's answers and the story pages, kept apart so that many story pages never push the digests out
    answers = DigestCache(db, config, clock=clock)
    probe = HealthProbe(db)
    request_seconds = float(config["server"]["request_timeout"])
    token = config["server"]["token"].encode()
    metrics_open = bool(config["server"]["metrics_open"])
    websub_on = bool(config["server"]["base_url"].strip())
    # pushes whose bodies are read at once: each may be fetch.max_bytes
    push_readers = threading.BoundedSemaphore(PUSH_READERS)
    watchdog = _Watchdog()

    class Handler(BaseHTTPRequestHandler):
        server_version = "wiredesk"
        protocol_version = "HTTP/1.1"
        timeout = IDLE_CONNECTION_SECONDS
        # headers and body go out in two writes; with Nagle's algorithm a short body waits for the client's
        # delayed ACK (40 ms on Linux) on a keep-alive connection
        disable_nagle_algorithm = True

        def handle_one_request(self):
            # An idle keep-alive connection may wait IDLE_CONNECTION_SECONDS for its next request; once a request's
            # first byte is there, the request and its answer get request_timeout seconds in all, however slowly the
            # client sends or reads, and then the connection is cut.
            try:
                if not self.rfile.peek(1):
                    self.close_connection = True
                    return
            except (TimeoutError, OSError, ValueError):
                self.close_connection = True
                return
            key = id(self)
            watchdog.arm(key, time.monotonic() + request_seconds, self._cut)
            try:
                super().handle_one_request()
            finally:
                watchdog.disarm(key)

        def _cut(self):
            self.close_connection = True
            log.debug("cut a connection from %s after %g s", self.client_address[0], request_seconds)
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def log_message(self, fmt, *args):  # one debug line per request; access logs belong to a front proxy
            log.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, status: int, body: bytes, ctype: str | None, headers: dict | None = None):
            try:
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                if status not in (204, 304):
                    self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Content-Type-Options", "nosniff")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD" and status not in (204, 304):
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the reader went away; nothing to tell it

        def _text(self, status: int, message: str, headers: dict | None = None):
            self._send(status, f"{message}\n".encode(), PLAIN, {"Cache-Control": "no-store", **(headers or {})})

        def do_HEAD(self):
            self.do_GET()

        def _authorized(self, url) -> bool:
            """With [server] token set, every route but /healthz and the WebSub callbacks (and /metrics with
            metrics_open) needs the token: a bearer header or token= in the query, compared in constant time."""
            if not token or url.path == "/healthz" or url.path.startswith("/websub/"):
                return True
            if metrics_open and url.path == "/metrics":
                return True
            given = None
            scheme, _, credentials = (self.headers.get("Authorization") or "").strip().partition(" ")
            if scheme.lower() == "bearer":
                given = credentials.strip()
            else:
                try:
                    given = dict(parse_qsl(url.query, max_num_fields=MAX_QUERY_FIELDS)).get("token")
                except ValueError:
                    given = None
            return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), token)

        def _unauthorized(self):
            self._text(
                401,
                "this server asks for its access token: an Authorization: Bearer header, or token= in the URL",
                {"WWW-Authenticate": 'Bearer realm="wiredesk"'},
            )

        def do_GET(self):
            url = urlsplit(self.path)
            if not self._authorized(url):
                return self._unauthorized()
            try:
                if url.path == "/healthz":
                    return self._health()
                if url.path == "/metrics":
                    return self._send(
                        200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST, {"Cache-Control": "no-store"}
                    )
                if url.path == "/favicon.ico":  # browsers ask for it; no icon beats a 404 in every console
                    return self._send(204, b"", None, {"Cache-Control": "max-age=86400"})
                if url.path.startswith("/websub/"):
                    return self._websub_verify(url)
                if url.path.startswith(("/api/", "/story/")):
                    return self._api(url.path, url.query)
                fmt = ROUTES.get(url.path)
                if fmt is None:
                    return self._text(
                        404,
                        f"not found: {url.path[:80]}; the digest is at /, /digest.atom, /digest.rss and /digest.json",
                    )
                doc = cache.get(fmt, parse_query(url.query, config))
            except InputError as exc:
                return self._text(400, str(exc))
            except Exception as exc:  # the database may be unreachable; say so instead of dropping the connection
                log.warning(
                    "cannot serve %s: %s", url.path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                )
                return self._text(503, "storage unavailable, try again later", {"Retry-After": "30"})
            self._digest(doc, fmt)

        def _api(self, path: str, query: str):
            """The JSON API and the story pages (daemon/serve/api.py); errors are raised to do_GET."""
            ident = unquote(path.split("/", 3)[-1]) if path.count("/") >= 2 else ""
            # Stories, a story and its page are made once and served from memory while the stored stories are
            # unchanged (news times and all), like the digests; the feeds' list is read each time.
            make: Callable[[datetime | None], tuple[bytes, str]]
            if path == "/api/stories":
                wanted = parse_query(query, config)
                key: tuple = (path, wanted)
                make = lambda _: _kept(api.stories(db, config, wanted))  # noqa: E731
            elif path == "/api/feeds":
                reply = api.feeds(db)
                return self._send(reply.status, reply.body, reply.content_type, {"Cache-Control": "no-cache"})
            elif path.startswith("/api/stories/") and ident and "/" not in ident:
                key = ("/api/stories/", ident)
                make = lambda _: _kept(api.story(db, config, ident))  # noqa: E731
            elif path.startswith("/story/") and path.count("/") == 2 and ident:
                key = ("/story/", ident)
                make = lambda _: _kept(api.story_page(db, config, ident))  # noqa: E731
            else:
                return self._text(
                    404,
                    f"not found: {path[:80]}; the API is at /api/stories, /api/stories/<id> and "
                    "/api/feeds, a story's page at /story/<id>",
                )
            html = key[0] == "/story/"
            try:
                doc = answers.get_made(key, make)
            except _NotCached as refused:
                reply = refused.reply
                headers = {"Cache-Control": "no-cache"}
                if reply.location:
                    # the query goes along (token=, where the access token is given that way)
                    headers["Location"] = reply.location + (f"?{query}" if query else "")
                if html or reply.content_type.startswith("text/html"):
                    headers["Content-Security-Policy"] = HTML_POLICY
                return self._send(reply.status, reply.body, reply.content_type, headers)
            self._document(doc, html=html, cache_control="no-cache")

        def _digest(self, doc: Document, fmt: str):
            self._document(doc, html=fmt == "html", cache_control="max-age=60")

        def _document(self, doc: Document, *, html: bool, cache_control: str):
            use_gzip = doc.gzipped is not None and _accepts_gzip(self.headers.get("Accept-Encoding", ""))
            headers = {
                "ETag": doc.gzip_etag if use_gzip else doc.etag,
                "Last-Modified": format_datetime(doc.last_modified, usegmt=True),
                "Cache-Control": cache_control,
                "Vary": "Accept-Encoding",
            }
            if html:
                # the page carries the same policy in a <meta>; as a header it also forbids framing the page
                headers["Content-Security-Policy"] = HTML_POLICY
            if self._not_modified(doc):
                return self._send(304, b"", None, headers)
            if use_gzip:
                headers["Content-Encoding"] = "gzip"
            self._send(
                200, doc.gzipped if use_gzip and doc.gzipped is not None else doc.body, doc.content_type, headers
            )

        def _not_modified(self, doc: Document) -> bool:
            # RFC 9110 13.2.2: If-None-Match decides when present, with the weak comparison; else If-Modified-Since.
            inm = self.headers.get("If-None-Match")
            if inm is not None:
                tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
                return "*" in tags or doc.etag in tags or doc.gzip_etag in tags
            ims = self.headers.get("If-Modified-Since")
            if ims:
                try:
                    since = parsedate_to_datetime(ims)
                except (TypeError, ValueError, IndexError):
                    return False  # an unreadable date is ignored, as the RFC asks
                if since.tzinfo is None:
                    since = since.replace(tzinfo=timezone.utc)
                return doc.last_modified <= since
            return False

        def _health(self):
            problem = probe.problem()
            if problem:
                return self._text(503, f"unhealthy: {problem}", {"Retry-After": "30"})
            self._text(200, f"ok\nlast poll: {state.get('last_poll') or 'none yet'}")

        def _not_allowed(self):
            self._refuse_unread(405, f"method {self.command} is not allowed; use GET or HEAD", {"Allow": "GET, HEAD"})

        def _websub_verify(self, url):
            from daemon import websub

            where = websub.callback_path(url.path)
            if not websub_on or where is None:
                return self._text(404, "no such subscription")
            feed_id, token = where
            params = dict(parse_qsl(url.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS))
            status, body = websub.verify(db, feed_id, token, params)
            self._send(status, body.encode(), PLAIN, {"Cache-Control": "no-store"})

        def _refuse_unread(self, status: int, message: str, headers: dict | None = None):
            # the body is left unread: the connection cannot carry another request after it
            self.close_connection = True
            self._text(status, message, {"Connection": "close", **(headers or {})})

        def do_POST(self):
            from daemon import websub

            # Everything that can refuse a push is decided before a byte of its body is read.
            url = urlsplit(self.path)
            if not url.path.startswith("/websub/"):
                return self._not_allowed()
            where = websub.callback_path(url.path)
            if not websub_on or where is None:
                return self._refuse_unread(404, "no such subscription")
            feed_id = where[0]
            declared = (self.headers.get("Content-Length") or "").strip()
            length = int(declared) if declared.isascii() and declared.isdigit() and len(declared) < 19 else -1
            limit = config["fetch"]["max_bytes"]
            if length < 0 or length > limit:
                return self._refuse_unread(
                    413 if length > limit else 411, f"a push needs a Content-Length of at most {limit} bytes"
                )
            try:
                known, secret = websub.push_secret(db, feed_id)
            except Exception as exc:
                log.warning("cannot take a push for feed %s: %s", feed_id, exc)
                return self._refuse_unread(503, "storage unavailable, try again later", {"Retry-After": "30"})
            if not known:
                return self._refuse_unread(410, "no such subscription")  # the hub drops it
            if secret is None:
                # a hub that was given no secret (plain http over a network): what it sends cannot be told from a
                # forgery, so it is not read; the feed is polled from its own URL instead
                try:
                    websub.poll_soon(db, feed_id)
                except Exception as exc:
                    log.warning("cannot take a push for feed %s: %s", feed_id, exc)
                    return self._refuse_unread(503, "storage unavailable, try again later", {"Retry-After": "30"})
                log.info("WebSub: unsigned push for feed %s: polling it from its own URL", feed_id)
                return self._refuse_unread(202, "")
            if not push_readers.acquire(timeout=1.0):
                return self._refuse_unread(503, "too many pushes at once, try again later", {"Retry-After": "5"})
            try:
                body = self.rfile.read(length)
            finally:
                push_readers.release()
            if len(body) != length:
                self.close_connection = True
                return  # the client stopped sending (or took longer than request_timeout): nothing to answer
            push = state.get("push")
            if not websub.signature_ok(secret, body, self.headers.get("X-Hub-Signature")):
                # WebSub 8: a push whose signature does not match is ignored, yet acknowledged (a hub would only retry)
                log.warning("WebSub: ignored a push for feed %s: its X-Hub-Signature does not match", feed_id)
                return self._send(202, b"", None)
            headers = {k.lower(): v for k, v in self.headers.items() if k.lower() in ("content-type", "link")}
            if push is None or not push(feed_id, body, headers):
                return self._text(503, "not taking pushes now, try again later", {"Retry-After": "30"})
            self._send(202, b"", None)

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    return Handler


class _Watchdog:
    """Cuts the connections whose request has run past its deadline: one thread for the server, woken a few times a
    second, instead of a timer thread per request."""

    TICK = 0.2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[int, tuple[float, Callable[[], None]]] = {}
        self._thread: threading.Thread | None = None

    def arm(self, key: int, deadline: float, cut: Callable[[], None]) -> None:
        with self._lock:
            self._due[key] = (deadline, cut)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()

    def disarm(self, key: int) -> None:
        with self._lock:
            self._due.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                late = [key for key, (deadline, _) in self._due.items() if deadline <= now]
                cuts = [self._due.pop(key)[1] for key in late]
                if not self._due and not cuts:
                    self._thread = None  # nothing to watch: started again by the next request
                    return
            for cut in cuts:
                cut()


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and _zero_q(q[2:]))
    return False


def _zero_q(value: str) -> bool:
    try:
        return float(value) == 0
    except ValueError:
        return False


class _HTTPServer(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` of them: one more is answered 503 and closed at once."""

    daemon_threads = True
    max_connections = 64

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connections = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request, client_address):
        if not self._connections.acquire(blocking=False):
            log.debug("refused a connection from %s: %d connections open", client_address[0], self.max_connections)
            try:
                request.setblocking(False)
                request.send(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request, client_address):
        # A client that resets or times out is routine; anything else is a bug, logged rather than printed to stderr.
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("connection from %s ended: %s", client_address[0], sys.exc_info()[1])
        else:
            log.exception("error while answering %s", client_address[0])


BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 44\r\n"
    b"Retry-After: 5\r\nConnection: close\r\n\r\ntoo many connections, try again in a moment\n"
)


class Server:
    def __init__(self, host: str, port: int, db: Database, config, metrics, state: dict, clock: Clock | None = None):
        server_class = type("_Server", (_HTTPServer,), {"max_connections": int(config["server"]["max_connections"])})
        self.httpd = server_class((host, port), make_handler(db, config, metrics, state, clock))
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), port

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
