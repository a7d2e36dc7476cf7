"""The digest over HTTP, against real servers on loopback, over a database the seed corpus was replayed into.

Most tests start the Server of daemon/serve/http.py in-process on port 0 over a copy of one replayed database; the
/metrics test runs `wiredesk run` itself, polling a loopback farm where one feed is broken. What a filter must keep
is worked out from the stored stories, not written down, so these tests check the HTTP layer whatever the engine
decides about the seed corpus.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlencode

import feedparser
import pytest
from conftest import copy_database
from helpers import stderr_on_failure, wait_until, wiredesk_cmd
from prometheus_client import CONTENT_TYPE_LATEST

WIRE_ORIGINAL = "000_3324a5df7957fe74"
DIGESTS = {
    "/digest.atom": "application/atom+xml; charset=utf-8",
    "/digest.rss": "application/rss+xml; charset=utf-8",
    "/digest.json": "application/feed+json; charset=utf-8",
    "/": "text/html; charset=utf-8",
    "/index.html": "text/html; charset=utf-8",
    "/digest.html": "text/html; charset=utf-8",
}
# no time window: the seeds' news is from April 2024
BASE_CONFIG = '[digest]\nbase_url = "http://digest.test/"\nwindow_days = 0\n'


def isolated_env(home: Path, db_url: str) -> dict:
    return dict(
        os.environ, WIREDESK_DATABASE_URL=db_url, XDG_CONFIG_HOME=str(home / "c"), XDG_DATA_HOME=str(home / "d")
    )


@dataclass
class Served:
    url: str
    host: str
    port: int
    db: object
    config: object

    def get(self, path: str, headers: dict | None = None, method: str = "GET"):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def digest(self, **params) -> dict:
        status, _, body = self.get("/digest.json?" + urlencode(params, doseq=True))
        assert status == 200, body
        return json.loads(body)


def start_server(db_url: str, config_text: str = BASE_CONFIG, clock=None):
    from daemon import config as config_mod
    from daemon.serve.http import Server
    from daemon.serve.metrics import Metrics
    from storage import Database

    config = config_mod.parse(config_text)
    db = Database(db_url)
    server = Server("127.0.0.1", 0, db, config, Metrics(db), {}, clock=clock)
    server.start()
    host, port = server.address
    return server, Served(f"http://{host}:{port}", host, port, db, config)


@pytest.fixture
def serve(seeded_url):
    """Start servers over the replayed seeds."""
    running = []

    def start(config_text: str = BASE_CONFIG, clock=None) -> Served:
        server, served = start_server(seeded_url, config_text, clock)
        running.append((server, served))
        return served

    yield start
    for server, served in running:
        server.stop()
        served.db.engine.dispose()


@pytest.fixture
def served(serve) -> Served:
    return serve()


@pytest.fixture
def lite(seeds_db, tmp_path) -> Served:
    """A server over an SQLite copy of the seeds, for what does not depend on the database behind it."""
    copy_database(seeds_db, tmp_path / "lite.db")
    server, served = start_server(f"sqlite:///{tmp_path / 'lite.db'}")
    yield served
    server.stop()
    served.db.engine.dispose()


def stored_stories(db):
    from storage.stories import load_stories

    return load_stories(db)


def ids(digest: dict) -> list[str]:
    return [item["id"] for item in digest["items"]]


# ---- endpoints ---------------------------------------------------------------------------------------------------


def test_every_endpoint_answers_with_its_content_type(served):
    stories = stored_stories(served.db)
    for path, ctype in DIGESTS.items():
        status, headers, body = served.get(path)
        assert status == 200, (path, body)
        assert headers["content-type"] == ctype, path
        assert int(headers["content-length"]) == len(body) > 0
        assert headers["x-content-type-options"] == "nosniff"
        if ctype.startswith("text/html"):
            assert "default-src 'none'" in headers["content-security-policy"]
    status, headers, body = served.get("/healthz")
    assert status == 200 and headers["content-type"].startswith("text/plain") and body.startswith(b"ok\n")
    status, headers, body = served.get("/metrics")
    assert status == 200 and headers["content-type"] == CONTENT_TYPE_LATEST
    assert f"wiredesk_stories {float(len(stories))}".encode() in body

    # the feeds parse cleanly and carry one entry per stored story, the primary source's link first
    for path in ("/digest.atom", "/digest.rss"):
        parsed = feedparser.parse(served.get(path)[2])
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        assert {e.id for e in parsed.entries} == {s.uuid for s in stories}
    digest = served.digest()
    assert digest["version"] == "https://jsonfeed.org/version/1.1"
    assert set(ids(digest)) == {s.uuid for s in stories}
    seed_story = next(s for s in stories if WIRE_ORIGINAL in [m.key for m in s.members])
    item = next(i for i in digest["items"] if i["id"] == seed_story.uuid)
    assert {s["id"] for s in item["_wiredesk"]["sources"]} == {m.key for m in seed_story.members}
    page = served.get("/")[2].decode()
    assert "<!DOCTYPE html>" in page and 'href="http://digest.test/digest.atom"' in page


def test_head_sends_the_headers_without_a_body(lite):
    status, full_headers, body = lite.get("/digest.atom")
    status_head, headers, head_body = lite.get("/digest.atom", method="HEAD")
    assert status_head == 200 and head_body == b""
    assert headers["etag"] == full_headers["etag"] and headers["content-length"] == str(len(body))


def test_unknown_path_and_method_are_one_line_errors(lite):
    status, headers, body = lite.get("/digest.xml")
    assert status == 404 and headers["content-type"].startswith("text/plain")
    assert body.decode().count("\n") == 1 and "/digest.atom" in body.decode()
    status, headers, body = lite.get("/digest.atom", method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD" and body.decode().count("\n") == 1


def test_wiredesk_digest_writes_the_documents_the_server_serves(served, wiredesk, tmp_path):
    (tmp_path / "wiredesk.toml").write_text(BASE_CONFIG)
    for fmt, path in (("atom", "/digest.atom"), ("rss", "/digest.rss"), ("json", "/digest.json"), ("html", "/")):
        out = tmp_path / f"digest.{fmt}"
        code, _, err = wiredesk("digest", "--format", fmt, "-o", out)
        assert code == 0, err
        assert out.read_bytes() == served.get(path)[2], fmt
    code, _, err = wiredesk("digest", "--format", "json", "--min-outlets", "2", "-o", tmp_path / "two.json")
    assert code == 0, err
    assert (tmp_path / "two.json").read_bytes() == served.get("/digest.json?min_outlets=2")[2]


# ---- validators and conditional requests -------------------------------------------------------------------------


def test_every_digest_has_validators_and_answers_conditional_requests(served):
    newest = max(s.updated_at for s in stored_stories(served.db))
    for path in DIGESTS:
        status, headers, body = served.get(path)
        etag, last_modified = headers["etag"], headers["last-modified"]
        assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
        assert parsedate_to_datetime(last_modified) == newest.replace(microsecond=0)

        status, h304, body304 = served.get(path, {"If-None-Match": etag})
        assert status == 304 and body304 == b"" and h304["etag"] == etag and "content-length" not in h304
        assert served.get(path, {"If-None-Match": f'"other", W/{etag}'})[0] == 304  # weak comparison, a list
        assert served.get(path, {"If-None-Match": '"something-else"'})[0] == 200
        assert served.get(path, {"If-None-Match": "*"})[0] == 304

        assert served.get(path, {"If-Modified-Since": last_modified})[0] == 304
        later = format_datetime(newest + timedelta(hours=1), usegmt=True)
        assert served.get(path, {"If-Modified-Since": later})[0] == 304
        earlier = format_datetime(newest - timedelta(seconds=2), usegmt=True)
        status, _, again = served.get(path, {"If-Modified-Since": earlier})
        assert status == 200 and again == body
        assert served.get(path, {"If-Modified-Since": "not a date"})[0] == 200
        # If-None-Match decides when both are given
        assert served.get(path, {"If-None-Match": '"x"', "If-Modified-Since": last_modified})[0] == 200


def test_each_query_is_its_own_document(lite):
    etags = {lite.get(p)[1]["etag"] for p in ("/digest.atom", "/digest.rss", "/digest.json", "/")}
    assert len(etags) == 4
    all_etag = lite.get("/digest.json")[1]["etag"]
    two_etag = lite.get("/digest.json?min_outlets=2")[1]["etag"]
    assert all_etag != two_etag
    assert lite.get("/digest.json?min_outlets=2", {"If-None-Match": all_etag})[0] == 200


def test_gzip_for_readers_that_accept_it(lite):
    status, plain_headers, plain = lite.get("/digest.atom")
    status, headers, body = lite.get("/digest.atom", {"Accept-Encoding": "br;q=1, gzip;q=0.8"})
    assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == plain and len(body) < len(plain)
    assert headers["etag"] != plain_headers["etag"]  # two representations, two strong validators
    assert lite.get("/digest.atom", {"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]})[0] == 304
    assert "content-encoding" not in lite.get("/digest.atom", {"Accept-Encoding": "gzip;q=0"})[1]


def write_corpus(
    folder: Path, title: str, paragraphs: list[str], published: str = "Mon, 15 Apr 2024 09:00:00 GMT"
) -> Path:
    """A one-feed, one-article fixture corpus in the manifest format that `wiredesk replay` reads."""
    folder.mkdir(parents=True)
    feed_url, page_url = "https://library.example/feed.xml", "https://library.example/news/reopening.html"
    (folder / "feed.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>City Library News</title>'
        f"<link>https://library.example/</link><description>news</description><item><title>{title}</title>"
        f"<link>{page_url}</link><guid>{page_url}</guid><pubDate>{published}</pubDate>"
        f"<description>{paragraphs[0]}</description></item></channel></rss>"
    )
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    (folder / "page.html").write_text(
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>{body}</article></body></html>"
    )
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "feeds": [{"outlet": "City Library News", "url": feed_url, "file": "feed.xml", "folder": "Local"}],
                "articles": [
                    {"id": "900_library", "url": page_url, "page": "page.html", "kind": "control", "story": "library"}
                ],
            }
        )
    )
    return folder


LIBRARY = [
    "The central public library of Riverton reopened its doors on Monday after an eighteen-month renovation that "
    "added a rooftop reading garden, a children's wing and a workshop for repairing bicycles and small appliances.",
    "City librarian Marta Okonkwo said the number of study desks had doubled and that the building now stays open "
    "until ten in the evening on weekdays, a change students had requested in a survey two years ago.",
    "The renovation cost was covered by a municipal bond approved by voters, with a smaller share coming from a "
    "regional fund for energy efficiency that paid for new windows, insulation and solar panels on the roof.",
    "Local historians welcomed the restored reading room, whose painted ceiling had been hidden under plaster "
    "since the nineteen-sixties and was uncovered by chance when workers removed a leaking air duct.",
]


class SteppedClock:
    """The real clocks, moved on by the test when it says so (the server's time without waiting for it)."""

    def __init__(self):
        self.ahead = 0.0

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.ahead)

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    def advance(self, seconds: float) -> None:
        self.ahead += seconds


