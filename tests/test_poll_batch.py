"""Stage 1 writes several feeds per transaction: the outcome is the same as one feed at a time, and one feed's failure
stays that feed's. The fetcher keeps connections alive across 304s and small error pages."""

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from daemon.feeds import add_feed
from daemon.fetch.client import Fetcher, Limits, Validators
from daemon.pipeline import Pipeline, PipelineSettings
from storage import open_database


def item(guid, link, title, text, date="Sat, 13 Apr 2024 10:00:00 GMT"):
    g = f"<guid>{guid}</guid>" if guid else ""
    return f"<item><title>{title}</title><link>{link}</link>{g}<pubDate>{date}</pubDate><description>{text}</description></item>"


def rss(name, items):
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title><link>http://{name}.example/</link>'
        f"<description>d</description>{''.join(items)}</channel></rss>"
    )


# What each feed answers in each round: (status, body).
ROUNDS = [
    {
        "a": (
            200,
            rss(
                "a",
                [
                    item("g1", "http://a.example/1", "A one", "first"),
                    item("g2", "http://a.example/2", "A two", "second"),
                    item("g3", "http://a.example/3?utm_source=x", "A three", "third"),
                ],
            ),
        ),
        "b": (200, rss("b", [item(None, "http://b.example/x?utm_medium=y&amp;id=5", "B x", "bx")])),
        "c": (500, "oops"),
        "d": (
            200,
            rss(
                "d",
                [item("dup", "http://d.example/1", "D v1", "one"), item("dup", "http://d.example/1", "D v2", "two")],
            ),
        ),
    },
    {
        # a: g2 corrected, g3 republished under a new GUID (same link without tracking), g5 new
        "a": (
            200,
            rss(
                "a",
                [
                    item("g1", "http://a.example/1", "A one", "first"),
                    item("g2", "http://a.example/2", "A two corrected", "second"),
                    item("g4", "http://a.example/3", "A three", "third"),
                    item("g5", "http://a.example/5", "A five", "fifth"),
                ],
            ),
        ),
        "b": (304, None),
        "c": (200, rss("c", [item("c1", "http://c.example/1", "C one", "c")])),
        "d": (200, rss("d", [item("dup", "http://d.example/1", "D v3", "three")])),
    },
]


def run_rounds(db_url, rounds, monkeypatch=None):
    db = open_database(db_url)
    for n in "abcd":
        add_feed(db, f"http://{n}.example/feed.xml")
    state = {"round": 0}

    def handler(request):
        status, body = rounds[state["round"]][request.url.host.split(".")[0]]
        if status == 304:
            return httpx.Response(304, headers={"etag": '"e"'})
        return httpx.Response(
            status, headers={"content-type": "application/rss+xml", "etag": '"e"'}, content=body.encode()
        )

    async def go():
        fetcher = Fetcher(transport=httpx.MockTransport(handler))
        pipeline = Pipeline(db, fetcher, PipelineSettings(fetch_articles=False))
        reports = []
        for r in range(len(rounds)):
            state["round"] = r
            reports.append(await pipeline.poll(pipeline.due_feeds(all_feeds=True)))
        await fetcher.aclose()
        return reports

    reports = asyncio.run(go())
    with db.engine.connect() as c:
        entries = sorted(
            c.execute(
                sa.text("select f.url, e.identity, e.url, e.title from entries e join feeds f on f.id = e.feed_id")
            ).all()
        )
        articles = dict(c.execute(sa.text("select url, title from articles")).all())
    db.dispose()
    return reports, entries, articles


def counts(report):
    return {
        f.feed_url.split("//")[1][0]: (f.ok, f.new_entries, f.changed_entries, f.not_modified) for f in report.feeds
    }


def test_entries_merge_as_they_did_one_feed_at_a_time(db_url):
    (first, second), entries, articles = run_rounds(db_url, ROUNDS)
    assert counts(first) == {
        "a": (True, 3, 0, False),
        "b": (True, 1, 0, False),
        "c": (False, 0, 0, False),
        "d": (True, 1, 1, False),
    }  # d lists one entry twice: stored once, the second a change
    assert counts(second) == {
        "a": (True, 1, 2, False),
        "b": (True, 0, 0, True),
        "c": (True, 1, 0, False),
        "d": (True, 0, 1, False),
    }
    assert entries == [
        ("http://a.example/feed.xml", "guid:g1", "http://a.example/1", "A one"),
        ("http://a.example/feed.xml", "guid:g2", "http://a.example/2", "A two corrected"),
        ("http://a.example/feed.xml", "guid:g4", "http://a.example/3", "A three"),  # renamed, not duplicated
        ("http://a.example/feed.xml", "guid:g5", "http://a.example/5", "A five"),
        ("http://b.example/feed.xml", "url:http://b.example/x?id=5", "http://b.example/x?id=5", "B x"),
        ("http://c.example/feed.xml", "guid:c1", "http://c.example/1", "C one"),
        ("http://d.example/feed.xml", "guid:dup", "http://d.example/1", "D v3"),
    ]
    # the corrected headline reaches the article made in the first round
    assert articles["http://a.example/2"] == "A two corrected"
    assert articles["http://d.example/1"] == "D v3"


def test_a_feed_whose_update_fails_costs_only_itself(db_url, monkeypatch):
    original = Pipeline._update_feed

    def failing(self, feed, item, *args):
        if feed.url.startswith("http://c."):
            raise OperationalError("UPDATE feeds", {}, Exception("database or disk is full"))
        return original(self, feed, item, *args)

    monkeypatch.setattr(Pipeline, "_update_feed", failing)
    rounds = [
        {
            name: (200, rss(name, [item(f"{name}1", f"http://{name}.example/1", f"{name} one", "text")]))
            for name in "abcd"
        }
    ]
    (report,), entries, _ = run_rounds(db_url, rounds)
    outcome = {f.feed_url.split("//")[1][0]: f for f in report.feeds}
    assert {n: outcome[n].ok for n in "abcd"} == {"a": True, "b": True, "c": False, "d": True}
    assert outcome["c"].error_kind == "storage" and "database or disk is full" in outcome["c"].error
    assert sorted({url for url, *_ in entries}) == [f"http://{n}.example/feed.xml" for n in "abd"]


class _Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: set = set()

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).connections.add(self.client_address)
        if self.path == "/missing":
            body = b"not here"
            self.send_response(404)
        elif self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.end_headers()
            return
        else:
            body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
            self.send_response(200)
            self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def counting_server():
    _Counting.connections = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Counting
    finally:
        server.shutdown()
        server.server_close()


def test_304s_and_short_error_pages_keep_the_connection(counting_server):
    base, handler = counting_server

    async def go():
        async with Fetcher(Limits(max_per_host=1), allow_networks=["127.0.0.0/8"]) as fetcher:
            results = [await fetcher.fetch(f"{base}/feed.xml")]
            for _ in range(5):
                results.append(await fetcher.fetch(f"{base}/feed.xml", Validators(results[0].etag)))
                results.append(await fetcher.fetch(f"{base}/missing"))
            return results

    results = asyncio.run(go())
    assert results[0].ok and results[0].etag == '"v1"'
    assert all(r.not_modified for r in results[1::2])
    assert all(r.error_kind == "http_error" and r.status == 404 for r in results[2::2])
    assert len(handler.connections) == 1, "every request after the first reused the first connection"
