"""Settling's storage, on an SQLite file and on PostgreSQL: merges and moves written in the story-decision transaction
(memberships in place, counts, aliases, the shared seq), and the readers that follow a merged story to its survivor
(find_story, the CLI, the API and the story page over loopback HTTP, the digest).

The stories are stored through the decision transaction itself; the changes are the records storage writes
(StoryChange), as the settling pass hands them over (tests/test_settle.py drives the engine's own)."""

from __future__ import annotations

import http.client
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from test_crash import check_invariants, snapshot

from daemon.errors import StorageError
from daemon.states import ChangeKind
from storage import open_database
from storage.decisions import decision_transaction
from storage.models import Entry, Feed
from storage.records import NewArticle, StoredChange, StoredMembership, StoryChange, StoryDecision
from storage.stories import find_story, load_stories, stories_version, story_ids_by_update

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
CONFIG = '[digest]\nbase_url = "http://digest.test/"\nwindow_days = 0\n'

# story letter -> the titles of its articles, stored in this order
STREAM = [
    ("A", "Flood waters rise in Valeford"),
    ("A", "Valeford flood: evacuations ordered"),
    ("A", "Rescue crews reach Valeford villages"),
    ("B", "Valeford river bursts its banks"),
    ("B", "Valeford levee gives way overnight"),
    ("C", "Union calls strike at Kestrel harbour"),
]
IDS = {"A": "a" * 32, "B": "b" * 32, "C": "c" * 32, "D": "d" * 32}


def store_stream(db, stream=STREAM, copies: dict[int, int] | None = None, start: int = 0) -> dict[str, int]:
    """The stream stored as a worker stores its decisions (entries locked, articles added, decisions written);
    the stored article id of each title. ``copies``: position -> position of the original it copies. Articles are
    keyed k<start>, k<start + 1>, ..."""
    with db.session() as s:
        feed = Feed(
            url=f"https://news.example/feed{start}.xml", title="News", status="active", error_count=0, created_at=T0
        )
        s.add(feed)
        s.flush()
        for i, (_, title) in enumerate(stream):
            s.add(
                Entry(
                    feed_id=feed.id,
                    identity=f"e{start + i}",
                    url=f"https://news.example/{start + i}",
                    title=title,
                    content_hash=str(i),
                    state="ready",
                    text=title + ". " + title,
                    text_source="feed",
                    published=T0 + timedelta(minutes=i),
                    first_seen_at=T0,
                    changed_at=T0,
                )
            )
        s.flush()
        entries = [e.id for e in s.scalars(sa.select(Entry).where(Entry.feed_id == feed.id).order_by(Entry.id))]
    with decision_transaction(db) as tx:
        tx.lock_entries(entries)
        article_ids = tx.add_articles(
            [
                NewArticle(
                    entry_id=e,
                    external_id=f"k{start + i}",
                    url=f"https://news.example/{start + i}",
                    title=title,
                    text=title,
                    source="News",
                    published=T0 + timedelta(minutes=i),
                    extracted_from="feed",
                    text_hash=str(i),
                )
                for i, (e, (_, title)) in enumerate(zip(entries, stream))
            ],
            T0,
        )
        tx.lock()
        copies = copies or {}
        tx.store(
            [
                StoryDecision(
                    e,
                    a,
                    IDS[letter],
                    str(article_ids[copies[i]]) if i in copies else None,
                    0.9,
                    {"reason": "test stream"},
                    b"fp",
                )
                for i, (e, a, (letter, _)) in enumerate(zip(entries, article_ids, stream))
            ],
            T0,
            tx.last_seq(),
        )
    return {title: a for a, (_, title) in zip(article_ids, stream)}


def settle_with(db, changes: list[StoryChange], now: datetime) -> list[StoredChange]:
    with decision_transaction(db) as tx:
        tx.lock()
        return tx.store_changes(changes, now, tx.last_seq())


def merge(absorbed: str, survivor: str) -> StoryChange:
    return StoryChange(
        ChangeKind.MERGE, IDS[absorbed], IDS[survivor], (), 0.87, {"reason": "one flood, told twice", "centroid": 0.71}
    )


