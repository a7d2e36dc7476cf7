"""The story model and settling on hand-made streams: one small case per signal, the evidence in words, the rules the
fitted values must keep, and merges and moves.

Two events with the same protagonist on the same days staying apart is also checked on the seed controls
(tests/test_replay.py: the seed story of seven, every control on its own)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from daemon.engine import Document, Engine, Merge, Move, story_model
from daemon.publish.why import explain

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
T0 = datetime(2024, 4, 11, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def embedder():
    from daemon.engine.embed import ModelError, load_embedder

    try:
        return load_embedder()
    except ModelError as exc:
        pytest.skip(f"no semantic model: {exc}")


def doc(i, title, text="", hours=None, source=None):
    return Document(
        id=str(i),
        title=title,
        text=text,
        source=source,
        published=None if hours is None else T0 + timedelta(hours=hours),
    )


VISIT = (
    "China's Zhao Leji arrives in Pyongyang for talks with Kim Jong Un",
    "Zhao Leji, the third-ranking official of China's Communist Party, arrived in Pyongyang on Thursday for a "
    "three-day visit, the highest-level Chinese visit to North Korea in five years. He was greeted at the "
    "airport by Choe Ryong Hae and is expected to meet leader Kim Jong Un to open a year of friendship "
    "between the two countries.\n\nThe visit marks 75 years of diplomatic ties between Beijing and Pyongyang, "
    "and comes as North Korea deepens its cooperation with Russia.",
)
VISIT_2 = (
    "Top Chinese lawmaker meets Kim Jong Un as Beijing and Pyongyang mark 75 years of ties",
    "Kim Jong Un received Zhao Leji, chairman of China's National People's Congress, in Pyongyang on "
    "Friday, state media said. The two sides agreed to strengthen exchanges and cooperation during the "
    "friendship year, Zhao told Kim, adding that China valued its traditional ties with North Korea.\n\n"
    "Zhao is the most senior Chinese official to visit since Xi Jinping went to Pyongyang in 2019.",
)


BILL = (
    "Biden signs $1 trillion infrastructure bill into law at White House ceremony",
    "President Joe Biden on Monday signed the $1 trillion infrastructure package into law, money for roads, "
    "bridges, rail, broadband and water pipes that the Senate and House passed with votes from both parties. "
    "Governors and mayors joined the ceremony on the South Lawn.\n\nThe law sends $110 billion to roads and "
    "bridges and $65 billion to broadband, the largest such outlay in decades.",
)
BILL_2 = (
    "Infrastructure package becomes law as Biden signs bipartisan deal",
    "The $1 trillion infrastructure bill became law on Monday when President Biden signed it on the South Lawn, "
    "flanked by lawmakers from both parties. The package pays for repairs to roads and bridges, new rail lines, "
    "broadband and lead water pipes.\n\nBiden said the law would create jobs and called it a win for both parties.",
)
TALKS = (
    "Biden and Xi hold first virtual summit amid tensions over Taiwan",
    "President Joe Biden and Chinese leader Xi Jinping met by video on Monday evening for more than three hours, "
    "their first summit since Biden took office. The two leaders discussed Taiwan, trade and climate change, the "
    "White House said.\n\nXi warned Washington against encouraging Taiwanese independence, Chinese state media "
    "reported.",
)
TALKS_2 = (
    "Xi warns Biden on Taiwan in three-hour video call",
    "Chinese President Xi Jinping told Joe Biden that Beijing would take decisive measures if Taiwan pushed for "
    "independence, during a video summit on Monday that lasted more than three hours. Both leaders called for "
    "guardrails so that competition would not become conflict.\n\nThe White House said Biden raised human rights "
    "in Xinjiang and Hong Kong.",
)


@pytest.mark.parametrize("order", ["bill first", "talks first"])
def test_two_events_with_one_protagonist_on_one_day_stay_apart_in_either_order(embedder, order):
    pieces = [("b1", BILL, 0), ("t1", TALKS, 1), ("b2", BILL_2, 2), ("t2", TALKS_2, 3)]
    if order == "talks first":
        pieces = [("t1", TALKS, 0), ("b1", BILL, 1), ("t2", TALKS_2, 2), ("b2", BILL_2, 3)]
    engine = Engine(embedder=embedder)
    for name, (title, text), h in pieces:
        engine.add(doc(name, title, text, hours=h))
    engine.settle()
    story = {name: engine.story_of(name) for name, _, _ in pieces}
    assert story["b1"] == story["b2"]
    assert story["t1"] == story["t2"]
    assert story["b1"] != story["t1"]


LATER = (
    "China and North Korea agree to reopen Yalu river bridge to trucks",
    "Trade officials from China and North Korea agreed to reopen the Friendship Bridge between Dandong and "
    "Sinuiju to trucks next month, Chinese customs said, as the two countries try to lift trade back to where it "
    "was before the pandemic closed the border.\n\nNorth Korea's exports of wigs and eyelashes to China have "
    "tripled this year.",
)


def test_a_story_that_stopped_and_a_same_topic_article_ten_days_later_start_a_new_story(embedder):
    engine = Engine(embedder=embedder)
    a = engine.add(doc("a", *VISIT, hours=0))
    b = engine.add(doc("b", *VISIT_2, hours=20))
    assert b.story_id == a.story_id
    late = engine.add(doc("c", *LATER, hours=20 + 24 * 10))
    assert late.story_id != a.story_id and late.copy_of is None
    assert late.evidence["founder"] and late.evidence["nearest_story"] == a.story_id
    assert "the story had gone quiet -" in late.evidence["explanation"]
    engine.settle()
    assert engine.story_of("c") != engine.story_of("a")  # settling does not bring it back either


def test_being_far_apart_in_time_never_raises_the_score():
    i = story_model.INDEX
    for name, (weights, threshold) in story_model.MODELS.items():
        assert weights[i["quiet"]] <= 0.0, name
        assert weights[i["sem"]] >= 0.0 and weights[i["lex"]] >= 0.0, name
        assert threshold > 0.0 and story_model.MERGE_THRESHOLD[name] > 0.0
    gaps = [0.0, 3600.0, 86400.0, 3 * 86400.0, 30 * 86400.0]
    for pace in (None, 600.0, 12 * 3600.0):
        reach = story_model.reach_seconds(pace)
        q = [story_model.quiet(g, reach) for g in gaps]
        assert q == sorted(q) and q[0] == 0.0 and 0.99 < q[-1] <= 1.0
    # A story that keeps coming every 12 hours reaches further than one that came in one burst.
    assert story_model.reach_seconds(12 * 3600.0) > story_model.reach_seconds(None)


@pytest.mark.skipif(not DATASETS.is_dir(), reason=f"development sets not found at {DATASETS}")
def test_the_fitted_values_name_the_data_they_were_fitted_on():
    assert set(story_model.FITTED_ON) == {"allsides-dev.jsonl", "ecbplus-dev.jsonl", "headlines-dev.jsonl"}
    for name, digest in story_model.FITTED_ON.items():
        assert digest == "sha256:" + hashlib.sha256((DATASETS / name).read_bytes()).hexdigest(), name


def test_two_headlines_of_one_event_in_other_words_join(embedder):
    engine = Engine(embedder=embedder)
    a = engine.add(doc(1, "Powerful earthquake kills hundreds in Nepal", hours=0))
    b = engine.add(doc(2, "Nepal quake death toll rises as rescuers search rubble near Kathmandu", hours=2))
    assert b.story_id == a.story_id
    assert b.evidence["model"] == "semantic_short"
    c = engine.add(doc(3, "Apple releases new iPhone software update with bug fixes", hours=3))
    assert c.story_id != a.story_id


def test_the_evidence_lists_every_weighed_feature_and_reads_as_words(embedder):
    engine = Engine(embedder=embedder)
    engine.add(doc("a", *VISIT, hours=0, source="Yonhap"))
    b = engine.add(doc("b", *VISIT_2, hours=20, source="AP"))
    ev = b.evidence
    weights, threshold = story_model.MODELS[ev["model"]]
    assert ev["model"] == "semantic" and ev["score"] >= threshold == ev["threshold"]
    assert set(ev["features"]) == {n for n, w in zip(story_model.NAMES, weights) if w} == set(story_model.NAMES)
    for n, (value, share) in ev["features"].items():
        assert share == pytest.approx(value * weights[story_model.INDEX[n]], abs=1e-3)
    assert sum(share for _, share in ev["features"].values()) == pytest.approx(ev["score"], abs=1e-3)
    assert ev["features"]["quiet"][1] <= 0.0
    assert ev["hours_from_newest"] == 20.0
    assert ev["explanation"].startswith("joined: the same event in other words +")
    text = explain(ev, None)
    assert (
        "the same words, names and numbers" in text and "Zhao Leji" in text and "20 h from the story's newest" in text
    )


def test_without_a_model_the_lexical_model_decides():
    engine = Engine()
    a = engine.add(doc("a", *VISIT, hours=0))
    b = engine.add(doc("b", *VISIT_2, hours=20))
    assert b.story_id == a.story_id and b.evidence["model"] == "lexical"
    assert "sem" not in b.evidence["features"]


def test_a_headline_is_english_and_joins_on_its_title(embedder):
    engine = Engine(embedder=embedder)
    a = engine.add(doc("a", *VISIT, hours=0))
    h = engine.add(doc("h", "Chinese Official Zhao Leji Visits North Korea, Meets Kim Jong Un", hours=4))
    assert engine.fingerprint(doc("x", "Fed official says weak data caused by weather")).english
    assert h.story_id == a.story_id


def test_an_older_decisions_evidence_still_reads_as_words():
    ev = {"probability": 0.41, "model": "semantic_short", "features": {"sem_mean": [0.7, 7.0], "lex": [0.2, 1.1]}}
    text = explain(ev, None)
    assert "sem mean +7.0" in text and "41% likely the same story" in text


# ------------------------------------------------------------------------------------------------- settling


def _apart_then_settled(embedder, pieces):
    """Every article placed in a story of its own (no join passes at arrival), then one settling pass."""
    engine = Engine(embedder=embedder)
    for name in story_model.MODELS:
        w, _ = story_model.MODELS[name]
        engine.set_story_model(name, w, 99.0)
    out = [engine.add(doc(n, t, x, hours=h)) for n, (t, x), h in pieces]
    assert len({a.story_id for a in out}) == len(out)
    return engine, out, engine.settle() if pieces else []


def test_settling_merges_two_stories_of_one_event_and_the_larger_keeps_its_id(embedder):
    pieces = [("v1", VISIT, 0), ("b1", BILL, 1), ("v2", VISIT_2, 2)]
    engine, out, changes = _apart_then_settled(embedder, pieces)
    merges = [c for c in changes if isinstance(c, Merge)]
    assert len(merges) == 1 and not [c for c in changes if isinstance(c, Move)]
    m = merges[0]
    # One member each: the older story survives; the absorbed id now answers as the survivor.
    assert (m.survivor, m.absorbed) == (out[0].story_id, out[2].story_id)
    assert engine.story_of("v2") == engine.story_of("v1") == out[0].story_id
    assert engine.story_of("b1") == out[1].story_id
    assert m.evidence["explanation"].startswith("merged: ") and m.score >= m.evidence["threshold"]
    assert engine.settle() == []  # nothing changed since: nothing more to do
    # Another engine replays the merge, and replaying it twice changes nothing.
    other = Engine(embedder=embedder)
    for name in story_model.MODELS:
        other.set_story_model(name, story_model.MODELS[name][0], 99.0)
    for n, (t, x), h in pieces:
        other.add(doc(n, t, x, hours=h))
    other.apply(m)
    other.apply(m)
    assert [other.story_of(n) for n, _, _ in pieces] == [engine.story_of(n) for n, _, _ in pieces]


VISIT_3 = (
    "Zhao Leji in Pyongyang: China's No. 3 official opens friendship year with North Korea",
    "Zhao Leji, who chairs China's National People's Congress, opened the China-North Korea friendship year at a "
    "ceremony in Pyongyang on Thursday with Choe Ryong Hae, on a visit that Beijing called a sign of its "
    "traditional ties with Kim Jong Un's government.\n\nHe is the most senior Chinese official to travel to the "
    "North in five years.",
)


def test_a_larger_story_absorbs_a_smaller_one_whatever_their_age(embedder):
    pieces = [("v3", VISIT_3, 0), ("b1", BILL, 0.5), ("v1", VISIT, 1), ("v2", VISIT_2, 2)]
    engine, out, changes = _apart_then_settled(embedder, pieces)
    older, younger = out[0].story_id, out[2].story_id
    assert {engine.story_of(n) for n in ("v1", "v2", "v3")} == {older}  # all one member each: the oldest survives
    # Again, with the two younger write-ups one story before the pass (as another engine's merge replayed): the
    # two-member story survives although the lone one is older.
    engine, out, _ = _apart_then_settled(embedder, [])
    for n, (t, x), h in pieces:
        engine.add(doc(n, t, x, hours=h))
    engine._touched.clear()
    engine.apply(Merge(engine.story_of("v1"), engine.story_of("v2"), 1.0, {}))
    changes = engine.settle()
    assert [type(c) for c in changes] == [Merge]
    assert (changes[0].survivor, changes[0].absorbed) == (younger, older)
    assert {engine.story_of(n) for n in ("v1", "v2", "v3")} == {younger}
    assert engine.story_of("b1") != younger


def test_a_moved_article_is_in_exactly_one_story_and_its_copies_follow(embedder):
    engine = Engine(embedder=embedder)
    engine.add(doc("b1", *BILL, hours=0))
    engine.add(doc("t1", *TALKS, hours=1))
    engine.add(doc("t2", *TALKS_2, hours=2))
    # An article of the talks placed in the bill's story (as a narrow decision might), with a wire copy of it.
    engine.apply(Move(("t2",), engine.story_of("t2"), engine.story_of("b1"), 0.0, {}))
    copy = engine.add(doc("t2-copy", TALKS_2[0], TALKS_2[1], hours=2.5))
    assert copy.copy_of == "t2" and engine.story_of("t2-copy") == engine.story_of("b1")
    engine._doubtful.add(engine._index_of["t2"])
    engine._touched.add(engine._story_index[engine.story_of("t1")])
    changes = engine.settle()
    moves = [c for c in changes if isinstance(c, Move)]
    assert len(moves) == 1 and moves[0].article_ids == ("t2", "t2-copy")
    assert moves[0].to_story == engine.story_of("t1") and moves[0].from_story == engine.story_of("b1")
    assert moves[0].evidence["explanation"].startswith("moved: now ")
    for name in ("t2", "t2-copy"):
        assert engine.story_of(name) == engine.story_of("t1")
    members = [engine._ids[i] for st in engine._stories for i in st.members]
    assert sorted(members) == sorted(["b1", "t1", "t2", "t2-copy"])  # each exactly once
