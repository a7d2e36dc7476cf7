"""Hostile feed content through the whole daemon: one feed's failure costs that feed alone, whatever the exception;
content a database cannot take is cleaned or cut before it; every size is bounded; titles and names are plain text.

`wiredesk poll --once` runs in-process on loopback servers (tests/test_hostile.py's), `wiredesk run` as a real
process; the storage tests run on SQLite files and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from helpers import wait_until
from test_hostile import Site, feeds_by_url, rows, rss, sqlite_url, write_config  # noqa: F401 (a fixture)
from test_service import free_port, wait_http

# the references feedparser's fallback parser raised on: a surrogate, past U+10FFFF, past any C int
FORBIDDEN_REFS = {"surrogate": "&#xD800;", "beyond": "&#x110000;", "huge": "&#99999999999999;"}


def raw_rss(item_xml: str, title: str = "hostile") -> bytes:
    """An RSS document with items given as raw XML (character references and all)."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://example.com/</link><description>test</description>{item_xml}</channel></rss>"
    ).encode()


def neighbour() -> bytes:
    return rss(
        [
            (f"neighbour story {i} on harbour cranes", None, f"Dock workers at pier {i} moved {i * 7} cranes today.")
            for i in range(20)
        ],
        title="Neighbour",
    )


def utc(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# Checked to fail before the fix: `poll --once` exited 1 with a UnicodeEncodeError (ValueError, OverflowError for the
# other two references) and the neighbour's entries were never stored.
def test_forbidden_character_references_cost_nothing(db_url, tmp_path, wiredesk):
    with Site() as site:
        for name, ref in FORBIDDEN_REFS.items():
            # each its own page (a guid is a permalink unless it says otherwise): one article per feed
            site.routes[f"/{name}.xml"] = (
                raw_rss(
                    f"<item><title>bad {ref} ref</title><guid>{name}-1</guid>"
                    f"<description>Text {ref} of a story about {name}.</description></item>"
                ),
            )
        # the same in UTF-16, which feedparser converts before it parses
        wide = (
            raw_rss(
                "<item><title>bad &#xD800; ref</title><guid>wide-1</guid><description>Wide text.</description></item>"
            )
            .decode()
            .replace('encoding="utf-8"', 'encoding="utf-16"')
            .encode("utf-16")
        )
        site.routes["/wide.xml"] = (wide, "application/xml")
        site.routes["/neighbour.xml"] = (neighbour(),)
        urls = [site.url(f"/{name}.xml") for name in [*FORBIDDEN_REFS, "wide", "neighbour"]]
        write_config(tmp_path, urls, fetch_articles=False)
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
        assert "Traceback" not in err
        listed = feeds_by_url(wiredesk)
        assert listed[site.url("/neighbour.xml")]["entries"] == 20
        assert rows(db_url, "select count(*) from articles where title like 'neighbour story%'") == [(20,)]
        for name in [*FORBIDDEN_REFS, "wide"]:
            row = listed[site.url(f"/{name}.xml")]
            assert row["status"] == "active" and row["entries"] == 1, row
            assert "U+FFFD" in row["last_error"], row
        titles = sorted(t for (t,) in rows(db_url, "select title from articles where title like 'bad%'"))
        assert titles == ["bad \ufffd ref"] * 4
        # their schedules were stored: a second poll right away fetches nothing
        before = site.requests
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
        assert site.requests == before


@pytest.fixture
def faults(monkeypatch):
    """Exceptions nobody planned for, raised inside the daemon's own stages for marked feeds and entries."""
    import daemon.parse.feed
    import daemon.parse.identity
    import daemon.pipeline.feed_update
    import daemon.pipeline.run
    from daemon.engine import Engine

    parse = daemon.parse.feed.feedparser.parse

    def bad_parse(data, *args, **kwargs):
        if b"BOOM-PARSE" in data:
            raise RuntimeError("the parser fell over")
        return parse(data, *args, **kwargs)

    identity = daemon.parse.identity.entry_identity

    def bad_identity(entry):
        if "boom-identity" in (entry.url or ""):
            raise KeyError("no identity today")
        return identity(entry)

    text_from_feed = daemon.pipeline.run.text_from_feed

    def bad_text(content, summary):
        if "BOOM-TEXT" in (summary or ""):
            raise IndexError("the extractor fell over")
        return text_from_feed(content, summary)

    merge = daemon.pipeline.feed_update.merge_entries

    def bad_merge(feed_id, parsed, *args, **kwargs):
        if parsed.title == "BOOM-STORE":
            raise TypeError("cannot store this")
        return merge(feed_id, parsed, *args, **kwargs)

    add = Engine.add

    def bad_add(self, doc, *args, **kwargs):
        if "BOOM-DECIDE" in doc.title:
            raise ZeroDivisionError("the engine fell over")
        return add(self, doc, *args, **kwargs)

    monkeypatch.setattr(daemon.parse.feed.feedparser, "parse", bad_parse)
    monkeypatch.setattr(daemon.parse.identity, "entry_identity", bad_identity)
    monkeypatch.setattr(daemon.pipeline.run, "text_from_feed", bad_text)
    monkeypatch.setattr(daemon.pipeline.feed_update, "merge_entries", bad_merge)
    monkeypatch.setattr(Engine, "add", bad_add)


def entry_rows(db_url: str) -> dict[str, tuple]:
    return {title: (state, error) for title, state, error in rows(db_url, "select title, state, error from entries")}


# Checked to fail before the fix: the parse failure ended the poll (exit 1, nothing stored for anyone), and each of
# the other faults in turn did the same with the first one taken out.
@pytest.mark.slow
def test_any_failure_costs_only_its_feed_or_entry(db_url, tmp_path, wiredesk, faults):
    with Site() as site:
        site.routes["/parse.xml"] = (rss([("BOOM-PARSE", None, "never read")]),)
        site.routes["/store.xml"] = (rss([("a story nobody can store", None, "stored never")], title="BOOM-STORE"),)
        site.routes["/entries.xml"] = (
            rss(
                [
                    ("no identity", "http://example.com/boom-identity", "Lost entry."),
                    ("no text", None, "BOOM-TEXT here"),
                    ("no decision BOOM-DECIDE", None, "A story about a parade of tractors in the valley."),
                    ("a fine story", None, "A story about the price of bread rising again."),
                ],
                title="Entries",
            ),
        )
        site.routes["/neighbour.xml"] = (neighbour(),)
        names = ["parse", "store", "entries", "neighbour"]
        write_config(tmp_path, [site.url(f"/{n}.xml") for n in names], fetch_articles=False)
        started = datetime.now(timezone.utc)
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
        assert "Traceback" not in err
        listed = feeds_by_url(wiredesk)
        kinds = dict(rows(db_url, "select url, last_error_kind from feeds"))
        for name, kind, words in (
            ("parse", "parse", "RuntimeError: the parser fell over"),
            ("store", "store", "TypeError: cannot store this"),
        ):
            url = site.url(f"/{name}.xml")
            row = listed[url]
            assert row["status"] == "error" and row["entries"] == 0 and row["error_count"] == 1, row
            assert url in row["last_error"] and words in row["last_error"], row
            assert kinds[url] == kind
            # backed off: the first back-off is 10 minutes, ±20 %
            assert utc(row["next_poll"]) >= started + timedelta(minutes=8), row
            assert f"{url}: " in err  # named on stderr, one line
        entries_feed = listed[site.url("/entries.xml")]
        assert entries_feed["status"] == "active" and entries_feed["entries"] == 3
        assert "left out 1 entry without an identity (KeyError" in entries_feed["last_error"]
        entries = entry_rows(db_url)
        assert entries["no text"][0] == "no_text" and "IndexError: the extractor fell over" in entries["no text"][1]
        assert entries["no decision BOOM-DECIDE"][0] == "no_text"
        assert "ZeroDivisionError: the engine fell over" in entries["no decision BOOM-DECIDE"][1]
        assert entries["a fine story"][0] == "done"
        assert rows(db_url, "select count(*) from articles where title like 'neighbour story%'") == [(20,)]
        assert listed[site.url("/neighbour.xml")]["status"] == "active"
        # the failed feeds are not fetched again before their back-off
        hits = dict(site.hits)
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
        assert dict(site.hits) == hits


RUN_WITH_A_PARSER_FAULT = """
import sys
import daemon.parse.feed
parse = daemon.parse.feed.feedparser.parse
def bad_parse(data, *args, **kwargs):
    if b"BOOM-PARSE" in data:
        raise RuntimeError("the parser fell over")
    return parse(data, *args, **kwargs)
daemon.parse.feed.feedparser.parse = bad_parse
from daemon.cli.main import main
sys.exit(main(["run"]))
"""


def last_poll(port: int, proc) -> str:
    status, body = wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return body.decode().split("last poll: ", 1)[1].strip()


# Checked to fail before the fix: every tick logged "poll failed" with a traceback, /healthz never showed a finished
# poll, the neighbour's entries stayed pending and the bad feed was fetched on every tick.
@pytest.mark.slow
def test_run_goes_on_polling_beside_a_bad_feed(db_url, tmp_path):
    with Site() as site:
        site.routes["/surrogate.xml"] = (
            raw_rss(
                "<item><title>bad &#xD800; ref</title><guid>s1</guid>"
                "<description>A story about a surrogate.</description></item>"
            ),
        )
        site.routes["/parse.xml"] = (rss([("BOOM-PARSE", None, "never read")]),)
        site.routes["/neighbour.xml"] = (neighbour(),)
        write_config(
            tmp_path, [site.url(f"/{n}.xml") for n in ("surrogate", "parse", "neighbour")], fetch_articles=False
        )
        port = free_port()
        with open(tmp_path / "wiredesk.toml", "a") as config:
            config.write(f"[server]\nport = {port}\n")
        config_text = (
            (tmp_path / "wiredesk.toml").read_text().replace("[schedule]\n", "[schedule]\ntick_seconds = 0.5\n")
        )
        (tmp_path / "wiredesk.toml").write_text(config_text)
        env = dict(
            os.environ,
            WIREDESK_DATABASE_URL=db_url,
            XDG_DATA_HOME=str(tmp_path / "d"),
            XDG_CONFIG_HOME=str(tmp_path / "c"),
        )
        log_path = tmp_path / "run.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", RUN_WITH_A_PARSER_FAULT],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
            )
        try:
            seen: set[str] = set()

            def four_polls() -> bool:  # four finished polls, at least a second apart
                seen.add(last_poll(port, proc))
                return len(seen - {"none yet"}) >= 4

            assert wait_until(four_polls, timeout=60), f"polls finished: {seen}; log: {log_path.read_text()[-2000:]}"
            assert rows(db_url, "select count(*) from articles where title like 'neighbour story%'") == [(20,)]
            assert rows(db_url, "select title from articles where title like 'bad%'") == [("bad \ufffd ref",)]
            status, body = wait_http(f"http://127.0.0.1:{port}/digest.json?days=36500", proc)
            assert json.loads(body)["items"], "the neighbour's stories reached the digest"
            # each feed fetched once over all those ticks: the good ones are not due, the failing one backs off
            assert site.hits["/surrogate.xml"] == site.hits["/parse.xml"] == site.hits["/neighbour.xml"] == 1
            ((kind, count),) = rows(
                db_url, f"select last_error_kind, error_count from feeds where url = '{site.url('/parse.xml')}'"
            )
            assert (kind, count) == ("parse", 1)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    log_text = log_path.read_text()
    assert "poll failed" not in log_text and "Traceback" not in log_text, log_text[-2000:]
    assert f"{site.url('/parse.xml')}: the feed cannot be read (RuntimeError: the parser fell over)" in log_text