def start_server(db_url: str, config_text: str = CONFIG):
    """The HTTP server of `wiredesk run` on a free loopback port, and a client for it."""
    from types import SimpleNamespace

    from daemon import config as config_mod
    from daemon.serve.http import Server
    from daemon.serve.metrics import Metrics
    from storage import Database

    config = config_mod.parse(config_text)
    database = Database(db_url)
    server = Server("127.0.0.1", 0, database, config, Metrics(database), {})
    server.start()
    host, port = server.address

    def get(path: str):
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def digest() -> dict:
        status, _, body = get("/digest.json")
        assert status == 200, body
        return json.loads(body)

    return server, SimpleNamespace(get=get, digest=digest, db=database)


def members(db) -> dict[str, list[str]]:
    return {s.id: [m.key for m in s.members] for s in load_stories(db)}


@pytest.fixture
def db(db_url):
    database = open_database(db_url)
    yield database
    database.dispose()


def test_a_merge_keeps_the_survivor_and_makes_the_other_an_alias(db, db_url):
    store_stream(db)
    before = stories_version(db)
    uuid_b = find_story(db, IDS["B"]).uuid
    later = T0 + timedelta(hours=1)
    [stored] = settle_with(db, [merge("B", "A")], later)

    assert stored.seq == 7 and stored.kind == "merge", "the next seq after the six memberships"
    assert stored.article_ids and len(stored.article_ids) == 2, "the absorbed story's articles, as they moved"
    # every article in exactly one story, the counts right, the absorbed story out of every list
    check_invariants(snapshot(db_url))
    assert members(db) == {IDS["A"]: ["k0", "k1", "k2", "k3", "k4"], IDS["C"]: ["k5"]}
    assert IDS["B"] not in story_ids_by_update(db)
    assert stories_version(db) != before and stories_version(db).last_seq == 7
    engine = sa.create_engine(db_url)
    with engine.connect() as c:
        counts = dict(c.execute(sa.text("select id, article_count from stories")).all())
        aliases = c.execute(sa.text("select id, uuid, survivor_id, seq from story_aliases")).all()
    engine.dispose()
    assert counts == {IDS["A"]: 5, IDS["C"]: 1}
    assert [tuple(a) for a in aliases] == [(IDS["B"], uuid_b, IDS["A"], 7)]

    # the absorbed id, its urn:uuid and a prefix of it find the survivor, saying so
    for ident in (IDS["B"], uuid_b, "bbbbbb"):
        found = find_story(db, ident)
        assert found is not None and found.id == IDS["A"] and found.alias == IDS["B"], ident
    own = find_story(db, IDS["A"])
    assert own.alias is None and [c.kind for c in own.changes] == ["merge"]
    assert own.changes[0].article_keys == ("k3", "k4") and own.changes[0].at == later
    assert own.changes[0].article_titles[0] == "Valeford river bursts its banks"


def test_a_chain_of_merges_resolves_to_the_last_survivor(db):
    store_stream(db)
    settle_with(db, [merge("B", "A")], T0 + timedelta(hours=1))
    settle_with(db, [merge("A", "C")], T0 + timedelta(hours=2))
    for ident in (IDS["A"], IDS["B"]):
        found = find_story(db, ident)
        assert found.id == IDS["C"] and found.alias == ident
    assert members(db) == {IDS["C"]: ["k0", "k1", "k2", "k3", "k4", "k5"]}
    # the history of the survivor tells both merges, oldest first
    assert [(c.from_story, c.to_story) for c in find_story(db, IDS["C"]).changes] == [
        (IDS["B"], IDS["A"]),
        (IDS["A"], IDS["C"]),
    ]


