"""Hostile hubs, hostile callers of the WebSub callback, and what a feed may claim, on loopback.

Every test here reproduces an attack with real servers (hubs, feeds, pages) on loopback addresses and a real SQLite
file, and checks what a user would see: what was stored, what the digest and the API say, what the log says. The
comment above each test says how it fails without its protection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import threading
import time
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa
from helpers import free_port, one_line, resolve_on_loopback, wait_until, wiredesk_cmd
from test_hostile import Site, reply, rows, rss, sqlite_url, write_config  # noqa: F401  (a fixture)

from daemon import websub
from daemon.app import database, make_fetcher
from daemon.config import load


def hub_feed(site: Site, hub: str, title: str = "Hub feed") -> bytes:
    body = rss([("a story", None, "An ordinary story.")], title=title)
    return body.replace(
        b"<channel>", f'<channel><atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="hub" href="{hub}"/>'.encode()
    )


def set_sql(db_url: str, statement: str, **params) -> None:
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def bomb_answer(inflated_mb: int):
    """A hub's answer to the subscription: 202 with a gzip bomb, chunked (no Content-Length to refuse it by). Made
    here, before memory is traced."""
    bomb = gzip.compress(b"\0" * (inflated_mb << 20), compresslevel=9)
    assert len(bomb) < 100_000

    def handler(h):
        h.rfile.read(int(h.headers.get("Content-Length") or 0))
        h.send_response(202)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for at in range(0, len(bomb), 16384):
            piece = bomb[at : at + 16384]
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        h.wfile.write(b"0\r\n\r\n")

    return handler


# Fails without the protection: with Fetcher.post_form as it was (httpx's client.post, which reads and inflates the
# whole answer), the subscription's traced memory peak is above 128 MB (the 64 MB bomb held twice over).
def test_a_hubs_gzip_bomb_answer_is_not_read(sqlite_url, tmp_path, wiredesk):
    with Site() as site, Site("127.0.0.2") as hub:
        answer = bomb_answer(64)
        hub.httpd.RequestHandlerClass.do_POST = lambda h: answer(h)  # type: ignore[attr-defined]
        site.routes["/feed.xml"] = (hub_feed(site, hub.url("/hub")),)
        write_config(tmp_path, [site.url("/feed.xml")], allow_networks=["127.0.0.0/8"], fetch_articles=False)
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
        config = load(str(tmp_path / "wiredesk.toml"))
        db = database(config)

        async def subscribe() -> int:
            fetcher = make_fetcher(config)
            try:
                return await websub.subscribe_due(db, fetcher, "http://127.0.0.1:9/")
            finally:
                await fetcher.aclose()

        tracemalloc.start()
        try:
            asked = asyncio.run(subscribe())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert asked == 1
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes"


def html_bomb() -> bytes:
    page = (
        b"<html><head><title>x</title></head><body><article><p>"
        + b"word " * (8 << 20)
        + b"</p></article></body></html>"
    )
    return gzip.compress(page, compresslevel=9)


# Article pages and discovery pages go through the same capped read as feeds: a bomb stops at fetch.max_bytes, the
# article falls back to the feed's own text and `feeds add` says why it could not read the page. Fails without it:
# with max_bytes = 100000000 in the config, the bombed page's text is stored (source "page").
def test_article_and_discovery_pages_stop_at_max_bytes(sqlite_url, tmp_path, wiredesk):
    cap = 1_000_000
    bomb = (html_bomb(), "text/html", {"Content-Encoding": "gzip"})
    with Site() as site:
        site.routes["/bomb.html"] = bomb
        site.routes["/feed.xml"] = (rss([("bombed page", site.url("/bomb.html"), "FEED-TEXT of the story.")]),)
        write_config(tmp_path, [site.url("/feed.xml")], max_bytes=cap)
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
        assert f"over the {cap} byte limit" in err and site.url("/bomb.html") in err
        ((source, text),) = rows(sqlite_url, "select extracted_from, text from articles")
        assert source == "feed" and "FEED-TEXT" in text
        code, out, err = wiredesk("feeds", "add", site.url("/bomb.html"))
        assert f"over the {cap} byte limit" in out + err


# --- what a feed may claim ------------------------------------------------------------------------------------------


def yonhap_story() -> list[str]:
    from test_hostile import seed_paragraphs

    return seed_paragraphs()


def article_html(title: str, paragraphs: list[str]) -> bytes:
    paras = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        f'<html><head><title>{escape(title)} | Yonhap</title><meta property="og:title" content="{escape(title)}">'
        f"</head><body><article><h1>{escape(title)}</h1>{paras}</article></body></html>"
    ).encode()


def item(title: str, link: str, guid: str, hour: int, text: str) -> str:
    return (
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link><guid>{escape(guid)}</guid>"
        f"<pubDate>Sat, 13 Apr 2024 {hour:02d}:00:00 GMT</pubDate><description>{escape(text)}</description></item>"
    )


def channel(title: str, site: str, items: list[str]) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>{escape(site)}</link><description>d</description>{''.join(items)}</channel></rss>"
    ).encode()


REAL = "Zhao Leji arrives in Pyongyang for talks"
MADE_UP = "MADE-UP: Kim Jong-un resigns, Yonhap reports"
ALSO_MADE_UP = "ALSO MADE-UP: Pyongyang talks collapse"
TITLED_MADE_UP = "TITLE-SPOOF: Zhao Leji cancels the visit"


# Fails without the protection (the publisher taken from the domain of the entry's link, and the entry's title kept
# whatever page the text came from): the blog's articles are shown as by "Yonhap", Yonhap is their publisher in the
# API, and the story's headline is the blog's made-up one, with article fetching on and off.
@pytest.mark.parametrize("fetch_articles", [True, False], ids=["fetching", "not-fetching"])
def test_a_feed_cannot_claim_another_outlet(sqlite_url, tmp_path, wiredesk, monkeypatch, fetch_articles):
    story = yonhap_story()
    text = "\n\n".join(story)
    with Site("127.0.0.2") as yna, Site("127.0.0.3") as blog, Site("127.0.0.4") as namesake:
        resolve_on_loopback(
            monkeypatch,
            {"en.yna.co.kr": "127.0.0.2", "totally-legit-blog.com": "127.0.0.3", "yonhap-news.net": "127.0.0.4"},
        )
        at_yna = f"http://en.yna.co.kr:{yna.port}"
        at_blog = f"http://totally-legit-blog.com:{blog.port}"
        yna.routes["/view/AEN1"] = (article_html(REAL, story), "text/html; charset=utf-8")
        yna.routes["/RSS/news.xml"] = (
            channel("Yonhap", f"{at_yna}/", [item(REAL, f"{at_yna}/view/AEN1", "yna-1", 10, text)]),
        )
        # later than Yonhap's own, so that either would be the headline of the outlet it claims: one link to a page
        # Yonhap never wrote (404: the text is the blog's), one to Yonhap's real page under another URL
        blog.routes["/feed.xml"] = (
            channel(
                "Totally Legit Blog",
                f"{at_yna}/",
                [
                    item(MADE_UP, f"{at_yna}/view/AEN1-exclusive", "blog-1", 12, text),
                    item(ALSO_MADE_UP, f"{at_yna}/view/AEN1?edition=blog", "blog-2", 13, text),
                ],
            ),
        )
        # a feed that takes Yonhap's name as its title, with an earlier item: not preferred over the real Yonhap
        at_namesake = f"http://yonhap-news.net:{namesake.port}"
        namesake.routes["/rss.xml"] = (
            channel("Yonhap", f"{at_namesake}/", [item(TITLED_MADE_UP, f"{at_namesake}/1", "ns-1", 9, text)]),
        )
        write_config(
            tmp_path,
            [f"{at_yna}/RSS/news.xml", f"{at_blog}/feed.xml", f"{at_namesake}/rss.xml"],
            allow_networks=["127.0.0.0/8"],
            fetch_articles=fetch_articles,
        )
        with (tmp_path / "wiredesk.toml").open("a") as fh:
            fh.write('[digest]\npreferred_outlets = ["Yonhap"]\n[outlets]\n"yna.co.kr" = "Yonhap"\n')
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
    config = load(str(tmp_path / "wiredesk.toml"))
    from daemon.publish.select import query_from_config
    from daemon.serve import api

    reply = api.stories(database(config), config, query_from_config(config))
    (record,) = json.loads(reply.body)["stories"]
    assert record["title"] == REAL, record
    assert record["articles"][0]["feeds"] == ["Yonhap"] and record["articles"][0]["publisher"] == "yna.co.kr"
    by_title = {a["title"]: a for a in record["articles"]}
    # Yonhap's own: its feed is on Yonhap's site, and with fetching its text came from Yonhap's page
    yonhap = next(a for a in record["articles"] if a["feeds"] == ["Yonhap"] and a["publisher"] == "yna.co.kr")
    assert yonhap["outlet"] == "Yonhap" and yonhap["publisher"] == "yna.co.kr"
    assert yonhap["publisher_from"] == ("page" if fetch_articles else "feed")
    # the blog's made-up entry: its text is the feed's own, so it is the blog's, whatever its link says
    spoof = by_title[MADE_UP]
    assert spoof["outlet"] == "Totally Legit Blog", spoof
    assert (spoof["publisher"], spoof["publisher_from"]) == ("totally-legit-blog.com", "feed")
    if fetch_articles:
        # the entry linking Yonhap's real page: fetched from Yonhap, shown with Yonhap's own title, not the blog's
        assert ALSO_MADE_UP not in by_title and "Totally Legit Blog" in [
            f for a in record["articles"] for f in a["feeds"]
        ]
    else:
        assert by_title[ALSO_MADE_UP]["publisher"] == "totally-legit-blog.com"
    assert record["outlets"][0] == "Yonhap" and "Totally Legit Blog" in record["outlets"]
    # the digest says which: the blog's line names its own outlet and calls the link a claim
    target = tmp_path / "digest.html"
    code, out, err = wiredesk("digest", "--format", "html", "-o", target)
    assert code == 0, err
    page = target.read_text()
    assert "Totally Legit Blog</a> (text from its feed; the link to yna.co.kr is the feed's claim)" in page, page
    assert f"<h2>{MADE_UP}" not in page


# --- the WebSub callback ------------------------------------------------------------------------------------------


class Recorder:
    """A hub that answers 202 to a subscription request and keeps the form, verifying nothing itself."""

    def __init__(self, site: Site):
        self.forms: list[dict] = []
        recorder = self

        def do_post(h):
            body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
            recorder.forms.append(dict(urllib.parse.parse_qsl(body.decode())))
            reply(h, b"", "text/plain", status=202)

        site.httpd.RequestHandlerClass.do_POST = do_post  # type: ignore[attr-defined]


def serve_in_process(tmp_path, extra: str = ""):
    """`wiredesk run`'s HTTP server on loopback, in this process, on the test's config and SQLite file."""
    from daemon.serve.http import Server
    from daemon.serve.metrics import Metrics

    path = tmp_path / "wiredesk.toml"
    if extra:
        path.write_text(path.read_text() + extra)
    config = load(str(path))
    db = database(config)
    server = Server("127.0.0.1", 0, db, config, Metrics(db), {})
    server.start()
    return server, config, db


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def websub_row(db_url: str) -> tuple:
    ((state, requested, until),) = rows(
        db_url, "select websub_state, websub_requested_at, websub_lease_until from feeds where hub_url is not null"
    )
    if isinstance(requested, str):
        requested, until = (datetime.fromisoformat(t) if t else None for t in (requested, until))
    return state, (until - requested).total_seconds() if until else None


# Fails without the protection: the third party's verification without the token is answered 200 with its challenge
# and moves the lease to 366 days (then 1 s), and its denial ends the subscription.
def test_only_the_hub_asked_can_verify_and_only_once(sqlite_url, tmp_path, wiredesk):
    with Site() as site, Site("127.0.0.2") as hub_site:
        hub = Recorder(hub_site)
        site.routes["/feed.xml"] = (hub_feed(site, hub_site.url("/hub")),)
        write_config(tmp_path, [site.url("/feed.xml")], allow_networks=["127.0.0.0/8"], fetch_articles=False)
        assert wiredesk("poll", "--once")[0] == 0
        server, config, db = serve_in_process(tmp_path, '[server]\nbase_url = "http://127.0.0.1:1/"\n')
        try:
            base = "http://{}:{}".format(*server.address)

            async def subscribe() -> int:
                fetcher = make_fetcher(config)
                try:
                    return await websub.subscribe_due(db, fetcher, base)
                finally:
                    await fetcher.aclose()

            assert asyncio.run(subscribe()) == 1
            (form,) = hub.forms
            topic, callback = form["hub.topic"], form["hub.callback"]
            feed_path = callback.rsplit("/", 1)[0]
            assert callback.startswith(f"{base}/websub/") and len(callback.rsplit("/", 1)[1]) >= 32

            def ask(where: str, **params) -> tuple[int, str]:
                return get(f"{where}?{urllib.parse.urlencode({'hub.topic': topic, **params})}")

            year = str(366 * 86400)
            # anyone who read the feed's id and topic on /api/feeds, without the request's token
            for where in (feed_path, f"{feed_path}/not-the-token"):
                status, body = ask(where, **{"hub.mode": "subscribe", "hub.challenge": "c1", "hub.lease_seconds": year})
                assert status == 404 and "c1" not in body
                assert ask(where, **{"hub.mode": "denied"})[0] == 404
            assert websub_row(sqlite_url) == ("pending", None)
            # the hub it asked, once, with a lease of one second: taken as the shortest lease allowed
            assert ask(callback, **{"hub.mode": "subscribe", "hub.challenge": "c2", "hub.lease_seconds": "1"}) == (
                200,
                "c2",
            )
            assert websub_row(sqlite_url) == ("active", float(websub.stored.MIN_LEASE))
            # the same verification again (a replay, with a longer lease) is refused
            status, body = ask(callback, **{"hub.mode": "subscribe", "hub.challenge": "c3", "hub.lease_seconds": year})
            assert status == 404 and "c3" not in body
            assert websub_row(sqlite_url) == ("active", float(websub.stored.MIN_LEASE))
            # a denial ends the subscription its callback names, and that one only
            assert ask(callback, **{"hub.mode": "denied", "hub.reason": "no"})[0] == 200
            assert websub_row(sqlite_url)[0] == "denied"
        finally:
            server.stop()


def post_head(port: int, path: str | bytes, length: int, wait: float = 5.0, method: bytes = b"POST") -> bytes:
    """Send a request's headers announcing ``length`` bytes and none of the body; what the server answers meanwhile."""
    raw = path if isinstance(path, bytes) else path.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(
            method + b" " + raw + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/rss+xml\r\n"
            b"Content-Length: %d\r\n\r\n" % length
        )
        try:
            return s.recv(4096)
        except TimeoutError:
            return b""


