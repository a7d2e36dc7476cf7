"""News time: stories dated and ordered by their members' publication times, over the replayed seeds."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import feedparser

WIRE_ORIGINAL = "000_3324a5df7957fe74"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def _digest(wiredesk, fmt: str, *extra: str) -> bytes:
    code, out, err = wiredesk("digest", "--format", fmt, *extra)
    assert code == 0, err
    return out.encode("utf-8")


def test_seed_story_carries_april_2024_news_time(seeded_url, wiredesk, manifest):
    code, out, err = wiredesk("stories", "--json")
    assert code == 0, err
    stories = json.loads(out)
    seed = next(s for s in stories if any(a["id"] == WIRE_ORIGINAL for a in s["articles"]))
    published = {a["id"]: _utc(a["published"]) for a in manifest["articles"]}
    members = [a["id"] for a in seed["articles"]]

    feed = json.loads(_digest(wiredesk, "json"))
    items = feed["items"]
    assert len(items) == len(stories)
    # the seed story: the SCMP article of 11 April opened it, the Dong-A article of 15 April (KST) is its newest
    item = next(i for i in items if any(s["id"] == WIRE_ORIGINAL for s in i["_wiredesk"]["sources"]))
    assert (
        _utc(item["date_published"])
        == min(published[m] for m in members)
        == datetime(2024, 4, 11, 14, 17, tzinfo=timezone.utc)
    )
    assert (
        _utc(item["date_modified"])
        == max(published[m] for m in members)
        == datetime(2024, 4, 14, 23, 9, tzinfo=timezone.utc)
    )
    # newest news first, no two entries at one instant, every date the news's own (2024), none the replay's
    modified = [_utc(i["date_modified"]) for i in items]
    assert modified == sorted(modified, reverse=True)
    assert len(set(modified)) == len(modified)
    assert all(m.year == 2024 for m in modified), modified

    # the Atom and RSS digests tell the same order and dates
    atom = feedparser.parse(_digest(wiredesk, "atom"))
    assert atom.bozo == 0
    assert [e.id for e in atom.entries] == [i["id"] for i in items]
    atom_updated = [_utc(e.updated) for e in atom.entries]
    assert atom_updated == modified and len(set(e.updated for e in atom.entries)) == len(items)
    rss = feedparser.parse(_digest(wiredesk, "rss"))
    assert rss.bozo == 0
    assert [e.id for e in rss.entries] == [i["id"] for i in items]
    assert len({e.published for e in rss.entries}) == len(items)

    # `days` counts from now on news time: nothing from 2024 is within a day
    assert json.loads(_digest(wiredesk, "json", "--days", "1"))["items"] == []
    since = _utc(item["date_modified"]) - timedelta(hours=12)
    days = round((datetime.now(timezone.utc) - since).total_seconds() / 86400, 3)
    newer = json.loads(_digest(wiredesk, "json", "--days", str(days)))["items"]
    assert item["id"] in {i["id"] for i in newer}
    assert {i["id"] for i in newer} == {i["id"] for i in items if _utc(i["date_modified"]) >= since}


def test_a_story_that_gains_a_member_moves_up(seeded_url):
    from sqlalchemy import select, update

    from daemon import config as config_mod
    from daemon.publish.select import DigestQuery, digest_stories
    from storage import Database
    from storage.models import Article, Membership

    db = Database(seeded_url)
    config = config_mod.parse("")
    try:
        before = digest_stories(db, config, DigestQuery(limit=None))
        last = before[-1]
        assert last.uuid != before[0].uuid
        # the oldest story's newest member is republished now: the story's news time moves and it leads the digest
        with db.session() as s:
            story_id = s.scalar(
                select(Membership.story_id)
                .join(Article, Article.id == Membership.article_id)
                .where(Article.external_id == last.sources[0].article_id)
            )
            member = s.scalar(
                select(Membership.article_id)
                .where(Membership.story_id == story_id)
                .order_by(Membership.seq.desc())
                .limit(1)
            )
            seen = s.scalar(select(Article.created_at).where(Article.id == member))
            s.execute(update(Article).where(Article.id == member).values(published=seen - timedelta(seconds=5)))
            # a date in the future is capped at when wiredesk saw the article
        after = digest_stories(db, config, DigestQuery(limit=None))
        assert after[0].uuid == last.uuid and after[0].updated > before[0].updated
        assert after[0].updated <= seen
        with db.session() as s:
            s.execute(update(Article).where(Article.id == member).values(published=seen + timedelta(days=3)))
        capped = digest_stories(db, config, DigestQuery(limit=None))
        assert capped[0].uuid == last.uuid and capped[0].updated <= seen
    finally:
        db.engine.dispose()