def test_a_new_story_changes_the_etag_and_last_modified(serve, wiredesk, tmp_path):
    from daemon.serve.http import Clock

    clock = SteppedClock()
    served = serve(clock=Clock(now=clock.now, monotonic=clock.monotonic))
    before = {p: served.get(p)[1] for p in DIGESTS}
    # Last-Modified has whole seconds: the server's clock moves on by two, so the change is visibly later even when
    # the new story is stored within the second of the last one
    clock.advance(2.0)
    code, out, err = wiredesk(
        "replay", write_corpus(tmp_path / "library", "Riverton library reopens", LIBRARY), "--json"
    )
    assert code == 0, err
    new_story = json.loads(out)["stories"][0]
    for path, old in before.items():
        status, headers, body = served.get(path, {"If-None-Match": old["etag"]})
        assert status == 200 and headers["etag"] != old["etag"], path
        assert parsedate_to_datetime(headers["last-modified"]) > parsedate_to_datetime(old["last-modified"])
        assert served.get(path, {"If-Modified-Since": old["last-modified"]})[0] == 200
        assert b"Riverton library reopens" in body
    assert any(s["_wiredesk"]["sources"][0]["id"] == "900_library" for s in served.digest()["items"])
    assert new_story["articles"] == [{"id": "900_library", "copy_of": None}]


