"""Crash safety: SIGKILL at random moments of a poll cycle, several times in a row, then a clean finish."""

import os
import random
import signal
import subprocess

import pytest
import sqlalchemy as sa
from farm import Farm
from helpers import expire_leases, wait_until, wiredesk_exe


def snapshot(url):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            entries = set(
                c.execute(sa.text("select f.url, e.identity from entries e join feeds f on f.id = e.feed_id")).all()
            )
            dup_entries = c.execute(
                sa.text(
                    "select count(*) from (select feed_id, url from entries group by feed_id, url having count(*) > 1) d"
                )
            ).scalar()
            articles = c.execute(sa.text("select count(*) from articles")).scalar()
            dup_articles = c.execute(
                sa.text("select count(*) from (select url from articles group by url having count(*) > 1) d")
            ).scalar()
            members = c.execute(sa.text("select count(*), count(distinct article_id) from memberships")).one()
            orphans = c.execute(
                sa.text(
                    "select count(*) from articles a where not exists (select 1 from memberships m where m.article_id = a.id)"
                )
            ).scalar()
            stories_ok = c.execute(
                sa.text(
                    "select count(*) from stories s where article_count <> (select count(*) from memberships m where m.story_id = s.id)"
                )
            ).scalar()
            pending = c.execute(sa.text("select count(*) from entries where state = 'pending'")).scalar()
        return dict(
            entries=entries,
            dup_entries=dup_entries,
            articles=articles,
            dup_articles=dup_articles,
            members=tuple(members),
            orphans=orphans,
            bad_counts=stories_ok,
            pending=pending,
        )
    finally:
        engine.dispose()


def work_done(url) -> int:
    """Entries and articles committed so far (0 before the first migration has committed)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return c.execute(
                sa.text("select (select count(*) from entries) + (select count(*) from articles)")
            ).scalar()
    except (sa.exc.ProgrammingError, sa.exc.OperationalError):
        return 0
    finally:
        engine.dispose()


def check_invariants(s):
    assert s["dup_entries"] == 0, "no entry stored twice"
    assert s["dup_articles"] == 0, "no article stored twice"
    assert s["members"] == (s["articles"], s["articles"]), "every article in exactly one story"
    assert s["orphans"] == 0
    assert s["bad_counts"] == 0, "story counters agree with memberships"


@pytest.mark.slow
def test_sigkill_during_polls_loses_nothing(db_url, tmp_path):
    # slow pages and growing feeds: every round has work in both stages when the kill lands
    farm = Farm(feeds=30, entries=15, seed=3, page_delay=0.03, visible=5).start()
    try:
        # short leases: on PostgreSQL the feeds a killed worker held are taken over once they expire
        lines = ["[fetch]", 'allow_networks = ["127.0.0.0/8"]', "[schedule]", "parse_workers = 1", "lease_seconds = 1"]
        for u in farm.urls():
            lines += ["[[feeds]]", f'url = "{u}"']
        (tmp_path / "wiredesk.toml").write_text("\n".join(lines) + "\n")
        env = dict(os.environ, WIREDESK_DATABASE_URL=db_url)
        rng = random.Random(20241123)
        committed: set = set()
        killed_mid_work = 0
        for _ in range(6):
            farm.grow(2)
            proc = subprocess.Popen(
                [*wiredesk_exe(), "poll", "--once", "--all"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            # the kill lands once the poll has committed a random amount of new work (or has ended)
            target = work_done(db_url) + rng.randint(1, 40)
            wait_until(lambda: proc.poll() is not None or work_done(db_url) >= target, timeout=120)  # noqa: B023
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed_mid_work += 1
            proc.wait()
            try:
                state = snapshot(db_url)
            except (sa.exc.ProgrammingError, sa.exc.OperationalError):
                continue  # killed before the first migration committed: nothing stored yet
            assert committed <= state["entries"], "a committed entry was lost"
            committed = state["entries"]
            check_invariants(state)
        assert killed_mid_work >= 3, "the kills landed while work was going on"
        expire_leases(db_url)  # the last killed worker's leases run out (PostgreSQL; SQLite takes no leases)
        done = subprocess.run(
            [*wiredesk_exe(), "poll", "--once", "--all"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        final = snapshot(db_url)
        check_invariants(final)
        assert committed <= final["entries"]
        assert len(final["entries"]) == 450 and final["articles"] == 450 and final["pending"] == 0
    finally:
        farm.stop()
