"""A full or read-only disk under a running daemon: it says so, keeps serving the digest, and recovers."""

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from test_service import free_port, start_run, wait_http


def paragraphs(stem):
    path = next((ROOT / "seeds").rglob(f"{stem}*.txt"))
    return [p.strip() for p in path.read_text().split("\n\n") if len(p.strip()) > 40]

FEED = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{name}</title>
<link>http://example.com/</link><description>d</description>{items}</channel></rss>"""
ITEM = "<item><title>{title}</title><guid>{guid}</guid><pubDate>Sat, 13 Apr 2024 10:00:00 GMT</pubDate><description>{text}</description></item>"


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {res.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def feed_body(name, stems):
    items = "".join(
        ITEM.format(title=f"{name} {stem}", guid=f"{name}-{stem}", text=" ".join(paragraphs(stem))[:3000]) for stem in stems
    )
    return FEED.format(name=name, items=items)


def digest_items(port, proc):
    status, body = wait_http(f"http://127.0.0.1:{port}/digest.json?days=100000", proc)
    assert status == 200
    return json.loads(body)["items"]


def wait_until(predicate, seconds, proc):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("the daemon exited: " + proc.communicate()[1][-2000:])
        if predicate():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_disk_trouble_under_a_running_daemon(tmp_path, small_disk, httpserver, trouble):
    # feed "late" fails at first and comes back later, so that it has news exactly while the disk is in trouble
    late_ok = {"on": False}

    def late_handler(request):
        from werkzeug import Response

        if not late_ok["on"]:
            return Response("busy", status=500)
        return Response(feed_body("late", ["202_xi"]), content_type="application/rss+xml")

    httpserver.expect_request("/early.xml").respond_with_data(feed_body("early", ["200_nk"]), content_type="application/rss+xml")
    httpserver.expect_request("/late.xml").respond_with_handler(late_handler)
    base = httpserver.url_for("").rstrip("/")
    port = free_port()
    (tmp_path / "wiredesk.toml").write_text(
        "\n".join([
            "[fetch]", 'allow_networks = ["127.0.0.0/8"]', "fetch_articles = false",
            "[schedule]", "backoff_minutes = 0.02", "max_backoff_minutes = 0.05", "parse_workers = 1", "tick_seconds = 1",
            "[server]", f"port = {port}",
            "[[feeds]]", f'url = "{base}/early.xml"', "[[feeds]]", f'url = "{base}/late.xml"',
        ]) + "\n"
    )
    db = small_disk / "wiredesk.db"
    proc = start_run(tmp_path, {"WIREDESK_DATABASE_URL": f"sqlite:///{db}"})
    filler = small_disk / "filler"
    try:
        assert wait_until(lambda: len(digest_items(port, proc)) == 1, 60, proc), "the first feed's story is served"
        if trouble == "full":
            with open(filler, "wb") as fh:  # fill the disk to the last byte
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                except OSError:
                    pass
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        late_ok["on"] = True
        # the daemon meets the trouble (the late feed is retried every second), and keeps serving what it has
        time.sleep(4)
        assert len(digest_items(port, proc)) == 1
        status, _ = wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        assert status == 200
        # the disk recovers: the pending news lands without a restart
        if trouble == "full":
            filler.unlink()
        else:
            subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        assert wait_until(lambda: len(digest_items(port, proc)) == 2, 60, proc), "recovered once the disk did"
    finally:
        if trouble != "full":
            subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], capture_output=True)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    said = [l for l in err.splitlines() if "not writable" in l or "cannot store" in l]
    assert said, err[-3000:]
    assert "Traceback" not in err