def test_a_moved_article_and_its_copy_are_in_one_story_each_afterwards(db, db_url):
    # k1 is a copy of k0: it follows its original
    ids = store_stream(db, copies={1: 0})
    k0, k1 = ids["Flood waters rise in Valeford"], ids["Valeford flood: evacuations ordered"]
    move = StoryChange(ChangeKind.MOVE, IDS["A"], IDS["B"], (k0, k1), 0.64, {"reason": "nearer to B now"})
    [stored] = settle_with(db, [move], T0 + timedelta(hours=1))
    assert stored.article_ids == (k0, k1)
    check_invariants(snapshot(db_url))
    assert members(db) == {IDS["A"]: ["k2"], IDS["B"]: ["k0", "k1", "k3", "k4"], IDS["C"]: ["k5"]}
    a = find_story(db, IDS["A"])
    # the story was named after the article that left: it is named after its remaining one
    assert a.title == "Rescue crews reach Valeford villages"
    assert [c.kind for c in a.changes] == ["move"]
    # the story emptied by a move is merged into where its last article went (as the engine reports it)
    last = StoryChange(ChangeKind.MOVE, IDS["A"], IDS["C"], (ids["Rescue crews reach Valeford villages"],), 0.6, {})
    settle_with(db, [last, merge("A", "C")], T0 + timedelta(hours=2))
    check_invariants(snapshot(db_url))
    assert find_story(db, IDS["A"]).id == IDS["C"]
    assert sorted(members(db)) == sorted([IDS["B"], IDS["C"]])


def test_a_change_that_does_not_fit_what_is_stored_writes_nothing(db, db_url):
    ids = store_stream(db)
    before = snapshot(db_url)
    stray = StoryChange(ChangeKind.MOVE, IDS["C"], IDS["A"], (ids["Flood waters rise in Valeford"],), 0.5, {})
    with pytest.raises(StorageError, match="not stored in it"):
        settle_with(db, [merge("B", "A"), stray], T0 + timedelta(hours=1))
    # the merge before it in the same pass was rolled back with it
    assert snapshot(db_url) == before
    assert find_story(db, IDS["B"]).alias is None
    with pytest.raises(StorageError, match="not a stored story"):
        settle_with(db, [merge("D", "A")], T0)


def test_catch_up_reads_memberships_and_changes_in_one_sequence(db):
    ids = store_stream(db)
    settle_with(db, [merge("B", "A")], T0 + timedelta(hours=1))
    # a decision after the merge takes the seq after the change's
    more = store_stream(db, [("C", "Strike talks resume at Kestrel")], start=6)
    with decision_transaction(db) as tx:
        log = list(tx.log_after(4))
        assert tx.last_seq() == 8
    assert [(type(item).__name__, item.seq) for item in log] == [
        ("StoredMembership", 5),
        ("StoredMembership", 6),
        ("StoredChange", 7),
        ("StoredMembership", 8),
    ]
    # a decision is restored with the story its article is in now: a fresh engine's apply of the merge is a no-op
    moved = log[0]
    assert isinstance(moved, StoredMembership) and moved.article_id == ids["Valeford levee gives way overnight"]
    assert moved.story_id == IDS["A"]
    assert log[3].article_id == more["Strike talks resume at Kestrel"]


