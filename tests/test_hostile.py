"""Hostile feeds and pages through the whole daemon (`wiredesk poll --once`, in-process, on loopback).

Each protection is checked where a user meets it: what `wiredesk feeds list --json` says, what was stored, which
server was reached. Every test below was checked to fail with its protection taken out: the comment above each one
says how (a plugin module loaded with `pytest -p`, replacing the protecting function, or the config without the
limit). The databases are SQLite files: what is checked here is the fetcher and the parser, not the store.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa
from conftest import ROOT, SEEDS

# --- loopback servers ---------------------------------------------------------------------------------------------


class Site:
    """A threaded HTTP server on one loopback address; a route is a body or a function that writes the response."""

    def __init__(self, host: str = "127.0.0.1"):
        site = self
        self.routes: dict[str, object] = {}
        self.hits: Counter[str] = Counter()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes; no delayed-ACK stall between them

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                site.hits[path] += 1
                route = site.routes.get(path)
                try:
                    if callable(route):
                        route(self)
                    elif route is None:
                        reply(self, b"not found", "text/plain", status=404)
                    else:
                        reply(self, *route)
                except OSError:
                    pass  # the client gave up on a slow or endless response, as the tests intend

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self.httpd = Server((host, 0), Handler)
        port = self.httpd.server_address[1]
        self.base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self.port = port

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def requests(self) -> int:
        return sum(self.hits.values())

    def __enter__(self) -> Site:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(handler, body: bytes, ctype: str = "application/rss+xml", headers: dict | None = None, status: int = 200):
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str):
    def handler(h):
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handler


def rss(items: list[tuple[str, str | None, str]], title: str = "Hostile test feed") -> bytes:
    """items: (title, link or None, description)."""
    rendered = []
    for i, (item_title, link, description) in enumerate(items):
        link_xml = f"<link>{escape(link)}</link>" if link else ""
        rendered.append(
            f'<item><title>{escape(item_title)}</title>{link_xml}<guid isPermaLink="false">item-{i}</guid>'
            f"<pubDate>Sat, 13 Apr 2024 {i % 24:02d}:00:00 GMT</pubDate><description>{escape(description)}</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>http://example.com/</link><description>test</description>{''.join(rendered)}</channel></rss>"
    ).encode()


def seed_paragraphs() -> list[str]:
    text = next(SEEDS.glob("000_*.txt")).read_text()
    return [p.strip() for p in text.split("\n\n") if len(p.strip()) > 80]


def article_page(title: str, marker: str = "") -> bytes:
    paras = "".join(f"<p>{escape(p)}</p>" for p in seed_paragraphs())
    return (
        f"<html><head><title>{escape(title)}</title></head><body><article><h1>{escape(title)}</h1>"
        f"<p>{escape(marker)}</p>{paras}</article></body></html>"
    ).encode()


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- the daemon ---------------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'wiredesk.db'}"
    monkeypatch.setenv("WIREDESK_DATABASE_URL", url)
    return url


def toml(value) -> str:
    return json.dumps(value)  # strings, numbers, booleans and lists of strings are written alike in TOML


def write_config(tmp_path, feeds: list[str], **fetch) -> None:
    settings = {"allow_networks": ["127.0.0.1/32"], "timeout": 10.0, "connect_timeout": 2.0, **fetch}
    lines = ["[fetch]", *(f"{key} = {toml(value)}" for key, value in settings.items())]
    # parse in a thread of this process: no worker start-up, and tracemalloc sees the parser's memory
    lines += ["[schedule]", "parse_workers = 1"]
    for url in feeds:
        lines += ["[[feeds]]", f"url = {toml(url)}"]
    (tmp_path / "wiredesk.toml").write_text("\n".join(lines) + "\n")


def poll(wiredesk) -> tuple[str, str]:
    code, out, err = wiredesk("poll", "--once")
    assert code == 0, err
    return out, err


def feeds_by_url(wiredesk) -> dict[str, dict]:
    code, out, err = wiredesk("feeds", "list", "--json")
    assert code == 0, err
    return {row["url"]: row for row in json.loads(out)}


def rows(db_url: str, query: str) -> list[tuple]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def articles_by_title(db_url: str) -> dict[str, tuple[str, str]]:
    return {
        title: (source, text)
        for title, source, text in rows(db_url, "select title, extracted_from, text from articles")
    }


# --- SSRF ---------------------------------------------------------------------------------------------------------


# Checked to fail without the protection: with AddressPolicy.refusal replaced by `lambda self, address: None`
# (pytest -p with a plugin that patches daemon.fetch.client), the inside server is reached and its secret page becomes the
# article text, and 169.254.169.254 ends in a connect error instead of a refusal.
def test_article_links_to_refused_addresses_fall_back_to_the_feed(sqlite_url, tmp_path, wiredesk):
    with contextlib.ExitStack() as stack:
        feed_site = stack.enter_context(Site("127.0.0.1"))
        inside = stack.enter_context(Site("127.0.0.2"))
        secret = (article_page("Inside page", "INTERNAL-SECRET"), "text/html; charset=utf-8")
        inside.routes["/secret.html"] = secret
        # 127.0.0.2 is loopback too (Linux routes all of 127/8 there) but outside the allowed 127.0.0.1/32;
        # the same address is also written in decimal, in hex and as an IPv4-mapped IPv6 address.
        links = {
            "direct": inside.url("/secret.html"),
            "decimal": f"http://2130706434:{inside.port}/secret.html",
            "hex": f"http://0x7f000002:{inside.port}/secret.html",
            "mapped": f"http://[::ffff:127.0.0.2]:{inside.port}/secret.html",
            "metadata": "http://169.254.169.254/latest/meta-data",
            "redirected": feed_site.url("/go-inside"),
            "file": "file:///etc/passwd",
        }
        reasons = {
            "direct": "127.0.0.2 is a loopback address",
            "decimal": "127.0.0.2 is a loopback address",
            "hex": "127.0.0.2 is a loopback address",
            "mapped": "(127.0.0.2) is a loopback address",
            "metadata": "169.254.169.254 is a link-local address",
            "redirected": f"it redirects to {inside.url('/secret.html')}, and 127.0.0.2 is a loopback address",
            "file": "not an http(s) URL",
        }
        servers = [inside]
        if ipv6_loopback():  # loopback on another port, in the other address family
            other = stack.enter_context(Site("::1"))
            other.routes["/secret.html"] = secret
            servers.append(other)
            links["ipv6"] = other.url("/secret.html")
            reasons["ipv6"] = "::1 is a loopback address"
        feed_site.routes["/go-inside"] = redirect(inside.url("/secret.html"))
        feed_site.routes["/public.html"] = (article_page("Allowed page", "ALLOWED-PAGE"), "text/html; charset=utf-8")
        items = [
            (name, link, f"FEED-TEXT-{name}: the feed's own summary of this story.") for name, link in links.items()
        ]
        items.append(("allowed", feed_site.url("/public.html"), "FEED-TEXT-allowed"))
        feed_site.routes["/feed.xml"] = (rss(items),)
        write_config(tmp_path, [feed_site.url("/feed.xml")])
        _, err = poll(wiredesk)
    assert [server.requests for server in servers] == [0] * len(servers)
    stored = articles_by_title(sqlite_url)
    assert set(stored) == {*links, "allowed"}
    for name, link in links.items():
        source, text = stored[name]
        assert source == "feed" and f"FEED-TEXT-{name}" in text and "INTERNAL-SECRET" not in text, name
        # the log names the entry's canonical link, which writes file:///etc/passwd as file://etc/passwd
        named = f"fetch {link}: " if name != "file" else "/etc/passwd: "
        line = next((said for said in err.splitlines() if named in said), "")
        assert reasons[name] in line, f"{name}: no refusal naming {link} in the log:\n{err}"
    assert "allow it with fetch.allow_networks" in err
    # the allowed page was fetched: the fallbacks above are refusals, not article fetching switched off
    assert stored["allowed"][0] == "page" and "ALLOWED-PAGE" in stored["allowed"][1]


# Checked to fail without the protection: with AddressPolicy.refusal replaced by `lambda self, address: None`, both
# feeds are fetched from the inside server and become active; with daemon.fetch.client._http_url reduced to httpx.URL (no
# scheme check per hop), httpx's own message for the file:// redirect does not say where the feed redirects.
def test_feeds_at_refused_addresses_show_the_refusal(sqlite_url, tmp_path, wiredesk):
    with Site("127.0.0.1") as feed_site, Site("127.0.0.2") as inside:
        inside.routes["/feed.xml"] = (rss([("inside story", None, "INTERNAL-SECRET")]),)
        feed_site.routes["/good.xml"] = (rss([("good story", None, "An ordinary story.")]),)
        feed_site.routes["/moved.xml"] = redirect(inside.url("/feed.xml"))
        feed_site.routes["/to-file.xml"] = redirect("file:///etc/passwd")
        urls = {
            "inside": inside.url("/feed.xml"),
            "moved": feed_site.url("/moved.xml"),
            "to-file": feed_site.url("/to-file.xml"),
            "good": feed_site.url("/good.xml"),
        }
        write_config(tmp_path, list(urls.values()))
        out, _ = poll(wiredesk)
    assert "polled 4 feeds: 1 ok, 3 failed" in out
    assert inside.requests == 0
    listed = feeds_by_url(wiredesk)
    inside_feed, moved, to_file = listed[urls["inside"]], listed[urls["moved"]], listed[urls["to-file"]]
    assert inside_feed["status"] == "error" and inside_feed["entries"] == 0
    assert urls["inside"] in inside_feed["last_error"]
    assert "127.0.0.2 is a loopback address" in inside_feed["last_error"]
    assert "fetch.allow_networks" in inside_feed["last_error"]
    # refused at the hop: the allowed feed URL is named, then where it redirects and why that is refused
    assert moved["status"] == "error" and moved["entries"] == 0
    assert urls["moved"] in moved["last_error"]
    assert f"it redirects to {urls['inside']}, and 127.0.0.2 is a loopback address" in moved["last_error"]
    assert "fetch.allow_networks" in moved["last_error"]
    assert to_file["status"] == "error" and urls["to-file"] in to_file["last_error"]
    assert "it redirects to 'file:" in to_file["last_error"] and "which is not an http(s) URL" in to_file["last_error"]
    assert listed[urls["good"]]["status"] == "active" and listed[urls["good"]]["entries"] == 1
    assert not any(
        "INTERNAL-SECRET" in (summary or "") for (summary,) in rows(sqlite_url, "select summary from entries")
    )


# --- size and time limits -----------------------------------------------------------------------------------------


# Checked to fail without the protection: with max_bytes = 100000000 in the config (no effective cap), the bomb
# inflates to 32 MB, parses, and the feed is active with its entry.
def test_gzip_bomb_feed_stops_at_max_bytes(sqlite_url, tmp_path, wiredesk):
    cap = 1_000_000
    story = rss([("bomb story", None, "It would be stored if the whole body were read.")])
    # a valid feed, padded inside a comment to 32 MB: only the size cap stands between it and the parser
    inflated = story.replace(b"<channel>", b"<channel><!--" + b" " * (32 << 20) + b"-->", 1)
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 64 * 1024
    with Site() as site:
        site.routes["/bomb.xml"] = (bomb, "application/rss+xml", {"Content-Encoding": "gzip"})
        site.routes["/good.xml"] = (rss([("good story", None, "An ordinary story.")]),)
        write_config(tmp_path, [site.url("/bomb.xml"), site.url("/good.xml")], max_bytes=cap)
        poll(wiredesk)
    listed = feeds_by_url(wiredesk)
    bombed = listed[site.url("/bomb.xml")]
    assert bombed["status"] == "error" and bombed["entries"] == 0
    assert site.url("/bomb.xml") in bombed["last_error"]
    assert f"over the {cap} byte limit" in bombed["last_error"]
    assert listed[site.url("/good.xml")]["entries"] == 1


def drip(body: bytes, pause: float):
    """Sends the whole Content-Length up front, then the body a few bytes at a time: each read is quick, the whole
    response is not."""

    def handler(h):
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        step = len(body) // 16 + 1
        for i in range(0, len(body), step):
            h.wfile.write(body[i : i + step])
            h.wfile.flush()
            time.sleep(pause)  # the server's pace is the case under test (a slow server), not a wait for the client

    return handler


# Checked to fail without the protection: with the whole-exchange deadline removed from Fetcher._follow (a plugin
# replacing daemon.fetch.client's asyncio.timeout with a no-op context), httpx's per-read timeout of 1 s never fires on a
# 0.25 s drip, the feed arrives after 4 s and is stored.
def test_slow_drip_feed_hits_the_timeout(sqlite_url, tmp_path, wiredesk):
    body = rss([("drip story", None, "Sent one piece at a time.")])
    with Site() as site:
        site.routes["/drip.xml"] = drip(body, pause=0.25)
        site.routes["/good.xml"] = (rss([("good story", None, "An ordinary story.")]),)
        write_config(tmp_path, [site.url("/drip.xml"), site.url("/good.xml")], timeout=1)
        poll(wiredesk)
    listed = feeds_by_url(wiredesk)
    dripped = listed[site.url("/drip.xml")]
    assert dripped["status"] == "error" and dripped["entries"] == 0
    assert site.url("/drip.xml") in dripped["last_error"]
    assert "no complete response within 1 s" in dripped["last_error"]
    assert listed[site.url("/good.xml")]["entries"] == 1


# Checked to fail without the protection: with max_entries_per_feed = 500 (the default) the feed stores all 50
# entries; without the max_article_chars cut in the pipeline the stored text is the page's full length (over 2000).
def test_entry_and_article_caps(sqlite_url, tmp_path, wiredesk):
    with Site() as site:
        site.routes["/long.html"] = (article_page("Long page"), "text/html; charset=utf-8")
        items = [
            (f"story {i}", site.url("/long.html") if i == 0 else None, f"Summary of story {i}.") for i in range(50)
        ]
        site.routes["/fifty.xml"] = (rss(items),)
        write_config(tmp_path, [site.url("/fifty.xml")], max_entries_per_feed=10, max_article_chars=300)
        poll(wiredesk)
    fifty = feeds_by_url(wiredesk)[site.url("/fifty.xml")]
    assert fifty["status"] == "active" and fifty["entries"] == 10
    assert "kept the first 10 of 50 entries (fetch.max_entries_per_feed)" in fifty["last_error"]
    assert rows(sqlite_url, "select count(*) from articles") == [(10,)]
    source, text = articles_by_title(sqlite_url)["story 0"]
    assert source == "page" and len(text) == 300
    assert len("\n\n".join(seed_paragraphs())) > 2000  # the page had far more to give


# --- XML entities -------------------------------------------------------------------------------------------------


def billion_laughs(encoding: str = "utf-8") -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    doc = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<!DOCTYPE rss [\n' + "\n".join(entities) + "\n]>\n"
        '<rss version="2.0"><channel><title>laughs &lol9;</title>'
        "<item><title>laughing &lol9;</title><description>&lol9;</description></item></channel></rss>"
    )
    return doc.encode(encoding)


def external_entities(inside_url: str) -> bytes:
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY passwd SYSTEM "file:///etc/passwd">\n'
        f'<!ENTITY inside SYSTEM "{inside_url}">\n]>\n'
        '<rss version="2.0"><channel><title>xxe</title>'
        "<item><title>xxe &passwd;</title><description>&passwd; &inside;</description></item></channel></rss>"
    ).encode()


# Checked to fail without the protection: with daemon.parse.feed.clean_prolog replaced by a no-op, each of these feeds
# is stored (feedparser recovers, with a warning) and shows as active.
def test_entity_feeds_are_refused_with_bounded_memory(sqlite_url, tmp_path, wiredesk):
    with Site() as site, Site("127.0.0.2") as inside:
        inside.routes["/secret"] = (b"INTERNAL-SECRET", "text/plain")
        site.routes["/laughs.xml"] = (billion_laughs(),)
        site.routes["/laughs16.xml"] = (billion_laughs("utf-16"), "application/xml")
        site.routes["/xxe.xml"] = (external_entities(inside.url("/secret")),)
        site.routes["/good.xml"] = (rss([("good story", None, "An ordinary story.")]),)
        names = ["laughs", "laughs16", "xxe", "good"]
        write_config(tmp_path, [site.url(f"/{n}.xml") for n in names])
        tracemalloc.start()
        try:
            poll(wiredesk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # one expansion of &lol9; is 3 GB; the whole poll, imports included, stays far below 100 MB
    assert peak < 100 * 1024 * 1024, f"peak {peak} bytes"
    listed = feeds_by_url(wiredesk)
    for name in ("laughs", "laughs16", "xxe"):
        row = listed[site.url(f"/{name}.xml")]
        assert row["status"] == "error" and row["entries"] == 0, (name, row)
        assert site.url(f"/{name}.xml") in row["last_error"] and "entities" in row["last_error"], (name, row)
    assert listed[site.url("/good.xml")]["status"] == "active" and listed[site.url("/good.xml")]["entries"] == 1
    assert inside.requests == 0
    stored = " ".join(f"{t} {s}" for t, s in rows(sqlite_url, "select title, summary from entries"))
    assert "root:" not in stored and "lollol" not in stored and "INTERNAL-SECRET" not in stored


def test_entity_declarations_after_a_long_prolog_are_refused():
    from daemon.errors import FeedError
    from daemon.parse.feed import parse_feed

    doc = billion_laughs()
    declaration_end = doc.index(b"?>") + 2
    # a comment may stand between the XML declaration and the DOCTYPE; 70 KB of it hides the DOCTYPE from the check
    padded = doc[:declaration_end] + b"<!--" + b" " * 70_000 + b"-->" + doc[declaration_end:]
    with pytest.raises(FeedError, match="entit"):
        parse_feed(padded, "http://127.0.0.1/padded.xml")


# A feed well under the default fetch.max_bytes must not occupy a parser for hours. These inputs are sized so that the
# parser either finishes at once (a linear scan of the prolog) or runs for hours (backtracking regular expressions:
# the DOCTYPE pattern in daemon.parse.feed is exponential in unclosed "[]" pairs, 85 bytes here; feedparser's prolog
# patterns are quadratic in blank lines and in stray <!ENTITY lines, 2 MB here). The deadline only tells "finished"
# from "hung": its margin is several orders of magnitude either way.
HANGS = {
    "doctype brackets": b'<?xml version="1.0"?><!DOCTYPE rss' + b"[]" * 40 + b"[",
    "blank lines before the root": b'<?xml version="1.0"?>' + b"\n" * 2_000_000,
    "stray entity lines": b'<?xml version="1.0"?>' + b"\n<!ENTITY" * 200_000,
}
HANG_DEADLINE = 5.0


def test_parsing_cannot_be_held_up_by_the_prolog(tmp_path):
    feed = b'<rss version="2.0"><channel><title>t</title><item><title>story</title></item></channel></rss>'
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[2])
        from daemon.errors import FeedError
        from daemon.parse.feed import parse_feed
        data = open(sys.argv[1], "rb").read()
        try:
            parse_feed(data, "http://127.0.0.1/feed.xml")
        except FeedError:
            pass
        """
    )
    procs = {}
    for name, prolog in HANGS.items():
        path = tmp_path / f"{len(procs)}.xml"
        path.write_bytes(prolog + feed)
        procs[name] = subprocess.Popen([sys.executable, "-c", script, str(path), str(ROOT)])
    deadline = time.monotonic() + HANG_DEADLINE
    hung = []
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            hung.append(name)
            proc.kill()
            proc.wait()
    assert not hung, f"parse_feed still busy after {HANG_DEADLINE:g} s on: {', '.join(hung)}"
    assert all(proc.returncode == 0 for proc in procs.values())