# Fails without the protection: the server waits for the 10 MiB body before it looks at the route or the feed (no
# answer within 5 s), a twentieth idle connection gets a thread of its own, and a request dripped a byte at a time is
# served for as long as it drips.
def test_uploads_are_refused_before_their_body_and_connections_are_capped(sqlite_url, tmp_path):
    write_config(tmp_path, [], fetch_articles=False)
    big = 10 << 20
    server, config, db = serve_in_process(tmp_path, "[server]\nmax_connections = 8\nrequest_timeout = 2.0\n")
    try:
        port = server.address[1]
        # WebSub off: refused at once, the body never read
        for path in ("/websub/1", "/websub/1/token", b"/websub/\xb2", "/other"):
            answer = post_head(port, path, big)
            assert answer.startswith((b"HTTP/1.1 404", b"HTTP/1.1 405")), (path, answer[:80])
    finally:
        server.stop()
    write_config(tmp_path, [], fetch_articles=False)
    server, config, db = serve_in_process(
        tmp_path, '[server]\nbase_url = "http://127.0.0.1:1/"\nmax_connections = 8\nrequest_timeout = 2.0\n'
    )
    try:
        port = server.address[1]
        # WebSub on, no such subscription: 410 before the body; over fetch.max_bytes: 413 before the body
        assert post_head(port, "/websub/12345/token", big).startswith(b"HTTP/1.1 410")
        assert post_head(port, "/websub/12345/token", 1 << 30).startswith(b"HTTP/1.1 413")
        assert post_head(port, b"/websub/\xb2", 0, method=b"GET").startswith(b"HTTP/1.1 404")
        assert post_head(port, b"/websub/\xb2", 10).startswith(b"HTTP/1.1 404")
        # eight connections held open, silent: the ninth is answered 503 at once and closed
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
                assert extra.recv(4096).startswith(b"HTTP/1.1 503")
        finally:
            for s in held:
                s.close()
        # a request dripped a byte at a time is cut after request_timeout
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            started = time.monotonic()
            cut = False
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
                try:
                    slow.sendall(bytes([byte]))
                except OSError:
                    cut = True
                    break
                time.sleep(0.05)
                if time.monotonic() - started > 8:
                    break
            if not cut:
                slow.settimeout(1)
                with contextlib.suppress(TimeoutError, OSError):
                    cut = slow.recv(1) == b""
            assert cut and time.monotonic() - started < 8
        assert wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 10)
    finally:
        server.stop()


