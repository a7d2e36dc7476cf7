"""A full or read-only disk under a running daemon: it says so, keeps serving the digest, and recovers."""

import json
import signal
import subprocess
import threading

import pytest
from conftest import ROOT, postgres_url
from helpers import wait_until as wait_for
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
        ITEM.format(title=f"{name} {stem}", guid=f"{name}-{stem}", text=" ".join(paragraphs(stem))[:3000])
        for stem in stems
    )
    return FEED.format(name=name, items=items)


def digest_items(port, proc):
    status, body = wait_http(f"http://127.0.0.1:{port}/digest.json?days=100000", proc)
    assert status == 200
    return json.loads(body)["items"]


def wait_until(predicate, seconds, proc):
    """``predicate`` holds within ``seconds``; fails at once if the daemon exits."""

    def check() -> bool:
        if proc.poll() is not None:
            raise AssertionError("the daemon exited: " + proc.communicate()[1][-2000:])
        return predicate()

    return wait_for(check, timeout=seconds)


@pytest.fixture
def readonly_role():
    """PostgreSQL with a role whose write permission can be taken away and given back under a running daemon."""
    base = postgres_url()
    if base is None:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    import uuid

    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE ROLE {name} LOGIN"))
        c.execute(sa.text(f"CREATE SCHEMA {name} AUTHORIZATION postgres"))
        c.execute(sa.text(f"GRANT USAGE ON SCHEMA {name} TO {name}"))
    owner_url = f"{base}?options=-csearch_path%3D{name}"
    role_url = owner_url.replace("postgres@", f"{name}@", 1)

    def set_writable(on: bool):
        verb = "GRANT" if on else "REVOKE"
        prep = "TO" if on else "FROM"
        with admin.connect() as c:
            c.execute(sa.text(f"{verb} INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {name} {prep} {name}"))
            c.execute(sa.text(f"{verb} USAGE ON ALL SEQUENCES IN SCHEMA {name} {prep} {name}"))

    def grant_read():
        with admin.connect() as c:
            c.execute(sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {name} TO {name}"))

    try:
        yield owner_url, role_url, set_writable, grant_read
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
            c.execute(sa.text(f"DROP OWNED BY {name}"))
            c.execute(sa.text(f"DROP ROLE {name}"))
        admin.dispose()


def late_feed_server(httpserver):
    """An early feed with one story; a late one that fails until switched on, to bring news while storage is in trouble."""
    late_ok = {"on": False}

    def late_handler(request):
        from werkzeug import Response

        if not late_ok["on"]:
            return Response("busy", status=500)
        return Response(feed_body("late", ["202_xi"]), content_type="application/rss+xml")

    httpserver.expect_request("/early.xml").respond_with_data(
        feed_body("early", ["200_nk"]), content_type="application/rss+xml"
    )
    httpserver.expect_request("/late.xml").respond_with_handler(late_handler)
    return httpserver.url_for("").rstrip("/"), late_ok


def write_config(tmp_path, base, port):
    (tmp_path / "wiredesk.toml").write_text(
        "\n".join(
            [
                "[fetch]",
                'allow_networks = ["127.0.0.0/8"]',
                "fetch_articles = false",
                "[schedule]",
                "backoff_minutes = 0.02",
                "max_backoff_minutes = 0.05",
                "parse_workers = 1",
                "tick_seconds = 1",
                "[server]",
                f"port = {port}",
                "[[feeds]]",
                f'url = "{base}/early.xml"',
                "[[feeds]]",
                f'url = "{base}/late.xml"',
            ]
        )
        + "\n"
    )


class Output:
    """What a process writes to one of its pipes, read as it comes (so a test can wait on a line)."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line)

    def says(self, words: str) -> bool:
        return any(words in line for line in list(self.lines))

    def text(self) -> str:
        self._thread.join(timeout=20)
        return "".join(self.lines)


def ride_out_trouble(tmp_path, db_url, port, late_ok, break_storage, mend_storage):
    proc = start_run(tmp_path, {"WIREDESK_DATABASE_URL": db_url})
    out, err = Output(proc.stdout), Output(proc.stderr)
    try:
        assert wait_until(lambda: len(digest_items(port, proc)) == 1, 60, proc), "the first feed's story is served"
        break_storage()
        late_ok["on"] = True
        # the daemon meets the trouble (it tries again every tick), says so, and keeps serving what it has
        assert wait_until(lambda: err.says("database not writable"), 60, proc), err.text()[-3000:]
        assert len(digest_items(port, proc)) == 1
        status, _ = wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        assert status == 200
        # storage recovers: the news lands without a restart
        mend_storage()
        assert wait_until(lambda: len(digest_items(port, proc)) == 2, 60, proc), "recovered once storage did"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    stderr = err.text()
    out.text()
    assert proc.returncode == 0, stderr
    said = [line for line in stderr.splitlines() if "database not writable" in line]
    assert len(said) == 1, stderr[-3000:]  # said once, not every tick
    assert "writable again" in stderr
    assert "Traceback" not in stderr
    return said[0]


@pytest.mark.slow
def test_full_disk_under_a_running_daemon(tmp_path, small_disk, httpserver):
    base, late_ok = late_feed_server(httpserver)
    port = free_port()
    write_config(tmp_path, base, port)
    filler = small_disk / "filler"

    def fill():
        with open(filler, "wb", buffering=0) as fh:  # to the last byte (unbuffered: no failing flush on close)
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass

    line = ride_out_trouble(tmp_path, f"sqlite:///{small_disk / 'wiredesk.db'}", port, late_ok, fill, filler.unlink)
    assert "full" in line


@pytest.mark.slow
def test_read_only_database_under_a_running_daemon(tmp_path, httpserver, readonly_role, monkeypatch):
    owner_url, role_url, set_writable, grant_read = readonly_role
    base, late_ok = late_feed_server(httpserver)
    port = free_port()
    write_config(tmp_path, base, port)
    monkeypatch.setenv("WIREDESK_DATABASE_URL", owner_url)
    from daemon.cli.main import main

    assert main(["init"]) == 0  # tables owned by the administrator; the daemon runs as a role it can restrict
    grant_read()
    set_writable(True)
    line = ride_out_trouble(tmp_path, role_url, port, late_ok, lambda: set_writable(False), lambda: set_writable(True))
    assert "permission denied" in line
