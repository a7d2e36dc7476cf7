"""Story decisions of ready entries, taken in batches of several entries per transaction (SQLite and PostgreSQL)."""

import random
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from consistency import stored_and_replayed
from farm import event, news
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

N = 150  # more than two batches


def _ready_entries(db, n=N, feeds=3):
    """`n` entries of news-like English about a few events, text found, stories not decided yet."""
    from daemon.feeds import add_feed
    from storage.models import Entry, Feed

    start = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
    rng = random.Random(7)
    events = [event(7, i) for i in range(12)]
    urls = [f"https://example.com/{f}.xml" for f in range(feeds)]
    for u in urls:
        add_feed(db, u)
    with db.session() as s:
        ids = {u: s.scalar(sa.select(Feed.id).where(Feed.url == u)) for u in urls}
        for i in range(n):
            ev = events[i % len(events)]
            when = start + timedelta(minutes=7 * i)
            u = urls[i % feeds]
            s.add(
                Entry(
                    feed_id=ids[u],
                    identity=f"{u}#{i}",
                    url=f"{u}/{i}",
                    title=f"{ev['topic'].capitalize()} in {ev['place']}",
                    content_hash=str(i),
                    state="ready",
                    text=news(rng, ev, 120),
                    text_source="feed",
                    published=when,
                    first_seen_at=when,
                    changed_at=when,
                )
            )


def _partition(db):
    with db.session() as s:
        rows = s.execute(
            sa.text("select m.story_id, a.url, m.seq from memberships m join articles a on a.id = m.article_id")
        ).all()
    groups = {}
    for sid, url, _ in rows:
        groups.setdefault(sid, []).append(url)
    return sorted(sorted(g) for g in groups.values()), sorted(r[2] for r in rows)


def _states(db):
    from storage.models import Entry

    with db.session() as s:
        return dict(s.execute(sa.select(Entry.state, sa.func.count()).group_by(Entry.state)).all())


def test_batches_decide_every_entry_in_order_as_one_engine_would(db_url):
    from daemon.pipeline import DECIDE_BATCH, Pipeline, PipelineSettings
    from storage import open_database

    assert N > 2 * DECIDE_BATCH
    db = open_database(db_url)
    _ready_entries(db)
    outcomes = Pipeline(db, fetcher=None, settings=PipelineSettings()).decide_ready()
    assert len(outcomes) == N and all(o.story_id and not o.error for o in outcomes)
    groups, seqs = _partition(db)
    assert seqs == list(range(1, N + 1))
    assert 3 <= len(groups) < N // 3  # real decisions: events gathered into stories
    stored, replayed = stored_and_replayed(db_url)
    assert stored == replayed
    assert _states(db) == {"done": N}
    with db.session() as s:  # the texts moved to the articles
        assert s.scalar(sa.text("select count(*) from entries where text is not null")) == 0
        assert s.scalar(sa.text("select sum(article_count) from stories")) == N
    db.dispose()


def test_a_storage_failure_keeps_its_batch_ready_and_the_next_run_decides_it_the_same(db_url, tmp_path, monkeypatch):
    """A batch that cannot be stored is rolled back whole: its entries stay ready, the batches before it stay decided,
    the engine is rebuilt from what was committed, and the next run's stories equal an undisturbed run's."""
    from daemon.pipeline import DECIDE_BATCH, Pipeline, PipelineSettings
    from storage import open_database
    from storage.models import Membership

    db = open_database(db_url)
    _ready_entries(db)
    pipeline = Pipeline(db, fetcher=None, settings=PipelineSettings())
    inserted = {"n": 0}

    def fail_in_second_batch(session, flush_context, instances):
        inserted["n"] += sum(isinstance(o, Membership) for o in session.new)
        if inserted["n"] > DECIDE_BATCH + 10:
            raise OperationalError("INSERT INTO memberships", {}, Exception("database or disk is full"))

    sa.event.listen(Session, "before_flush", fail_in_second_batch)
    try:
        outcomes = pipeline.decide_ready()
    finally:
        sa.event.remove(Session, "before_flush", fail_in_second_batch)
    decided = [o for o in outcomes if o.story_id]
    [failed] = [o for o in outcomes if o.error]
    assert failed.storage and "database or disk is full" in failed.error
    assert len(decided) == DECIDE_BATCH
    assert _states(db) == {"done": DECIDE_BATCH, "ready": N - DECIDE_BATCH}
    assert _partition(db)[1] == list(range(1, DECIDE_BATCH + 1))

    rest = pipeline.decide_ready()  # the same pipeline: its engine catches up from the database
    assert len(rest) == N - DECIDE_BATCH and all(o.story_id for o in rest)
    assert _states(db) == {"done": N}
    stored, replayed = stored_and_replayed(db_url)
    assert stored == replayed
    disturbed = _partition(db)
    db.dispose()

    other = f"sqlite:///{tmp_path / 'calm.sqlite'}"
    calm = open_database(other)
    _ready_entries(calm)
    Pipeline(calm, fetcher=None, settings=PipelineSettings()).decide_ready()
    assert _partition(calm) == disturbed
    calm.dispose()


def test_an_entry_decided_meanwhile_is_skipped(db_url):
    """Between listing the ready entries and locking them, another worker may have decided some: those are left as
    they are, the rest of the batch is decided."""
    from daemon.pipeline import Pipeline, PipelineSettings
    from storage import open_database
    from storage.models import Entry, Feed

    db = open_database(db_url)
    _ready_entries(db, n=5, feeds=1)
    with db.session() as s:
        rows = [tuple(r) for r in s.execute(sa.select(Entry, Feed).join(Feed).order_by(Entry.published))]
        s.expunge_all()
    with db.session() as s:
        s.get(Entry, rows[2][0].id).state = "done"
    outcomes = Pipeline(db, fetcher=None, settings=PipelineSettings())._assign(rows)
    assert [bool(o.story_id) for o in outcomes] == [True, True, False, True, True]
    assert [o.entry_id for o in outcomes] == [r[0].id for r in rows]
    assert _states(db) == {"done": 5}
    with db.session() as s:
        assert s.scalar(sa.text("select count(*) from memberships")) == 4
    db.dispose()


@pytest.mark.parametrize("batch", [1, 7])
def test_the_batch_size_does_not_change_the_stories(tmp_path, monkeypatch, batch):
    from daemon.pipeline import Pipeline, PipelineSettings
    from daemon.pipeline import run as pipeline_module
    from storage import open_database

    def run(name):
        db = open_database(f"sqlite:///{tmp_path / name}")
        _ready_entries(db, n=40)
        Pipeline(db, fetcher=None, settings=PipelineSettings()).decide_ready()
        result = _partition(db)
        db.dispose()
        return result

    whole = run("whole.sqlite")
    monkeypatch.setattr(pipeline_module, "DECIDE_BATCH", batch)
    assert run(f"batch{batch}.sqlite") == whole