# Fails without the protection: `wiredesk run` asks the hubs one after another at the end of its poll, each for up to
# 30 s, so the queued feed waits two minutes for its poll (and three of the four hubs wait for their turn).
def test_silent_hubs_do_not_hold_up_polling(sqlite_url, tmp_path):
    from test_service import start_run

    silent: list[str] = []
    release = threading.Event()
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(Site())
        hubs = [stack.enter_context(Site(f"127.0.0.{3 + i}")) for i in range(4)]
        stack.callback(release.set)

        def never_answer(h):
            silent.append(h.path)
            release.wait(120)

        for i, hub in enumerate(hubs):
            hub.httpd.RequestHandlerClass.do_POST = never_answer  # type: ignore[attr-defined]
            site.routes[f"/hubbed{i}.xml"] = (hub_feed(site, hub.url("/hub")),)
        site.routes["/plain.xml"] = (rss([("plain story", None, "An ordinary story.")]),)
        port = free_port()
        feeds = [site.url(f"/hubbed{i}.xml") for i in range(4)] + [site.url("/plain.xml")]
        write_config(tmp_path, feeds, allow_networks=["127.0.0.0/8"], fetch_articles=False)
        path = tmp_path / "wiredesk.toml"
        path.write_text(
            path.read_text().replace("parse_workers = 1\n", "parse_workers = 1\ntick_seconds = 0.5\n")
            + f'[server]\nport = {port}\nbase_url = "http://127.0.0.1:{port}/"\n'
        )
        proc = start_run(tmp_path, {"WIREDESK_DATABASE_URL": sqlite_url})
        try:
            assert wait_until(lambda: site.hits["/plain.xml"] >= 1, 60), "the first poll never came"
            # the hubs are asked beside polling, together: all four are held at once
            assert wait_until(lambda: len(silent) == 4, 20), f"{len(silent)} hubs asked"
            before = site.hits["/plain.xml"]
            queued = subprocess.run(
                [*wiredesk_cmd(), "feeds", "poll", site.url("/plain.xml")],
                cwd=tmp_path,
                env={**os.environ, "WIREDESK_DATABASE_URL": sqlite_url},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert queued.returncode == 0, queued.stderr
            assert wait_until(lambda: site.hits["/plain.xml"] > before, 8), "the queued poll waited for the hubs"
        finally:
            release.set()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


# --- cookies --------------------------------------------------------------------------------------------------------


# Fails without the protection (one cookie jar for the whole fetcher, kept for the life of the process): the feed on
# b.example.com is sent the Domain=.example.com cookies that a.example.com set, and a.example.com its own again, a
# larger Cookie header with every fetch; the cookie set before a redirect to another host goes along.
def test_cookies_stay_with_one_fetch_and_one_host(sqlite_url, tmp_path, monkeypatch):
    from daemon.fetch.client import Fetcher, Limits

    sent: dict[str, list[str | None]] = {}
    with Site() as site:
        resolve_on_loopback(monkeypatch, {"a.example.com": "127.0.0.1", "b.example.com": "127.0.0.1"})
        at_a, at_b = f"http://a.example.com:{site.port}", f"http://b.example.com:{site.port}"
        feed = rss([("story", None, "An ordinary story.")])
        count = iter(range(1000))

        def crumbs(path: str, *, then: str | None = None, need: str | None = None):
            def handler(h):
                sent.setdefault(path, []).append(h.headers.get("Cookie"))
                if need and need not in (h.headers.get("Cookie") or ""):
                    return reply(h, b"cookie check failed", "text/plain", status=403)
                headers = {"Set-Cookie": f"c{next(count)}={'x' * 900}; Domain=.example.com; Path=/"}
                if then:
                    h.send_response(302)
                    h.send_header("Location", then)
                    h.send_header("Set-Cookie", "consent=yes; Path=/")
                    h.send_header("Content-Length", "0")
                    h.end_headers()
                    return
                reply(h, feed, headers=headers)

            return handler

        site.routes["/a.xml"] = crumbs("/a.xml")
        site.routes["/b.xml"] = crumbs("/b.xml")
        site.routes["/check"] = crumbs("/check", then=f"{at_a}/checked.xml")
        site.routes["/checked.xml"] = crumbs("/checked.xml", need="consent=yes")
        site.routes["/away"] = crumbs("/away", then=f"{at_b}/b.xml")

        async def polls() -> list:
            fetcher = Fetcher(Limits(timeout=10), allow_networks=["127.0.0.0/8"])
            try:
                results = []
                for _ in range(5):
                    for url in (f"{at_a}/a.xml", f"{at_b}/b.xml", f"{at_a}/check", f"{at_a}/away"):
                        results.append(await fetcher.fetch(url))
                return results
            finally:
                await fetcher.aclose()

        results = asyncio.run(polls())
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    # no cookie is kept from one fetch to the next, nor sent to another host or site
    assert set(sent["/a.xml"]) == {None} and set(sent["/b.xml"]) == {None}
    # within one fetch, a cookie set on the way is sent on a redirect to the same host
    assert sent["/checked.xml"] == ["consent=yes"] * 5


def atom(title: str, updated: str, hub: str | None) -> bytes:
    link = f'<link rel="hub" href="{hub}"/>' if hub else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Pushed</title>'
        f"<id>urn:x:feed</id><updated>{updated}</updated>{link}<entry><id>urn:x:1</id><title>{escape(title)}</title>"
        f"<updated>{updated}</updated><published>2024-04-13T10:00:00Z</published>"
        "<summary>The harbour gates failed at dawn, the port authority said.</summary></entry></feed>"
    ).encode()