def test_an_unchanged_document_keeps_its_validators_across_servers(serve):
    first, second = serve(), serve()
    for path in DIGESTS:
        a, b = first.get(path)[1], second.get(path)[1]
        assert (a["etag"], a["last-modified"]) == (b["etag"], b["last-modified"]), path


# ---- filters -----------------------------------------------------------------------------------------------------


def outlets(story) -> set[str]:
    return {" ".join(m.source.split()).casefold() for m in story.members if m.source}


def newest_first(stories) -> list[str]:
    return [s.uuid for s in sorted(stories, key=lambda s: s.updated, reverse=True)]


def test_min_outlets(served):
    stories = stored_stories(served.db)
    several = [s for s in stories if len(outlets(s)) >= 2]
    assert several and len(several) < len(stories), "the seeds give both single- and multi-outlet stories"
    assert set(ids(served.digest(min_outlets=2))) == {s.uuid for s in several}
    most = max(len(outlets(s)) for s in stories)
    assert set(ids(served.digest(min_outlets=most))) == {s.uuid for s in stories if len(outlets(s)) == most}
    assert ids(served.digest(min_outlets=most + 1)) == []
    assert set(ids(served.digest(min_outlets=1))) == {s.uuid for s in stories}


def test_folders_and_feeds(served):
    stories = stored_stories(served.db)
    for folder in ("World", "Asia", "Korea"):
        expected = {s.uuid for s in stories if any(m.folder == folder for m in s.members)}
        assert expected, folder
        assert set(ids(served.digest(folder=folder))) == expected, folder
        assert set(ids(served.digest(folder=folder.upper()))) == expected, "folder names ignore case"
    both = {s.uuid for s in stories if any(m.folder in ("World", "Asia") for m in s.members)}
    assert set(ids(served.digest(folder=["World", "Asia"]))) == both
    assert ids(served.digest(folder="No Such Folder")) == []

    ap = {s.uuid for s in stories if any(m.source == "AP" for m in s.members)}
    assert ap and ap != {s.uuid for s in stories}
    assert set(ids(served.digest(feed="AP"))) == ap
    assert set(ids(served.digest(feed="https://apnews.com/hub/asia-pacific/feed.atom"))) == ap, "a feed by its URL"
    yonhap = {s.uuid for s in stories if any(m.source == "Yonhap" for m in s.members)}
    assert set(ids(served.digest(feed=["AP", "yonhap"]))) == ap | yonhap
    # filters combine: each one narrows
    combined = {s.uuid for s in stories if s.uuid in ap and len(outlets(s)) >= 2}
    assert set(ids(served.digest(feed="AP", min_outlets=2))) == combined


