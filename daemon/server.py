"""The HTTP side of `wiredesk run`: digests, the HTML page, /healthz and /metrics.

A small threaded server from the standard library: the load is a handful of feed readers polling a few documents,
and every response is cached by its ETag until a story changes, so a heavier framework would buy nothing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from daemon.errors import InputError
from daemon.publish import DigestQuery, render_digest
from storage import Database
from storage.models import Membership, Story

log = logging.getLogger("wiredesk.http")

ROUTES = {"/digest.atom": "atom", "/digest.rss": "rss", "/digest.json": "json", "/": "html", "/index.html": "html"}


def parse_query(qs: str, config) -> DigestQuery:
    d = config["digest"]
    params = parse_qs(qs)

    def number(name, default, cast):
        if name not in params:
            return default
        try:
            value = cast(params[name][-1])
        except ValueError:
            raise InputError(f"query parameter {name} must be a number") from None
        if value < 0:
            raise InputError(f"query parameter {name} must not be negative")
        return value

    return DigestQuery(
        min_outlets=number("min_outlets", d["min_outlets"], int),
        window_days=number("days", d["window_days"], float),
        folders=tuple(params.get("folder", [])) or tuple(d["folders"]),
        feeds=tuple(params.get("feed", [])),
        limit=min(number("limit", d["max_entries"], int), d["max_entries"]) or d["max_entries"],
    )


class DigestCache:
    """Rendered documents, valid while the stories are unchanged (their count and last update)."""

    def __init__(self, db: Database, config):
        self.db = db
        self.config = config
        self.lock = threading.Lock()
        self.items: dict[tuple, tuple[bytes, str, str, object]] = {}

    def version(self) -> tuple:
        with self.db.session() as s:
            return tuple(s.execute(select(func.count(Membership.article_id), func.max(Story.updated_at)).select_from(Story).outerjoin(Membership)).one())

    def get(self, fmt: str, query: DigestQuery):
        version = self.version()
        key = (fmt, query)
        with self.lock:
            hit = self.items.get(key)
            if hit and hit[3] == version:
                return hit[:3]
        body, ctype = render_digest(self.db, self.config, fmt, query)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        with self.lock:
            if len(self.items) > 256:
                self.items.clear()
            self.items[key] = (body, ctype, etag, version)
        return body, ctype, etag


def make_handler(db: Database, config, metrics, state):
    cache = DigestCache(db, config)

    class Handler(BaseHTTPRequestHandler):
        server_version = "wiredesk"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # one debug line per request; access logs are not our job
            log.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            url = urlsplit(self.path)
            try:
                if url.path == "/healthz":
                    return self._health()
                if url.path == "/metrics":
                    return self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
                fmt = ROUTES.get(url.path)
                if fmt is None:
                    return self._send(404, b"not found\n", "text/plain; charset=utf-8")
                query = parse_query(url.query, config)
                body, ctype, etag = cache.get(fmt, query)
            except InputError as exc:
                return self._send(400, f"{exc}\n".encode(), "text/plain; charset=utf-8")
            except Exception as exc:  # the database may be unreachable; say so instead of dropping the connection
                log.warning("cannot serve %s: %s", url.path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                return self._send(503, b"storage unavailable, try again later\n", "text/plain; charset=utf-8", {"Retry-After": "30"})
            version = cache.version()
            last_modified = version[1]
            headers = {"ETag": etag, "Cache-Control": "max-age=60"}
            if last_modified is not None:
                headers["Last-Modified"] = format_datetime(last_modified.replace(microsecond=0), usegmt=True)
            if self._not_modified(etag, last_modified):
                return self._send(304, b"", ctype, headers)
            self._send(200, body, ctype, headers)

        def _not_modified(self, etag: str, last_modified) -> bool:
            inm = self.headers.get("If-None-Match")
            if inm is not None:
                return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
            ims = self.headers.get("If-Modified-Since")
            if ims and last_modified is not None:
                try:
                    return last_modified.replace(microsecond=0) <= parsedate_to_datetime(ims)
                except (TypeError, ValueError):
                    return False
            return False

        def _health(self):
            try:
                with db.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except Exception as exc:
                return self._send(503, f"database unavailable: {str(exc).splitlines()[0]}\n".encode(), "text/plain; charset=utf-8")
            body = f"ok\nlast poll: {state.get('last_poll') or 'none yet'}\n".encode()
            self._send(200, body, "text/plain; charset=utf-8")

    return Handler


class Server:
    def __init__(self, host: str, port: int, db: Database, config, metrics, state: dict):
        self.httpd = ThreadingHTTPServer((host, port), make_handler(db, config, metrics, state))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.httpd.server_address[:2]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