# Fails without the protection: the push without a hub link erases the feed's hub (so the hub's next pushes get
# 410), and the older body pushed again undoes the corrected title.
def test_a_push_neither_moves_the_hub_nor_undoes_a_newer_version(sqlite_url, tmp_path, wiredesk):
    from daemon.app import pipeline_settings
    from daemon.pipeline import Pipeline

    with Site() as site:
        hub = "http://127.0.0.2:9/hub"
        site.routes["/feed.atom"] = (atom("Three dead", "2024-04-13T10:00:00Z", hub), "application/atom+xml")
        write_config(tmp_path, [site.url("/feed.atom")], fetch_articles=False)
        assert wiredesk("poll", "--once")[0] == 0
    config = load(str(tmp_path / "wiredesk.toml"))
    db = database(config)
    ((feed_id, stored_hub),) = rows(sqlite_url, "select id, hub_url from feeds")
    assert stored_hub == hub

    async def push(body: bytes) -> None:
        fetcher = make_fetcher(config)
        try:
            await Pipeline(db, fetcher, pipeline_settings(config)).take_push(feed_id, body, {})
        finally:
            await fetcher.aclose()

    asyncio.run(push(atom("Five dead", "2024-04-13T12:00:00Z", None)))
    assert rows(sqlite_url, "select title from entries") == [("Five dead",)]
    assert rows(sqlite_url, "select hub_url from feeds") == [(hub,)]
    asyncio.run(push(atom("Three dead", "2024-04-13T10:00:00Z", "http://127.0.0.3:9/other-hub")))
    assert rows(sqlite_url, "select title from entries") == [("Five dead",)]
    assert rows(sqlite_url, "select hub_url from feeds") == [(hub,)]