def test_limit_keeps_the_newest_and_the_configured_cap_holds(serve):
    served = serve()
    order = newest_first(stored_stories(served.db))
    assert len(order) >= 4
    assert ids(served.digest(limit=1)) == order[:1]
    assert ids(served.digest(limit=3)) == order[:3]
    assert ids(served.digest()) == order
    capped = serve(BASE_CONFIG + "max_entries = 2\n")
    assert ids(capped.digest()) == order[:2]
    assert ids(capped.digest(limit=50)) == order[:2], "a reader cannot raise the configured cap"
    assert ids(capped.digest(limit=1)) == order[:1]


def test_days_window(serve):
    from sqlalchemy import select, update

    from storage.models import Article, Membership, Story

    served = serve(BASE_CONFIG.replace("window_days = 0", "window_days = 7"))
    with served.db.session() as session:
        rows = session.execute(select(Story.id, Story.uuid).order_by(Story.id)).all()
        # the window is on news time: the news of every story made an hour old, then half of the stories a month
        # old, and one of those a year old
        old = rows[::2]
        now = datetime.now(timezone.utc)

        def publish(story_ids, when):
            members = select(Membership.article_id).where(Membership.story_id.in_(story_ids))
            session.execute(update(Article).where(Article.id.in_(members)).values(published=when))

        publish([r[0] for r in rows], now - timedelta(hours=1))
        publish([r[0] for r in old], now - timedelta(days=30))
        publish([old[0][0]], now - timedelta(days=365))
    everything = {r[1] for r in rows}
    recent = everything - {r[1] for r in old}
    assert recent and len(old) >= 2
    assert set(ids(served.digest())) == recent, "the configured window is 7 days"
    assert set(ids(served.digest(days=7))) == recent
    assert set(ids(served.digest(days=0.5))) == recent
    assert set(ids(served.digest(days=60))) == everything - {old[0][1]}
    assert set(ids(served.digest(days=400))) == everything
    assert set(ids(served.digest(days=10**8))) == everything, "a window older than the calendar keeps all"
    wide = serve(BASE_CONFIG)
    assert set(ids(wide.digest())) == everything, "window_days = 0 turns the window off"