# --- feed URLs that are not http(s) ------------------------------------------------------------------------------


BAD_FEED_URLS = [
    "ftp://example.com/feed.xml",
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/1",
    "javascript:alert(1)",
    "http:///feed.xml",
    "example.com/feed.xml",
]


def feed_count(db_path) -> int:
    if not db_path.exists():
        return 0
    return rows(f"sqlite:///{db_path}", "select count(*) from feeds")[0][0]


# Checked to fail without the protection: with daemon.feeds.check_feed_url returning the URL unchecked, `feeds add`
# exits 0 and stores the URL.
@pytest.mark.parametrize("url", BAD_FEED_URLS)
def test_feeds_add_refuses_a_non_http_url(sqlite_url, tmp_path, wiredesk, url):
    code, out, err = wiredesk("feeds", "add", url)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "is not an http(s) URL" in err and repr(url) in err
    assert feed_count(tmp_path / "wiredesk.db") == 0


# Checked to fail without the protection: with daemon.feeds.check_feed_url returning the URL unchecked, the poll
# stores both feeds and exits 0.
def test_config_feed_with_a_file_url_stops_before_anything_is_written(sqlite_url, tmp_path, wiredesk):
    with Site() as site:
        site.routes["/good.xml"] = (rss([("good story", None, "An ordinary story.")]),)
        write_config(tmp_path, [site.url("/good.xml"), "file:///etc/passwd"])
        code, out, err = wiredesk("poll", "--once")
    assert code == 2 and "polled" not in out
    assert len(err.strip().splitlines()) == 1
    assert "feeds #2" in err and "'file:///etc/passwd' is not an http(s) URL" in err
    assert site.requests == 0 and feed_count(tmp_path / "wiredesk.db") == 0


# Checked to fail without the protection: with the scheme check in daemon.cli.feeds.parse_opml removed (and
# check_feed_url returning the URL unchecked), the import adds the http feed and the file:// one.
def test_opml_import_with_a_file_url_imports_nothing(sqlite_url, tmp_path, wiredesk):
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>f</title></head><body>'
        '<outline type="rss" text="ok" xmlUrl="http://127.0.0.1:9/ok.xml"/>'
        '<outline type="rss" text="bad" xmlUrl="file:///etc/passwd"/></body></opml>'
    )
    code, out, err = wiredesk("feeds", "import", opml)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "file:///etc/passwd" in err and "not an http(s)" in err
    assert feed_count(tmp_path / "wiredesk.db") == 0
