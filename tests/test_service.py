"""The service end to end over loopback: poll --once, run, stop, the instance lock, systemd notify."""

import functools
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT
from helpers import POLL_SECONDS, free_port, stderr_on_failure, wait_until, wiredesk_exe

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{title}</title><link>{base}/</link><description>test feed</description>
{items}
</channel></rss>"""
ITEM = """<item><title>{title}</title><link>{link}</link><guid>{guid}</guid>
<pubDate>{date}</pubDate><description>{summary}</description></item>"""
PAGE = """<html><head><title>{title}</title></head><body><nav><a href="/">Home</a> <a href="/world">World</a></nav>
<div id="cookie">We use cookies. Accept all cookies?</div>
<article><h1>{title}</h1>{paras}</article>
<footer>Copyright Example News. All rights reserved.</footer></body></html>"""


def seed_paragraphs(stem: str) -> list[str]:
    text = next((ROOT / "seeds").glob(f"{stem}_*.txt")).read_text()
    return [p.strip() for p in text.split("\n\n") if len(p.strip()) > 80]


def serve_farm(httpserver, feeds: dict[str, list[tuple[str, str]]]):
    """feeds: name -> [(article slug, seed stem)]. Serves /<name>.xml and /<name>/<slug>.html."""
    base = httpserver.url_for("").rstrip("/")
    for name, items in feeds.items():
        rendered = []
        for i, (slug, stem) in enumerate(items):
            paras = seed_paragraphs(stem)
            title = f"{name} {slug}"
            link = f"{base}/{name}/{slug}.html"
            rendered.append(
                ITEM.format(
                    title=title,
                    link=link,
                    guid=f"{name}-{slug}",
                    date=f"Sat, 13 Apr 2024 {10 + i:02d}:00:00 GMT",
                    summary=paras[0][:150],
                )
            )
            httpserver.expect_request(f"/{name}/{slug}.html").respond_with_data(
                PAGE.format(title=title, paras="".join(f"<p>{p}</p>" for p in paras)), content_type="text/html"
            )
        httpserver.expect_request(f"/{name}.xml").respond_with_data(
            RSS.format(title=name, base=base, items="".join(rendered)), content_type="application/rss+xml"
        )
    return base


def write_config(tmp_path, base, feeds, port=0):
    lines = [
        "[fetch]",
        'allow_networks = ["127.0.0.0/8", "::1/128"]',
        "timeout = 5.0",
        "[server]",
        f"port = {port}",
        "[schedule]",
        "parse_workers = 1",
    ]
    for name in feeds:
        lines += ["[[feeds]]", f'url = "{base}/{name}.xml"', 'folder = "News"']
    cfg = tmp_path / "wiredesk.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def test_poll_once_over_loopback(db_url, tmp_path, httpserver, wiredesk):
    feeds = {"alpha": [("zhao", "000"), ("ap", "002")], "beta": [("herald", "001")]}
    base = serve_farm(httpserver, feeds)
    write_config(tmp_path, base, feeds)
    code, out, err = wiredesk("poll", "--once")
    assert code == 0, err
    assert "polled 2 feeds: 2 ok" in out and "3 new articles" in out
    code, out, _ = wiredesk("feeds", "list", "--json")
    listed = json.loads(out)
    assert {f["status"] for f in listed} == {"active"} and all(f["next_poll"] for f in listed)
    assert sum(f["entries"] for f in listed) == 3
    # nothing is due now: a second poll touches no feed
    code, out, _ = wiredesk("poll", "--once")
    assert "polled 0 feeds" in out
    code, out, _ = wiredesk("stories", "--json")
    stories = json.loads(out)
    assert len(stories) == 1 and len(stories[0]["articles"]) == 3


def start_run(tmp_path, env_extra=None, new_session=False):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.Popen(
        [*wiredesk_exe(), "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )


def wait_for_story(port, proc, seconds=60):
    """The digest's JSON once the first poll's story shows in it (or at the deadline)."""
    bodies = []

    def shown() -> bool:
        bodies.append(wait_http(f"http://127.0.0.1:{port}/digest.json?days=100000", proc)[1])
        return bool(json.loads(bodies[-1])["items"])

    wait_until(shown, timeout=seconds)
    return bodies[-1]


def wait_http(url, proc, seconds=30):
    """The first answer of ``url`` (status, body); fails when the service exits or never answers."""
    answers = []

    def answered() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"wiredesk run exited early: {proc.communicate()[1]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                answers.append((r.status, r.read()))
                return True
        except OSError:
            return False

    if not wait_until(answered, timeout=seconds):
        raise AssertionError(f"{url} never answered")
    return answers[0]


@pytest.mark.slow
def test_run_serves_and_stops_cleanly(db_url, tmp_path, httpserver):
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
        status, body = wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        assert status == 200 and body.startswith(b"ok")
        # the first poll runs at start; wait until the story shows in the digest
        body = wait_for_story(port, proc)
        assert json.loads(body)["items"], "the polled story reached the digest"
        if db_url.startswith("sqlite"):
            # a second instance on the same SQLite database is refused with one clear line
            second = subprocess.run(
                [*wiredesk_exe(), "run", "--port", str(free_port())],
                cwd=tmp_path,
                env=dict(os.environ, **env),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 2
            assert "already using" in second.stderr and len(second.stderr.strip().splitlines()) == 1
        else:
            # on PostgreSQL a second worker joins and serves the same digest
            port2 = free_port()
            second = subprocess.Popen(
                [*wiredesk_exe(), "run", "--port", str(port2)],
                cwd=tmp_path,
                env=dict(os.environ, **env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                _, body2 = wait_http(f"http://127.0.0.1:{port2}/digest.json?days=100000", second)
                assert json.loads(body2)["items"] == json.loads(body)["items"]
            finally:
                second.send_signal(signal.SIGTERM)
                second.communicate(timeout=15)
            assert second.returncode == 0
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10
    # the schedule carries on after a restart: next poll times were stored
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        assert all(row[0] for row in conn.execute(sa.text("select next_poll_at from feeds")))
    engine.dispose()


@pytest.mark.slow
def test_systemd_unit_and_notify_protocol(db_url, tmp_path, httpserver):
    unit = ROOT / "contrib" / "wiredesk.service"
    text = unit.read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text
    analyze = (
        subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        if _has("systemd-analyze")
        else None
    )
    if analyze is not None:
        problems = [
            line
            for line in analyze.stderr.splitlines()
            if "wiredesk.service" in line and "Command" not in line and "executable" not in line
        ]
        assert not problems, analyze.stderr
    feeds = {"alpha": [("zhao", "000")]}
    base = serve_farm(httpserver, feeds)
    port = free_port()
    write_config(tmp_path, base, feeds, port=port)
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(POLL_SECONDS)
    env = {"WIREDESK_DATABASE_URL": db_url, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "2000000"}
    proc = start_run(tmp_path, env)
    messages: list[str] = []

    def received(wanted: str) -> bool:
        try:
            messages.append(sock.recv(1024).decode())
        except TimeoutError:
            # what it sent before it exited is still in the socket: read first, then ask whether it runs
            if proc.poll() is not None:
                raise AssertionError(f"wiredesk run exited before it sent {wanted}; it sent {messages}") from None
        return wanted in messages

    with stderr_on_failure(proc):
        for wanted in ("READY=1", "WATCHDOG=1"):
            assert wait_until(functools.partial(received, wanted), timeout=300), f"no {wanted}: {messages}"
        proc.send_signal(signal.SIGINT)
        # stopping is observable: STOPPING=1, then the exit. No second signal: one sent while the service shuts
        # down, after its event loop gave the signals back, would kill it instead of stopping it
        assert wait_until(functools.partial(received, "STOPPING=1"), timeout=300), f"no STOPPING=1: {messages}"
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    sock.close()


def _group_members(pgid: int) -> list[str]:
    """Command lines of the live processes in process group `pgid` (zombies are not alive)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:120])
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize("whom", ["main process", "whole group"])
def test_stopping_leaves_no_process_behind(db_url, tmp_path, httpserver, whom):
    """With parse worker processes: when `wiredesk run` exits nothing of it is left, so a service manager waiting
    for the service's processes to end (systemd's control group) is done as soon as the main process is."""
    feeds = {"alpha": [("zhao", "000"), ("ap", "002")], "beta": [("herald", "001")]}
    base = serve_farm(httpserver, feeds)
    port = free_port()
    write_config(tmp_path, base, feeds, port=port)
    cfg = tmp_path / "wiredesk.toml"
    cfg.write_text(cfg.read_text().replace("parse_workers = 1", "parse_workers = 2"))
    proc = start_run(tmp_path, {"WIREDESK_DATABASE_URL": db_url}, new_session=True)
    try:
        wait_for_story(port, proc)
        helpers = _group_members(proc.pid)
        assert any("forkserver" in c for c in helpers), helpers  # the parse workers' processes are running
    finally:
        started = time.monotonic()
        if whom == "main process":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGTERM)  # what systemd does to the unit's control group
        out, err = proc.communicate(timeout=15)
    # multiprocessing's resource tracker ends when it reads end-of-file from the exited process: a moment, no more
    wait_until(lambda: not _group_members(proc.pid), timeout=3)
    left = _group_members(proc.pid)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10
    assert left == [], left