def test_config_filters_are_the_defaults(serve):
    served = serve(BASE_CONFIG + 'min_outlets = 2\nfolders = ["World"]\n')
    stories = stored_stories(served.db)
    expected = {s.uuid for s in stories if len(outlets(s)) >= 2 and any(m.folder == "World" for m in s.members)}
    assert set(ids(served.digest())) == expected
    assert set(ids(served.digest(min_outlets=1, folder="Korea"))) == {
        s.uuid for s in stories if any(m.folder == "Korea" for m in s.members)
    }, "query parameters override the configured filters"


BAD_QUERIES = {
    "min_outlets=abc": "min_outlets must be a whole number",
    "min_outlets=0": "min_outlets must be a whole number of 1 or more",
    "min_outlets=-2": "min_outlets",
    "min_outlets=": "min_outlets",
    "min_outlets=2.5": "min_outlets",
    "limit=0": "limit must be a whole number of 1 or more",
    "limit=99999999999999999999": "limit",
    "limit=1&limit=2": "limit is given 2 times",
    "days=0": "days must be a number of days above 0",
    "days=nan": "days",
    "days=inf": "days",
    "days=-1": "days",
    "days=1e400": "days",
    "days=%0Aevil": "days",
    "folder=": "folder must not be empty",
    "feed=": "feed must not be empty",
    "minoutlets=2": "unknown query parameter 'minoutlets'",
    "format=atom": "unknown query parameter 'format'",
    "&".join(f"folder={i}" for i in range(100)): "too many query parameters",
}


def test_bad_query_parameters_are_a_400_with_one_line(lite):
    for query, message in BAD_QUERIES.items():
        for path in ("/digest.atom", "/digest.json", "/"):
            status, headers, body = lite.get(f"{path}?{query}")
            assert status == 400, (path, query, body)
            assert headers["content-type"] == "text/plain; charset=utf-8"
            text = body.decode()
            assert text.endswith("\n") and text.count("\n") == 1, text
            assert message in text, (query, text)
    # a well-formed query on the same connection-less client still works afterwards
    assert lite.get("/digest.atom?min_outlets=1&days=3.5&limit=10&folder=Korea&feed=AP")[0] == 200


# ---- health ------------------------------------------------------------------------------------------------------


def test_healthz_reads_the_database_and_fails_when_it_is_gone(tmp_path, seeds_db):
    folder = tmp_path / "data"
    folder.mkdir()
    db_file = folder / "wiredesk.db"
    copy_database(seeds_db, db_file)
    server, served = start_server(f"sqlite:///{db_file}")
    try:
        assert served.get("/digest.atom")[0] == 200  # the server holds a pooled connection from here on
        status, _, body = served.get("/healthz")
        assert status == 200 and body.startswith(b"ok\n")
        folder.rename(tmp_path / "moved")
        status, headers, body = served.get("/healthz")
        assert status == 503 and headers["content-type"].startswith("text/plain")
        text = body.decode()
        assert text.count("\n") == 1 and "database file" in text and "missing" in text
        assert not folder.exists(), "the health check never creates an empty database"
        (tmp_path / "moved").rename(folder)
        assert served.get("/healthz")[0] == 200, "healthy again once the database is back"
        # a file that is there but is not a wiredesk database
        db_file.rename(tmp_path / "real.db")
        db_file.write_bytes(b"not a database" * 100)
        status, _, body = served.get("/healthz")
        assert status == 503 and body.decode().count("\n") == 1 and "cannot read the database" in body.decode()
    finally:
        server.stop()


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_healthz_and_digests_say_503_when_postgresql_is_unreachable(tmp_path):
    url = f"postgresql+psycopg://wiredesk@127.0.0.1:{closed_port()}/wiredesk"
    server, served = start_server(url)
    try:
        status, headers, body = served.get("/healthz")
        assert status == 503 and headers["retry-after"] == "30"
        text = body.decode()
        assert text.count("\n") == 1 and "cannot read the database" in text and "127.0.0.1" in text
        for path in DIGESTS:
            status, _, body = served.get(path)
            assert status == 503 and body == b"storage unavailable, try again later\n", path
        assert served.get("/metrics")[0] == 503
    finally:
        server.stop()


