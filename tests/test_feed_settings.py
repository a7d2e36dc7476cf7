"""Feeds that keep up: hourly at worst, a feed's own settings, polling one feed now, discovery, exit codes."""

import json
import os
import signal
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from helpers import wait_until
from test_service import free_port, serve_farm, start_run, wait_for_story, wiredesk_exe, write_config

HOME = """<html><head><title>Example News</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="Top stories" href="/alpha.xml">
<link rel="alternate" type="application/atom+xml" title="World" href="{base}/beta.xml">
<link rel="alternate" type="application/feed+json" href="/feed.json">
</head><body><p>Welcome</p></body></html>"""


def _ours(err: str) -> list[str]:
    """wiredesk's lines on stderr (the loopback server's request log shares it in-process)."""
    return [line for line in err.strip().splitlines() if "werkzeug" not in line]


def _feeds(db_url):
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {r.url: r for r in conn.execute(sa.text("select * from feeds"))}
    finally:
        engine.dispose()


def _aware(moment):
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def test_a_rarely_publishing_feed_is_next_polled_within_the_hour(db_url, tmp_path, httpserver, wiredesk):
    feeds = {"alpha": [("zhao", "000")]}  # one entry, dated April 2024: no rhythm to adapt to but silence
    base = serve_farm(httpserver, feeds)
    write_config(tmp_path, base, feeds)
    before = datetime.now(timezone.utc)
    code, out, err = wiredesk("poll", "--once")
    assert code == 0, err
    (row,) = json.loads(wiredesk("feeds", "list", "--json")[1])
    assert row["interval_minutes"] <= 60 and row["interval_source"] == "adaptive"
    assert _aware(row["next_poll"]) <= before + timedelta(minutes=61)


def test_edit_then_the_interval_holds(db_url, tmp_path, httpserver, wiredesk):
    feeds = {"alpha": [("zhao", "000"), ("ap", "002")]}
    base = serve_farm(httpserver, feeds)
    write_config(tmp_path, base, {})
    url = f"{base}/alpha.xml"
    assert wiredesk("feeds", "add", url, "--folder", "News")[0] == 0
    code, out, err = wiredesk(
        "feeds", "edit", url, "--folder", "Korea", "--title", "Alpha wire", "--interval", "240", "--no-fetch-articles"
    )
    assert code == 0, err
    assert "interval 240 min" in out and "not fetched" in out
    code, out, err = wiredesk("poll", "--once", "--all")
    assert code == 0, err
    (row,) = json.loads(wiredesk("feeds", "list", "--json")[1])
    assert (row["title"], row["folder"]) == ("Alpha wire", "Korea")
    assert row["interval_minutes"] == 240 and row["interval_source"] == "user" and row["fetch_articles"] is False
    polled = _feeds(db_url)[url]
    gap = _aware(polled.next_poll_at) - _aware(polled.last_polled_at)
    assert gap == timedelta(minutes=240)
    # no article page was asked for: the feed's own content was used
    assert not [r for r, _ in httpserver.log if r.path.endswith(".html")]
    # back to the adaptive schedule: within the hour again after the next poll
    assert wiredesk("feeds", "edit", url, "--interval", "auto")[0] == 0
    assert wiredesk("poll", "--once", "--all")[0] == 0
    (row,) = json.loads(wiredesk("feeds", "list", "--json")[1])
    assert row["interval_source"] == "adaptive" and row["interval_minutes"] <= 60


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--interval", "0"], "1 to 43200"),
        (["--interval", "soon"], "1 to 43200"),
        ([], "nothing to change"),
    ],
)
def test_edit_refuses_bad_values_in_one_line(db_url, wiredesk, argv, expected):
    assert wiredesk("feeds", "add", "https://example.com/feed.xml")[0] == 0
    code, _, err = wiredesk("feeds", "edit", "https://example.com/feed.xml", *argv)
    assert code == 2 and expected in err and len(_ours(err)) == 1
    code, _, err = wiredesk("feeds", "edit", "https://example.com/other.xml", "--interval", "5")
    assert code == 2 and "is not a feed" in err


def test_config_settings_apply_and_list_shows_them_before_the_first_poll(db_url, tmp_path, wiredesk):
    (tmp_path / "wiredesk.toml").write_text(
        '[[feeds]]\nurl = "https://example.com/a.xml"\ntitle = "Alpha"\nfolder = "Wire"\ninterval_minutes = 15\n'
        "fetch_articles = false\n"
    )
    (row,) = json.loads(wiredesk("feeds", "list", "--json")[1])
    assert (row["title"], row["folder"], row["interval_minutes"], row["interval_source"], row["fetch_articles"]) == (
        "Alpha",
        "Wire",
        15,
        "user",
        False,
    )
    (tmp_path / "wiredesk.toml").write_text('[[feeds]]\nurl = "https://example.com/a.xml"\ninterval_minutes = 0\n')
    code, _, err = wiredesk("feeds", "list")
    assert code == 2 and "interval_minutes" in err and "1 to 43200" in err


