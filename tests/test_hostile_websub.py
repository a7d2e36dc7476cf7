"""Hostile hubs, hostile callers of the WebSub callback, and what a feed may claim, on loopback.

Every test here reproduces an attack with real servers (hubs, feeds, pages) on loopback addresses and a real SQLite
file, and checks what a user would see: what was stored, what the digest and the API say, what the log says. The
comment above each test says how it fails without its protection.
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc

import sqlalchemy as sa
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