# ---- metrics from a running service ------------------------------------------------------------------------------

GOOD_FEED = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Riverton Gazette</title>
<link>{base}/</link><description>local news</description><item><title>Riverton library reopens</title>
<link>{base}/library.html</link><guid>{base}/library.html</guid><pubDate>Mon, 15 Apr 2024 09:00:00 GMT</pubDate>
<description>{summary}</description></item></channel></rss>"""


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_of_a_running_service(tmp_path, httpserver):
    import socket

    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/good.xml").respond_with_data(
        GOOD_FEED.format(base=base, summary=LIBRARY[0]), content_type="application/rss+xml"
    )
    page = (
        "<html><body><article><h1>Riverton library reopens</h1>"
        + "".join(f"<p>{p}</p>" for p in LIBRARY)
        + "</article></body></html>"
    )
    httpserver.expect_request("/library.html").respond_with_data(page, content_type="text/html")
    httpserver.expect_request("/broken.xml").respond_with_data("oops", status=500)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # one poll only (the first, at start): the counts below are of that poll, however long the machine takes
    (tmp_path / "wiredesk.toml").write_text(
        '[fetch]\nallow_networks = ["127.0.0.0/8"]\ntimeout = 5.0\n[schedule]\nparse_workers = 1\n'
        "tick_seconds = 3600\n"
        f"[server]\nport = {port}\n"
        f'[[feeds]]\nurl = "{base}/good.xml"\nfolder = "Local"\n[[feeds]]\nurl = "{base}/broken.xml"\n'
    )
    proc = subprocess.Popen(
        [*wiredesk_cmd(), "run"],
        cwd=tmp_path,
        env=isolated_env(tmp_path, f"sqlite:///{tmp_path / 'w.db'}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with stderr_on_failure(proc):
        text = ""

        def polled_once() -> bool:
            nonlocal text
            assert proc.poll() is None, "wiredesk run exited"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/metrics")
                resp = conn.getresponse()
                text = resp.read().decode()
                conn.close()
            except OSError:
                return False
            return (metric(text, "wiredesk_poll_duration_seconds_count") or 0) >= 1

        assert wait_until(polled_once, timeout=300), f"no poll recorded in /metrics: {text}"
        assert metric(text, "wiredesk_poll_duration_seconds_count") == 1, text
        for family in (
            "wiredesk_feeds",
            "wiredesk_broken_feeds",
            "wiredesk_entries",
            "wiredesk_articles",
            "wiredesk_stories",
            "wiredesk_poll_duration_seconds",
            "wiredesk_fetch_errors",
        ):
            # counters are exposed with a _total suffix in the text format
            assert re.search(rf"^# TYPE {family}(_total)? ", text, re.M), family
        assert metric(text, 'wiredesk_feeds{status="active"}') == 1
        assert metric(text, 'wiredesk_feeds{status="error"}') == 1
        assert metric(text, "wiredesk_broken_feeds") == 1
        assert metric(text, "wiredesk_entries") == 1 and metric(text, "wiredesk_articles") == 1
        assert metric(text, "wiredesk_stories") == 1
        assert metric(text, "wiredesk_poll_duration_seconds_sum") > 0
        errors = [line for line in text.splitlines() if line.startswith("wiredesk_fetch_errors_total{")]
        assert len(errors) == 1 and errors[0].endswith(" 1.0"), errors
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