def test_feeds_poll_makes_one_request_now(db_url, tmp_path, httpserver, wiredesk):
    feeds = {"alpha": [("zhao", "000")], "beta": [("herald", "001")]}
    base = serve_farm(httpserver, feeds)
    write_config(tmp_path, base, feeds)
    assert wiredesk("poll", "--once")[0] == 0
    httpserver.clear_log()
    # nothing is due, yet the feed asked for is polled now, and only it
    code, out, err = wiredesk("feeds", "poll", f"{base}/alpha.xml")
    assert code == 0, err and "polled 1 feeds" in out
    assert [r.path for r, _ in httpserver.log] == ["/alpha.xml"]
    code, _, err = wiredesk("feeds", "poll", f"{base}/nope.xml")
    assert code == 2 and "is not a feed" in err


def test_discovery_from_a_page_with_two_feed_links(db_url, tmp_path, httpserver, wiredesk):
    base = serve_farm(httpserver, {"alpha": [("zhao", "000")], "beta": [("herald", "001")]})
    httpserver.expect_request("/").respond_with_data(HOME.format(base=base), content_type="text/html")
    write_config(tmp_path, base, {})
    code, out, err = wiredesk("feeds", "add", f"{base}/")
    assert code == 0, err
    assert f"added its RSS feed {base}/alpha.xml (Top stories)" in out and "--all" in out
    assert [r["url"] for r in json.loads(wiredesk("feeds", "list", "--json")[1])] == [f"{base}/alpha.xml"]
    code, out, err = wiredesk("feeds", "add", f"{base}/", "--all")
    assert code == 0, err and f"{base}/beta.xml" in out
    assert {r["url"] for r in json.loads(wiredesk("feeds", "list", "--json")[1])} == {
        f"{base}/alpha.xml",
        f"{base}/beta.xml",
    }
    # a feed's own URL is added as it is
    assert wiredesk("feeds", "remove", f"{base}/beta.xml")[0] == 0
    code, out, _ = wiredesk("feeds", "add", f"{base}/beta.xml")
    assert code == 0 and out.strip() == f"added {base}/beta.xml"


def test_discovery_from_a_page_without_feeds_is_one_clear_line(db_url, tmp_path, httpserver, wiredesk):
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/plain").respond_with_data(
        "<html><head><title>x</title></head><body>hi</body></html>", content_type="text/html"
    )
    write_config(tmp_path, base, {})
    code, _, err = wiredesk("feeds", "add", f"{base}/plain")
    assert code == 2 and "links no RSS or Atom feed" in err and len(_ours(err)) == 1
    assert json.loads(wiredesk("feeds", "list", "--json")[1]) == []


def test_poll_once_exits_1_when_every_feed_failed(db_url, tmp_path, httpserver, wiredesk):
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/a.xml").respond_with_data("oops", status=500)
    httpserver.expect_request("/b.xml").respond_with_data("not a feed at all", content_type="text/plain")
    write_config(tmp_path, base, {})
    (tmp_path / "wiredesk.toml").write_text(
        (tmp_path / "wiredesk.toml").read_text() + f'[[feeds]]\nurl = "{base}/a.xml"\n[[feeds]]\nurl = "{base}/b.xml"\n'
    )
    code, out, err = wiredesk("poll", "--once")
    assert code == 1 and "polled 2 feeds: 0 ok, 2 failed" in out and "every feed polled failed" in err


@pytest.mark.slow
def test_poll_once_beside_a_running_service_on_sqlite(db_url, tmp_path, httpserver, wiredesk):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only: PostgreSQL workers share the database")
    feeds = {"alpha": [("zhao", "000"), ("ap", "002")], "beta": [("herald", "001")]}
    base = serve_farm(httpserver, feeds)
    port = free_port()
    write_config(tmp_path, base, feeds, port=port)
    env = {
        "WIREDESK_DATABASE_URL": db_url,
        "XDG_DATA_HOME": str(tmp_path / "d"),
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
    }
    proc = start_run(tmp_path, env)
    try:
        wait_for_story(port, proc)
        before = {u: r.last_polled_at for u, r in _feeds(db_url).items()}

        def second(*argv):
            done = subprocess.run(
                [*wiredesk_exe(), *argv],
                cwd=tmp_path,
                env=dict(os.environ, **env),
                capture_output=True,
                text=True,
                timeout=120,
            )
            return done.returncode, done.stdout, done.stderr

        code, out, err = second("poll", "--once", "--all")
        assert code == 2 and "wiredesk run (pid" in err and "feeds poll" in err
        assert len(err.strip().splitlines()) == 1 and "disk" not in err
        # feeds poll goes through the service: the feed is made due and the service polls it at its next tick
        code, out, err = second("feeds", "poll", f"{base}/alpha.xml")
        assert code == 0 and "queued 1 feed for wiredesk run" in out, err
        polled = wait_until(lambda: _feeds(db_url)[f"{base}/alpha.xml"].last_polled_at != before[f"{base}/alpha.xml"])
        assert polled, "the service never polled the queued feed"
        assert _feeds(db_url)[f"{base}/beta.xml"].last_polled_at == before[f"{base}/beta.xml"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    code, out, _ = wiredesk("stories", "--json")
    assert len(json.loads(out)) == 1  # nothing lost