# --- credentials in feed URLs -------------------------------------------------------------------------------------


# Fails without the protection: /api/feeds, `feeds list` (table and --json), the poll's errors and the stored error
# show "reader:s3cret@" as the feed's URL was written.
def test_credentials_in_feed_urls_are_never_shown(sqlite_url, tmp_path, wiredesk):
    from daemon.serve import api

    with Site() as site:
        site.routes["/ok.xml"] = (rss([("a story", None, "An ordinary story.")]),)
        good = f"http://reader:s3cret@127.0.0.1:{site.port}/ok.xml"
        broken = f"http://token-abc123@127.0.0.1:{site.port}/missing.xml"
        write_config(tmp_path, [good, broken], fetch_articles=False)
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
    shown = [out, err]
    shown.append(wiredesk("feeds", "list")[1])
    shown.append(wiredesk("feeds", "list", "--json")[1])
    config = load(str(tmp_path / "wiredesk.toml"))
    shown.append(api.feeds(database(config)).body.decode())
    everything = "\n".join(shown)
    assert "s3cret" not in everything and "token-abc123" not in everything and "reader:" not in everything
    assert f"http://***@127.0.0.1:{site.port}/missing.xml" in everything  # the feed is still named
    listed = json.loads(api.feeds(database(config)).body)["feeds"]
    assert {f["url"] for f in listed} == {
        f"http://***@127.0.0.1:{site.port}/ok.xml",
        f"http://***@127.0.0.1:{site.port}/missing.xml",
    }
    # the export is a backup of the subscriptions: it keeps them
    assert good in wiredesk("feeds", "export")[1]


