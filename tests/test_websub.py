"""WebSub against a small hub on loopback: subscribe, verify intent, push, a bad signature ignored, lease renewal."""

import hashlib
import hmac
import os
import signal
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from helpers import wait_until
from test_service import free_port, start_run, wait_for_story

from daemon.parse.feed import parse_feed, websub_links
from daemon.websub import signature_ok

LEASE = 86400  # seconds the hub grants


class Hub:
    """A WebSub hub of a few lines: takes subscriptions, verifies each with a challenge, pushes when told."""

    def __init__(self):
        self.subscriptions: list[dict] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                threading.Thread(target=hub.verify, args=(form,), daemon=True).start()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"

    def verify(self, form: dict) -> None:
        challenge = os.urandom(8).hex()
        query = urllib.parse.urlencode(
            {
                "hub.mode": form["hub.mode"],
                "hub.topic": form["hub.topic"],
                "hub.challenge": challenge,
                "hub.lease_seconds": LEASE,
            }
        )
        try:
            with urllib.request.urlopen(f"{form['hub.callback']}?{query}", timeout=5) as r:
                echoed = r.read().decode()
        except OSError:
            echoed = None
        self.subscriptions.append({**form, "verified": echoed == challenge})

    def push(self, callback: str, body: bytes, secret: str) -> int:
        sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(
            callback, data=body, headers={"Content-Type": "application/rss+xml", "X-Hub-Signature": sig}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status


def rss(base: str, hub: str, guids: list[str]) -> str:
    items = "".join(
        f"<item><title>Report {g}</title><link>{base}/{g}.html</link><guid>{g}</guid>"
        f"<pubDate>Sat, 13 Apr 2024 10:00:00 GMT</pubDate><description>The harbour gates failed "
        f"at dawn, the port authority said in report {g}.</description></item>"
        for g in guids
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f"<title>Alpha</title><link>{base}/</link><description>d</description>"
        f'<atom:link rel="hub" href="{hub}"/><atom:link rel="self" href="{base}/alpha.xml"/>{items}'
        f"</channel></rss>"
    )


def _wait(what: str, check, seconds=30):
    assert wait_until(lambda: bool(check()), seconds), what
    return check()


def test_hub_and_self_links_are_read_from_the_feed_and_the_link_header():
    body = rss("https://a.example", "https://hub.example/", ["1"]).encode()
    parsed = parse_feed(body, "https://a.example/alpha.xml")
    assert (parsed.hub_url, parsed.self_url) == ("https://hub.example/", "https://a.example/alpha.xml")
    header = {"Link": '<https://other-hub.example/>; rel="hub", <https://a.example/feed>; rel="self"'}
    assert websub_links([], header) == ("https://other-hub.example/", "https://a.example/feed")
    assert websub_links([{"rel": "hub", "href": "javascript:alert(1)"}], {}) == (None, None)


def test_signatures():
    body = b"<rss/>"
    good = "sha1=" + hmac.new(b"s3cret", body, hashlib.sha1).hexdigest()
    assert signature_ok("s3cret", body, good)
    assert not signature_ok("other", body, good)
    assert not signature_ok("s3cret", body + b" ", good)
    assert not signature_ok("s3cret", body, "md5=abc") and not signature_ok("s3cret", body, None)


@pytest.mark.slow
def test_websub_round_trip(db_url, tmp_path, httpserver):
    hub = Hub()
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/alpha.xml").respond_with_data(
        rss(base, hub.url, ["first"]), content_type="application/rss+xml"
    )
    port = free_port()
    (tmp_path / "wiredesk.toml").write_text(
        '[fetch]\nallow_networks = ["127.0.0.0/8"]\ntimeout = 5.0\nfetch_articles = false\n'
        f'[server]\nport = {port}\nbase_url = "http://127.0.0.1:{port}/"\n'
        "[schedule]\nparse_workers = 1\ntick_seconds = 0.5\n"
        f'[[feeds]]\nurl = "{base}/alpha.xml"\n'
    )
    env = {
        "WIREDESK_DATABASE_URL": db_url,
        "XDG_DATA_HOME": str(tmp_path / "d"),
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
    }
    engine = sa.create_engine(db_url)

    def feed():
        with engine.connect() as conn:
            return conn.execute(sa.text("select * from feeds")).one()

    def guids():
        with engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.text("select guid from entries"))}

    proc = start_run(tmp_path, env)
    try:
        wait_for_story(port, proc)
        sub = _wait(
            "the hub never got a verified subscription",
            lambda: next((s for s in hub.subscriptions if s["verified"]), None),
        )
        assert sub["hub.topic"] == f"{base}/alpha.xml" and sub["hub.callback"].startswith(
            f"http://127.0.0.1:{port}/websub/{feed().id}/"
        )
        assert feed().websub_state == "active"
        # a push with a signature made with another secret is acknowledged and ignored
        bad = rss(base, hub.url, ["forged"]).encode()
        assert hub.push(sub["hub.callback"], bad, "not-the-secret") == 202
        # a real push is stored within seconds, through the same pipeline as a poll
        started = time.monotonic()
        assert hub.push(sub["hub.callback"], rss(base, hub.url, ["pushed", "first"]).encode(), sub["hub.secret"]) == 202
        _wait("the pushed entry was never stored", lambda: "pushed" in guids(), seconds=20)
        assert time.monotonic() - started < 10
        assert "forged" not in guids()
        granted = [feed().websub_lease_until, feed().websub_requested_at]
        if isinstance(granted[0], str):  # SQLite gives the text it stores
            granted = [datetime.fromisoformat(t) for t in granted]
        assert (granted[0] - granted[1]).total_seconds() == LEASE
        # the lease is renewed before it lapses (here: its end moved to within the renewal margin): the hub is asked
        # again, with a new callback, and verifies again
        with engine.begin() as conn:
            conn.execute(sa.text("update feeds set websub_lease_until = websub_requested_at"))
        _wait("the lease was never renewed", lambda: sum(s["verified"] for s in hub.subscriptions) >= 2, seconds=30)
        assert len({s["hub.callback"] for s in hub.subscriptions}) == len(hub.subscriptions)
        # polling goes on as a safety net at the slow end of the schedule
        assert feed().interval_source == "websub"
        # a callback for a feed without a subscription is gone for the hub
        req = urllib.request.Request(f"http://127.0.0.1:{port}/websub/999999", data=b"x")
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError("an unknown subscription took a push")
        except urllib.error.HTTPError as exc:
            assert exc.code == 410
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        hub.server.shutdown()
        engine.dispose()
    assert proc.returncode == 0, err