def _has(cmd):
    from shutil import which

    return which(cmd) is not None


def test_copy_index_in_redis(db_url, tmp_path, httpserver, wiredesk):
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1)
        client.ping()
    except Exception:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    feeds = {"alpha": [("zhao", "000"), ("ap", "002")], "beta": [("herald", "001")]}
    base = serve_farm(httpserver, feeds)
    cfg = write_config(tmp_path, base, feeds)
    with cfg.open("a") as fh:
        fh.write('[redis]\nurl = "redis://127.0.0.1:6379/0"\n')
    from daemon import app, config

    basename = app.lsh_storage(config.load(str(cfg)))["basename"]
    for key in client.scan_iter(match=basename + b"*"):
        client.delete(key)
    try:
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
        assert "3 new articles" in out
        keys = list(client.scan_iter(match=basename + b"*"))
        assert any(k.startswith(basename + b"_bucket") for k in keys), "the copy index was written to Redis"
        assert any(k.startswith(basename + b"_stories:") for k in keys), "the story index was written to Redis"
        assert client.get(basename + b"_stories_applied") == b"3"

        # The database starts again at the same URL while Redis keeps the old keys: they are found out and rebuilt.
        import sqlalchemy as sa

        engine = sa.create_engine(db_url)
        with engine.begin() as c:
            for table in ("memberships", "stories", "articles", "entries", "feeds"):
                c.execute(sa.text(f"delete from {table}"))
        code, out, err = wiredesk("poll", "--once")
        assert code == 0, err
        assert "3 new articles" in out
        assert "clearing them and rebuilding" in err
        with engine.connect() as c:
            stories = {r[0].encode() for r in c.execute(sa.text("select id from stories"))}
            articles = {str(r[0]).encode() for r in c.execute(sa.text("select id from articles"))}
        engine.dispose()
        listed = {
            v
            for k in client.scan_iter(match=basename + b"_stories:*")
            if client.type(k) == b"list"
            for v in client.lrange(k, 0, -1)
        }
        assert listed and listed <= stories
        assert client.get(basename + b"_stories_applied") == b"3"
        import pickle

        indexed = {pickle.loads(k) for k in client.hkeys(basename + b"_keys")}
        assert {a.decode() for a in articles} == indexed
    finally:
        for key in client.scan_iter(match=basename + b"*"):
            client.delete(key)