# --- the service's log --------------------------------------------------------------------------------------------


# Fails without the fix: APScheduler logs a WARNING "maximum number of running instances reached" at every tick of a
# poll longer than tick_seconds (here about six of them).
def test_a_long_poll_is_said_once_at_info(sqlite_url, tmp_path):
    from test_service import start_run

    def slow(h):
        time.sleep(3)
        reply(h, rss([("slow story", None, "An ordinary story.")]))

    with Site() as site:
        site.routes["/slow.xml"] = slow
        port = free_port()
        write_config(tmp_path, [site.url("/slow.xml")], fetch_articles=False)
        path = tmp_path / "wiredesk.toml"
        path.write_text(
            path.read_text().replace("parse_workers = 1\n", "parse_workers = 1\ntick_seconds = 0.5\n")
            + f'[server]\nport = {port}\n[log]\nlevel = "INFO"\n'
        )
        proc = start_run(tmp_path, {"WIREDESK_DATABASE_URL": sqlite_url})
        try:

            def stored() -> bool:
                try:
                    return bool(rows(sqlite_url, "select 1 from entries"))
                except sa.exc.OperationalError:  # not created yet
                    return False

            assert wait_until(stored, 60), "the poll never ended"
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "maximum number of running instances" not in err, err
    assert err.count("a poll is still running; the next one starts when it ends") == 1, err
    assert "WARNING" not in err, err


