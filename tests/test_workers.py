"""Several workers on one PostgreSQL database: feeds shared through leases, one story decision at a time."""

import os
import signal
import subprocess

import pytest
import sqlalchemy as sa
from consistency import stored_and_replayed
from farm import Farm
from helpers import expire_leases, wait_until
from test_crash import check_invariants, snapshot, wiredesk_exe

from daemon.app import semantic_embedder


@pytest.fixture
def pg_url(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("several workers share a PostgreSQL database; SQLite takes one")
    return db_url


def write_config(tmp_path, farm, lease_seconds=600, redis_url=""):
    lines = [
        "[fetch]",
        'allow_networks = ["127.0.0.0/8"]',
        "[schedule]",
        "parse_workers = 1",
        f"lease_seconds = {lease_seconds}",
    ]
    if redis_url:
        lines += ["[redis]", f'url = "{redis_url}"']
    for u in farm.urls():
        lines += ["[[feeds]]", f'url = "{u}"']
    (tmp_path / "wiredesk.toml").write_text("\n".join(lines) + "\n")


def stories(url):
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = c.execute(
            sa.text("select m.story_id, a.url from memberships m join articles a on a.id = m.article_id order by m.seq")
        ).all()
        seqs = [r[0] for r in c.execute(sa.text("select seq from memberships order by seq"))]
    engine.dispose()
    groups: dict[str, set] = {}
    for sid, url in rows:
        groups.setdefault(sid, set()).add(url)
    return sorted(sorted(g) for g in groups.values()), seqs


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
def indexes(request, pg_url, tmp_path):
    """Where the copy and story indexes live: each worker's memory, or one Redis shared by the workers."""
    if request.param == "memory":
        yield ""
        return
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    from daemon.app import index_basename

    basename = index_basename(pg_url)

    def clear():
        for key in client.scan_iter(match=basename + b"*"):
            client.delete(key)

    clear()
    yield REDIS_URL
    assert client.exists(basename + b"_stories_applied"), "the workers used the story index in Redis"
    clear()


@pytest.mark.slow
def test_three_workers_share_the_feeds_and_agree_on_stories(pg_url, tmp_path, indexes):
    farm = Farm(feeds=24, entries=6, seed=5, page_delay=0.01).start()
    try:
        write_config(tmp_path, farm, redis_url=indexes)
        env = dict(os.environ, WIREDESK_DATABASE_URL=pg_url)
        subprocess.run([*wiredesk_exe(), "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
        procs = [
            subprocess.Popen(
                [*wiredesk_exe(), "poll", "--once"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        outs = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-3000:] for o in outs if "Traceback" in o[1]]
        # each feed was polled by exactly one worker, and every worker took a share
        feed_hits = {path: n for path, n in farm.requests.items() if path.startswith("/feed/")}
        assert len(feed_hits) == 24 and set(feed_hits.values()) == {1}
        polled = [int(o[0].split("polled ")[1].split(" ")[0]) for o in outs]
        assert sum(polled) == 24
        state = snapshot(pg_url)
        check_invariants(state)
        assert state["articles"] == 24 * 6
        three, seqs = stories(pg_url)
        assert seqs == list(range(1, len(seqs) + 1)), "story decisions were taken one at a time, in one sequence"
        # every worker decided on the state all decisions before it left: one engine fed the same sequence agrees
        stored, replayed = stored_and_replayed(pg_url, semantic_embedder())
        assert stored == replayed
        print("stories", len(stored), "copies", sum(1 for g in stored for _, c in g if c))
        assert len(stored) < 24 * 6 * 0.6 and sum(1 for g in stored for _, c in g if c) >= 5, (
            "real story and copy decisions"
        )
    finally:
        farm.stop()
    # the same articles through one worker give the same stories
    farm = Farm(feeds=24, entries=6, seed=5).start()
    try:
        engine = sa.create_engine(pg_url)
        with engine.begin() as c:
            c.execute(sa.text("truncate memberships, stories, articles, entries, feeds cascade"))
        engine.dispose()
        write_config(tmp_path, farm)  # one worker, indexes in its memory
        done = subprocess.run(
            [*wiredesk_exe(), "poll", "--once"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        one, _ = stories(pg_url)
    finally:
        farm.stop()
    strip = lambda groups: sorted(sorted(u.split("/page/")[1] for u in g) for g in groups)  # noqa: E731
    # the decisions are taken in one canonical order whatever the number of workers: the same stories
    assert strip(three) == strip(one)


@pytest.mark.slow
def test_a_killed_workers_feeds_are_taken_over(pg_url, tmp_path):
    farm = Farm(feeds=10, entries=8, seed=6, page_delay=0.2).start()
    try:
        # leases long enough to hold whatever the machine's speed; they are expired below instead of waited out
        write_config(tmp_path, farm, lease_seconds=600)
        env = dict(os.environ, WIREDESK_DATABASE_URL=pg_url)
        subprocess.run([*wiredesk_exe(), "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
        first = subprocess.Popen(
            [*wiredesk_exe(), "poll", "--once"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        engine = sa.create_engine(pg_url)

        def holds_leases() -> bool:
            with engine.connect() as c:
                return bool(c.execute(sa.text("select count(*) from feeds where lease_owner is not null")).scalar())

        assert wait_until(holds_leases), "the first worker claimed feeds"  # then kill it without warning
        first.send_signal(signal.SIGKILL)
        first.wait()
        with engine.connect() as c:
            leased = c.execute(sa.text("select count(*) from feeds where lease_owner is not null")).scalar()
        assert leased > 0
        # while the leases hold, another worker leaves those feeds alone
        early = subprocess.run(
            [*wiredesk_exe(), "poll", "--once"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert early.returncode == 0
        assert expire_leases(pg_url) == leased  # the killed worker's leases run out
        later = subprocess.run(
            [*wiredesk_exe(), "poll", "--once"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert later.returncode == 0, later.stderr
        assert f"polled {leased} feeds" in later.stdout or leased == 0
        with engine.connect() as c:
            assert c.execute(sa.text("select count(*) from feeds where lease_owner is not null")).scalar() == 0
            assert c.execute(sa.text("select count(*) from feeds where last_success_at is null")).scalar() == 0
        engine.dispose()
        state = snapshot(pg_url)
        check_invariants(state)
        assert state["articles"] == 80 and state["pending"] == 0
    finally:
        farm.stop()


def _ready_entry(db, url, minutes_ago):
    """A feed with one entry whose text was found `minutes_ago` and whose story is not decided yet."""
    from datetime import datetime, timedelta, timezone

    from daemon.feeds import add_feed
    from storage.models import Entry, Feed

    add_feed(db, url)
    then = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    with db.session() as s:
        feed = s.scalar(sa.select(Feed).where(Feed.url == url))
        s.add(
            Entry(
                feed_id=feed.id,
                identity=url + "#1",
                url=url + "/1",
                title="Flood in Valeford",
                content_hash="x",
                state="ready",
                text="The flood in Valeford has affected at least 40 people, "
                "officials said on Saturday, and the river is still rising.",
                text_source="feed",
                published=then,
                first_seen_at=then,
                changed_at=then,
            )
        )
        return feed.id


def test_stories_wait_for_a_worker_still_polling_unless_overdue(pg_url):
    """While another worker holds a feed, the texts found are left for the last worker to decide (one canonical
    order); a service gives up waiting for texts found longer ago than its decide_wait."""
    from datetime import datetime, timedelta, timezone

    from daemon.pipeline import Pipeline, PipelineSettings
    from storage import open_database
    from storage.models import Entry, Feed

    db = open_database(pg_url)
    feed_id = _ready_entry(db, "https://example.com/a.xml", minutes_ago=2)
    with db.session() as s:  # another worker is polling this feed
        s.get(Feed, feed_id).lease_owner = "elsewhere:1:x"
        s.get(Feed, feed_id).lease_until = datetime.now(timezone.utc) + timedelta(minutes=5)
    patient = Pipeline(db, fetcher=None, settings=PipelineSettings())
    assert patient.decide_ready() == []
    hurried = Pipeline(db, fetcher=None, settings=PipelineSettings(decide_wait=600.0))
    assert hurried.decide_ready() == []  # found 2 minutes ago: still worth waiting for
    service = Pipeline(db, fetcher=None, settings=PipelineSettings(decide_wait=60.0))
    [outcome] = service.decide_ready()
    assert outcome.article_id and outcome.story_id
    with db.session() as s:
        entry = s.scalar(sa.select(Entry))
        assert entry.state == "done" and entry.text is None
    db.dispose()


def test_leases_of_a_process_gone_from_this_host_do_not_hold_up_the_stories(pg_url):
    """An interrupted `poll --once` leaves leases until they expire; the next run decides its stories anyway."""
    import socket as socket_
    from datetime import datetime, timedelta, timezone

    from daemon.pipeline import Pipeline, PipelineSettings
    from storage import open_database
    from storage.models import Feed

    gone = subprocess.Popen(["true"])
    gone.wait()
    db = open_database(pg_url)
    feed_id = _ready_entry(db, "https://example.com/b.xml", minutes_ago=0)
    with db.session() as s:
        feed = s.get(Feed, feed_id)
        feed.lease_owner = f"{socket_.gethostname()[:40]}:{gone.pid}:deadbeef"
        feed.lease_until = datetime.now(timezone.utc) + timedelta(minutes=5)
    [outcome] = Pipeline(db, fetcher=None, settings=PipelineSettings()).decide_ready()
    assert outcome.story_id
    with db.session() as s:  # a live worker's lease (this test's own process) still holds them up
        feed = s.get(Feed, feed_id)
        feed.lease_owner = f"{socket_.gethostname()[:40]}:{os.getpid()}:cafe"
    _ready_entry(db, "https://example.com/c.xml", minutes_ago=0)
    assert Pipeline(db, fetcher=None, settings=PipelineSettings()).decide_ready() == []
    db.dispose()