def test_readers_follow_a_merged_story_to_its_survivor(db, db_url, wiredesk, tmp_path):
    store_stream(db)
    settle_with(db, [merge("B", "A")], T0 + timedelta(hours=1))
    (tmp_path / "wiredesk.toml").write_text(CONFIG)

    # the CLI: the survivor, with one line saying the asked-for story was merged, and the merge in words
    code, out, err = wiredesk("story", IDS["B"])
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith(f"story {IDS['B']} was merged into story {IDS['A']} on 2026-12-01 09:00")
    assert "Flood waters rise in Valeford" in out and "one flood, told twice" in out
    assert f"story {IDS['B']} merged into this one (2 articles: k3, k4)" in " ".join(out.split())
    code, out, err = wiredesk("story", IDS["B"], "--json")
    shown = json.loads(out)
    assert shown["id"] == IDS["A"] and shown["merged"] == {"id": IDS["B"], "into": IDS["A"]}
    [change] = shown["changes"]
    assert change["kind"] == "merge" and change["articles"] == ["k3", "k4"]
    assert change["from_story"] == IDS["B"] and change["to_story"] == IDS["A"]
    assert change["evidence"]["centroid"] == 0.71 and "one flood, told twice" in change["why"]
    code, out, err = wiredesk("story", IDS["A"], "--json")
    assert "merged" not in json.loads(out) and len(json.loads(out)["changes"]) == 1

    # HTTP: the API and the story page redirect for good to the survivor's, which answers
    server, served = start_server(db_url, CONFIG)
    try:
        for path in (f"/api/stories/{IDS['B']}", f"/story/{IDS['B']}"):
            status, headers, body = served.get(path)
            assert status == 301, (path, body)
            assert headers["location"] == IDS["A"] and headers["cache-control"] == "no-cache"
            target = path.rsplit("/", 1)[0] + "/" + headers["location"]
            status, headers, body = served.get(target)
            # the survivor, with the absorbed story's articles among its own
            page = body.decode()
            assert status == 200 and "Flood waters rise in Valeford" in page, page
            assert "Valeford levee gives way overnight" in page
        # the query goes along with the redirect
        assert served.get(f"/story/{IDS['B']}?x=1")[1]["location"] == f"{IDS['A']}?x=1"
        api = json.loads(served.get(f"/api/stories/{IDS['A']}")[2])
        assert [a["id"] for a in api["articles"]][:1] == ["k0"] and len(api["articles"]) == 5
        [change] = api["changes"]
        assert change["kind"] == "merge" and change["from_story"] == IDS["B"] and change["articles"] == ["k3", "k4"]
        assert change["why"] == "one flood, told twice" and change["at"] == "2026-12-01T09:00:00Z"
        # the digest: one entry for the survivor, none for the absorbed story
        digest = served.digest()
        pages = [item["url"] for item in digest["items"]]
        assert len(digest["items"]) == 2 and not any(IDS["B"] in json.dumps(item) for item in digest["items"]), pages
        listed = json.loads(served.get("/api/stories")[2])["stories"]
        assert sorted(s["id"] for s in listed) == [IDS["A"], IDS["C"]]
    finally:
        server.stop()
        served.db.engine.dispose()


def test_a_merge_seen_by_a_server_that_had_the_story_cached(db, db_url):
    """A story page served (and kept in memory) before the merge redirects after it."""
    store_stream(db)
    server, served = start_server(db_url, CONFIG)
    try:
        assert served.get(f"/story/{IDS['B']}")[0] == 200
        assert served.get(f"/api/stories/{IDS['B']}")[0] == 200
        settle_with(db, [merge("B", "A")], T0 + timedelta(hours=1))
        from helpers import wait_until

        # within the cache's recheck time (a second), both answers follow the merge
        for path in (f"/story/{IDS['B']}", f"/api/stories/{IDS['B']}"):
            assert wait_until(lambda: served.get(path)[0] == 301, timeout=30), path  # noqa: B023
        assert served.get(f"/story/{IDS['A']}")[0] == 200
    finally:
        server.stop()
        served.db.engine.dispose()


@pytest.mark.parametrize("value,allowed", [("-1", "from 0 to 1440"), ("nan", "from 0 to 1440"), ("true", "number")])
def test_a_bad_settle_minutes_is_one_line(tmp_path, wiredesk, value, allowed):
    from helpers import one_line

    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"[engine]\nsettle_minutes = {value}\n")
    code, out, err = wiredesk("--config", cfg, "stories")
    line = one_line(err)
    assert code == 2 and out == "" and "engine.settle_minutes" in line and allowed in line, line


def test_a_merged_storys_redirect_keeps_the_access_token(db, db_url):
    """With [server] token given as token= in the query, the redirect to the survivor carries it along."""
    store_stream(db)
    settle_with(db, [merge("B", "A")], T0 + timedelta(hours=1))
    token = "t0ken-for-the-readers-0123456789"
    server, served = start_server(db_url, CONFIG + f'[server]\ntoken = "{token}"\n')
    try:
        assert served.get(f"/story/{IDS['B']}")[0] == 401
        status, headers, _ = served.get(f"/story/{IDS['B']}?token={token}")
        assert status == 301 and headers["location"] == f"{IDS['A']}?token={token}"
        assert served.get(f"/story/{headers['location']}")[0] == 200
    finally:
        server.stop()
        served.db.engine.dispose()