# --- the access token ---------------------------------------------------------------------------------------------


def ask_with(url: str, bearer: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"} if bearer else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


# Without [server] token every route answers whoever reaches the port (the first assertions below fail).
def test_the_access_token_guards_every_route_but_healthz(sqlite_url, tmp_path, wiredesk):
    token = "t0ken-" + "a" * 26
    write_config(tmp_path, [], fetch_articles=False)
    assert wiredesk("init")[0] == 0
    server, config, db = serve_in_process(tmp_path, f'[server]\ntoken = "{token}"\n')
    try:
        base = "http://{}:{}".format(*server.address)
        guarded = ["/", "/digest.atom", "/digest.json?limit=5", "/api/stories", "/api/feeds", "/story/x", "/metrics"]
        for path in guarded:
            assert ask_with(base + path) == 401, path
            assert ask_with(base + path, bearer="t0ken-" + "b" * 26) == 401, path
            joined = "&" if "?" in path else "?"
            assert ask_with(f"{base}{path}{joined}token=wrong") == 401, path
            assert ask_with(f"{base}{path}{joined}token={token}") in (200, 404), path
            assert ask_with(base + path, bearer=token) in (200, 404), path
        assert ask_with(base + "/healthz") == 200
        assert ask_with(f"{base}/digest.atom?token={token}") == 200  # the token is not an unknown digest parameter
        assert post_head(server.address[1], "/websub/1/x", 10).startswith(b"HTTP/1.1 404")  # hubs: no token
    finally:
        server.stop()
    write_config(tmp_path, [], fetch_articles=False)
    server, config, db = serve_in_process(tmp_path, f'[server]\ntoken = "{token}"\nmetrics_open = true\n')
    try:
        base = "http://{}:{}".format(*server.address)
        assert ask_with(base + "/metrics") == 200 and ask_with(base + "/digest.atom") == 401
    finally:
        server.stop()
    # a token too short to be one is refused with the key named
    (tmp_path / "short.toml").write_text('[server]\ntoken = "abc"\n')
    code, out, err = wiredesk("--config", tmp_path / "short.toml", "stories")
    assert code == 2 and "server.token" in one_line(err)


# Fails without the protection: the secret is sent to the plain-http hub (readable by anyone on the way), and a push
# signed with it is stored as the feed's content.
def test_no_secret_goes_to_a_plain_http_hub_and_its_pushes_are_only_a_signal(
    sqlite_url, tmp_path, wiredesk, monkeypatch
):
    with Site() as site, Site("127.0.0.2") as hub_site:
        resolve_on_loopback(monkeypatch, {"hub.example.com": "127.0.0.2"})
        hub = Recorder(hub_site)
        site.routes["/feed.xml"] = (hub_feed(site, f"http://hub.example.com:{hub_site.port}/hub"),)
        write_config(tmp_path, [site.url("/feed.xml")], allow_networks=["127.0.0.0/8"], fetch_articles=False)
        assert wiredesk("poll", "--once")[0] == 0
        server, config, db = serve_in_process(tmp_path, '[server]\nbase_url = "http://127.0.0.1:1/"\n')
        try:
            base = "http://{}:{}".format(*server.address)

            async def subscribe() -> int:
                fetcher = make_fetcher(config)
                try:
                    return await websub.subscribe_due(db, fetcher, base)
                finally:
                    await fetcher.aclose()

            assert asyncio.run(subscribe()) == 1
            (form,) = hub.forms
            assert "hub.secret" not in form
            query = urllib.parse.urlencode(
                {
                    "hub.mode": "subscribe",
                    "hub.topic": form["hub.topic"],
                    "hub.challenge": "c",
                    "hub.lease_seconds": 86400,
                }
            )
            assert get(f"{form['hub.callback']}?{query}") == (200, "c")
            ((secret,),) = rows(sqlite_url, "select websub_secret from feeds")
            set_sql(sqlite_url, "update feeds set next_poll_at = :later", later=datetime(2999, 1, 1))
            forged = rss([("FORGED entry", None, "Never stored.")])
            signature = "sha256=" + hmac.new(secret.encode(), forged, hashlib.sha256).hexdigest()
            request = urllib.request.Request(
                form["hub.callback"], data=forged, headers={"X-Hub-Signature": signature}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as r:
                assert r.status == 202
            assert rows(sqlite_url, "select title from entries where title like 'FORGED%'") == []
            ((due,),) = rows(sqlite_url, "select next_poll_at from feeds")
            assert not str(due).startswith("2999"), due  # the push made the feed due: polled from its own URL
        finally:
            server.stop()
    assert (
        websub.signs("https://hub.example.com/")
        and websub.signs("http://127.0.0.1:8/")
        and websub.signs("http://localhost/")
    )
    assert not websub.signs("http://hub.example.com/") and not websub.signs("ftp://127.0.0.1/")