def moved(location: str):
    def handler(h):
        h.send_response(301)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handler


# Checked to fail before the fix: on PostgreSQL `poll --once` exited 2 with "database not writable: ... cannot contain
# NUL" (and "value too long for type character varying(2048)" for the move), the feeds' errors were not recorded.
def test_nul_and_a_long_redirect_target_are_stored_on_every_backend(db_url, tmp_path, wiredesk):
    long_path = "/moved/" + "x" * 2100 + ".xml"
    with Site() as site:
        site.routes["/nul.xml"] = (
            raw_rss(
                "<item><title>nul &#0; in a title</title><guid>n1</guid>"
                "<description>nul &#0; in a summary</description></item>"
                "<item><title>raw \x00 nul</title><guid>n2</guid>"
                "<description>raw \x00 nul in a summary</description></item>",
                title="nul \x00 outlet",
            ),
        )
        site.routes["/old.xml"] = moved(site.url(long_path))
        site.routes[long_path.split("?")[0]] = (rss([("a story behind a long redirect", None, "Long way round.")]),)
        site.routes["/neighbour.xml"] = (neighbour(),)
        write_config(tmp_path, [site.url(f"/{n}.xml") for n in ("nul", "old", "neighbour")], fetch_articles=False)
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
        assert "not writable" not in err
        listed = feeds_by_url(wiredesk)
        assert set(listed) == {site.url(f"/{n}.xml") for n in ("nul", "old", "neighbour")}
        assert listed[site.url("/nul.xml")]["status"] == "active" and listed[site.url("/nul.xml")]["entries"] == 2
        old = listed[site.url("/old.xml")]
        assert old["status"] == "active" and old["entries"] == 1
        assert "moved permanently to a URL longer than 2048 characters" in old["last_error"]
        assert listed[site.url("/neighbour.xml")]["entries"] == 20
        stored = rows(db_url, "select title, summary from entries where title not like 'neighbour%'")
        assert all("\x00" not in (title or "") + (summary or "") for title, summary in stored), stored
        assert sorted(title for title, _ in stored) == [
            "a story behind a long redirect",
            "nul \ufffd in a title",
            "raw nul",
        ]
        assert rows(db_url, "select count(*) from articles") == [(23,)]
        assert rows(db_url, f"select title from feeds where url = '{site.url('/nul.xml')}'") == [("nul outlet",)]


