"""The whole pipeline, offline, over the seed fixtures."""

import json
import shutil
import sqlite3
from collections import defaultdict

import pytest
from conftest import SEEDS, count_rows

WIRE_ORIGINAL = "000_3324a5df7957fe74"
SEED_IDS = [p.stem for p in sorted(SEEDS.glob("0*.txt"))]


def replay_json(wiredesk, folder=SEEDS):
    code, out, err = wiredesk("replay", folder, "--json")
    assert code == 0, err
    return json.loads(out), err


def by_article(result):
    return {a["id"]: (s["id"], a["copy_of"]) for s in result["stories"] for a in s["articles"]}


def test_seed_story_grouping(db_url, wiredesk, manifest):
    result, err = replay_json(wiredesk)
    placed = by_article(result)
    articles = manifest["articles"]
    assert set(placed) == {a["id"] for a in articles}, "every fixture article is in exactly one story"
    seed_story = placed[WIRE_ORIGINAL][0]
    copies = [a["id"] for a in articles if a["kind"] == "copy"]
    controls = [a["id"] for a in articles if a["kind"] == "control"]
    assert len(SEED_IDS) == 5 and len(copies) == 2 and len(controls) >= 8
    # the five seeds and the two republications form one story, and nothing else is in it
    members = {a for a, (s, _) in placed.items() if s == seed_story}
    assert members == set(SEED_IDS) | set(copies)
    for c in copies:
        assert placed[c][1] == WIRE_ORIGINAL
    for s in SEED_IDS:
        assert placed[s][1] is None, f"seed {s} must not be a copy"
    for c in controls:
        assert placed[c][0] != seed_story, f"control {c} joined the seed story"
    # every control is its own event: the manifest gives each a distinct label
    labels = defaultdict(set)
    for a in articles:
        labels[a["story"]].add(placed[a["id"]][0])
    assert all(len(stories) == 1 for stories in labels.values())


def test_replay_twice_adds_nothing(db_url, tmp_path, wiredesk):
    first, _ = replay_json(wiredesk)
    counts = count_rows(db_url)
    second, _ = replay_json(wiredesk)
    assert count_rows(db_url) == counts
    assert counts["articles"] == counts["memberships"] == sum(len(s["articles"]) for s in first["stories"])
    assert first == second


def test_sqlite_is_in_wal_mode(db_url, tmp_path, wiredesk):
    if not db_url.startswith("sqlite"):
        pytest.skip("WAL is an SQLite mode")
    code, out, _ = wiredesk("init")
    assert code == 0 and "wiredesk.db" in out
    con = sqlite3.connect(tmp_path / "wiredesk.db")
    assert con.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert con.execute("select version_num from alembic_version").fetchone()[0]


def test_corrupt_fixtures_are_named_and_skipped(db_url, tmp_path, wiredesk, manifest):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    feeds = manifest["feeds"]
    broken_feed = feeds[-1]
    (corpus / broken_feed["file"]).write_text("<rss><channel><title>cut off", encoding="utf-8")
    # a page without article text whose feed carries no text either: nothing to cluster, so it is skipped
    victim = next(a for a in manifest["articles"] if a["feed"] != broken_feed["url"] and a["kind"] == "control")
    (corpus / victim["page"]).write_text("<html><body><nav>Home | World</nav><p>Accept cookies</p></body></html>")
    feed_file = corpus / next(f["file"] for f in feeds if f["url"] == victim["feed"])
    text = feed_file.read_text(encoding="utf-8")
    text = _strip_entry_text(text, victim["url"])
    feed_file.write_text(text, encoding="utf-8")

    result, err = replay_json(wiredesk, corpus)
    assert broken_feed["file"] in err, err
    assert victim["page"] in err, err
    placed = by_article(result)
    lost = {a["id"] for a in manifest["articles"] if a["feed"] == broken_feed["url"]}
    expected = {a["id"] for a in manifest["articles"]} - lost - {victim["id"]}
    assert set(placed) == expected


def _strip_entry_text(feed_xml: str, url: str) -> str:
    """Remove the description/content of the entry linking to url (RSS or Atom)."""
    import re

    def clean(block: str) -> str:
        for tag in ("description", "content:encoded", "summary", "content"):
            block = re.sub(rf"<{tag}\b[^>]*>.*?</{tag}>", "", block, flags=re.S)
            block = re.sub(rf"<{tag}\b[^>]*/>", "", block)
        return block

    out = []
    for block in re.split(r"(?=<item\b|<entry\b)", feed_xml):
        out.append(clean(block) if url in block and ("<item" in block[:6] or "<entry" in block[:7]) else block)
    joined = "".join(out)
    assert joined != feed_xml, "the entry's text was removed"
    return joined


def test_replay_without_manifest(db_url, tmp_path, wiredesk):
    (tmp_path / "empty").mkdir()
    code, out, err = wiredesk("replay", tmp_path / "empty")
    assert code == 2
    assert "manifest.json" in err and len(err.strip().splitlines()) == 1


def test_stories_story_and_digest_after_replay(db_url, tmp_path, wiredesk):
    result, _ = replay_json(wiredesk)
    seed_story = by_article(result)[WIRE_ORIGINAL][0]
    code, out, _ = wiredesk("stories", "--json")
    assert code == 0 and seed_story in {s["id"] for s in json.loads(out)}
    code, out, _ = wiredesk("story", seed_story, "--json")
    detail = json.loads(out)
    assert code == 0 and len(detail["articles"]) == 7
    # every member carries its score and the evidence of the decision
    assert all("evidence" in a and isinstance(a["score"], float) for a in detail["articles"])
    copies = [a for a in detail["articles"] if a["copy_of"]]
    assert len(copies) == 2
    code, out, _ = wiredesk("story", seed_story)
    assert code == 0 and "copy of 000_3324a5df7957fe74" in out
    digest = tmp_path / "digest.atom"
    code, _, err = wiredesk("digest", "--format", "atom", "-o", digest, "--days", "100000")
    assert code == 0, err
    import feedparser

    parsed = feedparser.parse(digest.read_bytes())
    assert parsed.bozo == 0
    assert len(parsed.entries) == len(result["stories"])
    assert all(e.id.startswith("urn:uuid:") for e in parsed.entries)
    code, _, err = wiredesk("story", "no-such-story")
    assert code == 2 and "not found" in err