# --- every size bounded -------------------------------------------------------------------------------------------


def big_title_feed(chars: int) -> bytes:
    title = ("headline " * (chars // 9 + 1))[:chars]
    return raw_rss(
        f"<item><title>{title}</title><guid>big</guid><description>A story with a very long "
        f"headline about bridges.</description></item>",
        title="O" * 5000,
    )


# Checked to fail before the fix: the whole 10 MB title was stored on the entry, the article and the story, and each
# digest carried it (over 10 MB apiece).
def test_a_ten_megabyte_title_is_cut_with_bounded_memory_and_digest(sqlite_url, tmp_path, wiredesk):
    import tracemalloc

    with Site() as site:
        site.routes["/big.xml"] = (big_title_feed(10_000_000),)
        site.routes["/neighbour.xml"] = (neighbour(),)
        # a first poll loads the engine and its word tables, so that the one measured is the big feed's
        write_config(tmp_path, [site.url("/neighbour.xml")], fetch_articles=False)
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
        write_config(tmp_path, [site.url("/big.xml"), site.url("/neighbour.xml")], fetch_articles=False)
        tracemalloc.start()
        try:
            code, out, err = wiredesk("poll", "--once")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert code == 0, err
    # the document itself is 10 MB and feedparser holds it a few times over; nothing after the parser copies it
    assert peak < 120 * 1024 * 1024, f"peak {peak} bytes"
    ((entry_title,),) = rows(sqlite_url, "select title from entries where identity = 'guid:big'")
    ((article_title, source),) = rows(
        sqlite_url,
        "select a.title, a.source from articles a join entries e on e.id = a.entry_id where e.identity = 'guid:big'",
    )
    assert entry_title == article_title and len(entry_title) <= 1000 and entry_title.endswith("\u2026")
    assert len(source) <= 300  # the outlet's name
    for fmt in ("atom", "rss", "json", "html"):
        code, out, err = wiredesk("digest", "--format", fmt, "--days", "36500", "-o", tmp_path / f"digest.{fmt}")
        assert code == 0, err
        size = (tmp_path / f"digest.{fmt}").stat().st_size
        assert size < 200_000, (fmt, size)
    started = time.monotonic()
    code, out, err = wiredesk("stories", "--json")
    assert code == 0, err
    assert time.monotonic() - started < 10 and len(out) < 200_000


# Checked to fail before the fix: DigestCache kept up to 64 documents whatever their size (and took no byte limit).
def test_the_digest_cache_is_bounded_by_bytes(sqlite_url, tmp_path, wiredesk):
    from daemon.config import load
    from daemon.serve.http import DigestCache, parse_query
    from storage import open_database

    code, out, err = wiredesk("replay")
    assert code == 0, err
    config = load(None)
    db = open_database(sqlite_url)
    try:
        probe = DigestCache(db, config)
        one = probe.get("json", parse_query("days=36500", config)).size
        cache = DigestCache(db, config, max_bytes=3 * one)
        sizes = []
        for limit in range(1, 21):
            doc = cache.get("json", parse_query(f"days=36500&limit={limit}", config))
            sizes.append(doc.size)
            assert cache.bytes == sum(d.size for d in cache.items.values())
            assert cache.bytes <= 3 * one or len(cache.items) == 1
        assert len(cache.items) < 20 and max(sizes) <= one
        # the documents still in the cache are served from it
        kept = next(reversed(cache.items))
        assert cache.get(*kept) is cache.items[kept]
    finally:
        db.dispose()


# --- titles and names are plain text ------------------------------------------------------------------------------


def escaped(text: str, times: int) -> str:
    import html

    for _ in range(times):
        text = html.escape(text, quote=False)
    return text


def digest_titles(tmp_path, wiredesk) -> dict[str, list[str]]:
    """Each format's story titles and outlet names, read back the way a feed reader reads them."""
    from lxml import etree
    from lxml import html as lxml_html

    out: dict[str, list[str]] = {}
    for fmt in ("atom", "rss", "json", "html"):
        path = tmp_path / f"digest.{fmt}"
        code, _, err = wiredesk("digest", "--format", fmt, "--days", "36500", "-o", path)
        assert code == 0, err
        data = path.read_bytes()
        assert b"onerror" not in data and b"\xe2\x80\xae" not in data and b"\xe2\x80\xac" not in data, fmt

        def source_titles(fragment) -> list[str]:  # the list of sources each entry carries
            return [el.text_content() for el in fragment.xpath("//li/strong | //li/a[1]")]

        if fmt == "json":
            items = json.loads(data)["items"]
            out[fmt] = [i["title"] for i in items] + [a["name"] for i in items for a in i.get("authors", [])]
            out[fmt] += [s[key] for i in items for s in i["_wiredesk"]["sources"] for key in ("title", "outlet")]
            for i in items:
                out[fmt] += source_titles(lxml_html.fromstring(i["content_html"]))
        elif fmt == "html":
            page = lxml_html.fromstring(data)
            assert not page.xpath("//img") and not page.xpath("//*[@onerror]")
            out[fmt] = [h.text_content() for h in page.xpath("//article/h2")] + source_titles(page)
        else:
            root = etree.fromstring(data)
            out[fmt] = [
                t.text for t in root.iter("{http://www.w3.org/2005/Atom}title", "title", "{*}name", "{*}creator")
            ]
            for body in root.iter("{http://www.w3.org/2005/Atom}content", "description"):
                if body.getparent().tag in ("item", "{http://www.w3.org/2005/Atom}entry"):
                    fragment = lxml_html.fromstring(body.text)
                    assert not fragment.xpath("//img") and not fragment.xpath("//*[@onerror]")
                    out[fmt] += source_titles(fragment)
    return out


# Checked to fail before the fix: the title escaped five and six times reached every format as an <img onerror>
# element (or its text), and U+202E/U+202C stayed in titles and outlet names.
def test_titles_and_names_are_plain_text(sqlite_url, tmp_path, wiredesk):
    markup = '<img src="x" onerror="alert(1)">'
    items = "".join(
        f"<item><title>{escaped(markup, times)}story escaped {times} times</title><guid>e{times}</guid>"
        f"<description>{text}</description></item>"
        for times, text in (
            (1, "Gulls nested on the cathedral roof for a third spring."),
            (5, "Parliament passed the fisheries budget after midnight."),
            (6, "Quarterly inflation figures surprised Frankfurt economists."),
        )
    )
    items += (
        "<item><title>bidi \u202eevil\u202c \u200bstory</title><guid>bidi</guid>"
        "<description>Volcanic ash grounded flights across Iceland on Tuesday.</description></item>"
    )
    with Site() as site:
        site.routes["/escaped.xml"] = (raw_rss(items, title="Outlet \u202eX\u202c Times"),)
        write_config(tmp_path, [site.url("/escaped.xml")], fetch_articles=False)
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
    stored = [t for (t,) in rows(sqlite_url, "select title from entries")] + [
        t for (t,) in rows(sqlite_url, "select title from feeds")
    ]
    assert not any(c in t for t in stored for c in "\u202e\u202c\u200b"), stored
    assert "bidi evil story" in stored and "Outlet X Times" in stored
    for fmt, texts in digest_titles(tmp_path, wiredesk).items():
        joined = " | ".join(texts)
        assert "<" not in joined and "onerror" not in joined and "&lt;" not in joined and "&amp;" not in joined, (
            fmt,
            joined,
        )
        for times in (1, 5, 6):
            assert f"story escaped {times} times" in texts, (fmt, texts)
        assert "bidi evil story" in texts, (fmt, texts)
        if fmt != "html":
            assert "Outlet X Times" in texts, (fmt, texts)


def test_stored_titles_and_names_are_shown_as_plain_text():
    """Titles stored before the parser cleaned them (or by replay) are made plain in the digest too."""
    from daemon.publish.render import DigestMeta, DigestSource, DigestStory, render

    now = datetime(2024, 4, 13, tzinfo=timezone.utc)
    title = escaped('<img src="x" onerror="alert(1)">', 7) + "old \u202estory\u202c"
    source = DigestSource("1", title, "http://example.com/a", "Old \u2066Outlet\u2069", now, None)
    story = DigestStory("urn:uuid:00000000-0000-0000-0000-000000000001", title, source, (source,), now, now, 0)
    for fmt in ("atom", "rss", "json", "html"):
        data = render([story], fmt, DigestMeta()).decode()
        assert "onerror" not in data and "\u202e" not in data and "\u2066" not in data, fmt
        assert "old story" in data and "Old Outlet" in data, fmt


# Checked to fail before the fix: once a parse worker had died, every feed of the poll (and of every later poll of
# a running service) failed with "BrokenProcessPool".
def test_a_dead_parse_worker_costs_no_feed(db_url):
    import asyncio
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from daemon.feeds import add_feed
    from daemon.fetch.client import Fetcher
    from daemon.pipeline import Pipeline, PipelineSettings
    from storage import open_database

    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    with pytest.raises(BrokenProcessPool):
        pool.submit(os._exit, 1).result(timeout=60)  # the worker dies as one killed by the kernel would
    db = open_database(db_url)
    try:
        with Site() as site:
            site.routes["/a.xml"] = (neighbour(),)
            site.routes["/b.xml"] = (rss([("another story", None, "Snow closed the mountain pass.")], title="B"),)
            for name in ("a", "b"):
                add_feed(db, site.url(f"/{name}.xml"))

            async def go():
                fetcher = Fetcher(allow_networks=("127.0.0.1/32",))
                try:
                    pipeline = Pipeline(db, fetcher, PipelineSettings(fetch_articles=False), parse_executor=pool)
                    return await pipeline.poll_due()
                finally:
                    await fetcher.aclose()

            report = asyncio.run(go())
        assert [f.error for f in report.feeds if not f.ok] == []
        assert rows(db_url, "select count(*) from entries") == [(21,)]
    finally:
        pool.shutdown(wait=True)
        db.dispose()
