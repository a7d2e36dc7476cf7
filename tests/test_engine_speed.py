"""The engine's fast paths give the same results as their plain versions (correctness only; speed is in
benchmarks/engine_speed.py): stable hashing across processes, fingerprints from a worker pool, candidate
ranking, the word table, the numpy helpers, punctuation and tokens."""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import random
import subprocess
import sys
from collections import Counter
from itertools import chain
from pathlib import Path

import numpy as np
import pytest
from test_engine_redis import dev_like_corpus

from daemon.engine import Document, Engine, Fingerprint, analysis, minhash
from daemon.engine.candidates import StoryPostings

ROOT = Path(__file__).resolve().parent.parent

GOLDEN_TEXT = (
    "SEOUL, April 14 (Yonhap) -- North Korea's parliament speaker met China's top legislator Zhao Leji "
    "in Pyongyang on Friday, state media said, as the two countries marked 75 years of diplomatic ties.\n\n"
    "Choe Ryong-hae and Zhao discussed ways to deepen cooperation in 2024, the Korean Central News Agency "
    "reported.\n\n(END)"
)


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    return dev_like_corpus(n_events=40, seed=5)


# ------------------------------------------------------------------------------------------ stable hashing


def test_signature_of_a_known_text_never_changes():
    # Stored fingerprints are compared with new ones for years: the MinHash of a text is a format.
    fp = Engine().fingerprint(Document("g", "Zhao Leji in Pyongyang", GOLDEN_TEXT))
    assert fp.shingles == 42
    assert fp.signature[:3].tolist() == [43666894, 16674465, 14363315]
    assert hashlib.sha256(fp.signature.astype("<u4").tobytes()).hexdigest() == (
        "443661c75014f04ce0c094de342a68c12bb65ee5d2c10480ac403a58ebac4b2d"
    )


def test_fingerprints_are_the_same_in_another_process(corpus):
    docs = corpus[:25] + [
        Document("cjk", "北京", "国家统计局周一公布的数据显示，今年前三季度国内生产总值同比增长。"),
        Document("de", "Streik", "Die Deutsche Bahn hat für Mittwoch einen Warnstreik angekündigt."),
    ]
    here = [Engine().fingerprint(d).to_bytes().hex() for d in docs]
    script = (
        "import json, sys\nfrom daemon.engine import Document, Engine\n"
        "e = Engine()\nrows = json.load(sys.stdin)\n"
        "print(json.dumps([e.fingerprint(Document(*r)).to_bytes().hex() for r in rows]))\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="4242", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps([[d.id, d.title, d.text] for d in docs]),
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=ROOT,
    ).stdout
    assert json.loads(out) == here


# ------------------------------------------------------------------------------------ parallel fingerprints


def test_fingerprint_pool_gives_the_same_fingerprints_and_decisions(corpus):
    serial = Engine()
    expected = [serial.add(d) for d in corpus]
    with Engine() as engine:
        fps = list(engine.fingerprint_many(corpus, workers=2, chunksize=7))
        assert [fp.to_bytes() for fp in fps] == [a.fingerprint for a in expected]
        got = [engine.add(d, fingerprint=fp) for d, fp in zip(corpus, fps)]
    assert [(a.story_id, a.copy_of, a.score, a.evidence, a.fingerprint) for a in got] == [
        (a.story_id, a.copy_of, a.score, a.evidence, a.fingerprint) for a in expected
    ]


def test_fingerprint_pickles_as_its_stored_bytes():
    import pickle

    fp = Engine().fingerprint(Document("g", "Zhao Leji in Pyongyang", GOLDEN_TEXT))
    back = pickle.loads(pickle.dumps(fp))
    assert back.to_bytes() == fp.to_bytes()
    assert back.terms == fp.terms and back.english == fp.english


# ------------------------------------------------------------------------------------------ story lookup


def test_candidate_stories_rank_like_counting_the_posting_lists():
    rng = random.Random(1)
    postings = StoryPostings(keep=20)
    terms = [f"w:t{i}" for i in range(40)]
    for story in range(600):
        postings.add(rng.sample(terms, rng.randint(1, 15)), rng.randrange(story + 1))
    for _ in range(300):
        query = rng.sample(terms + ["w:never"], rng.randint(1, 15))
        counts = Counter(chain.from_iterable(postings._lists[t] for t in query if t in postings._lists))
        expected = [st for st, _ in heapq.nsmallest(8, counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        assert postings.top(query, 8) == expected
    assert postings.top(["w:never"], 8) == []


def test_posting_lists_keep_the_most_recent_stories():
    postings = StoryPostings(keep=3)
    for story in range(10):
        postings.add(["w:a"], story)
    # Cut back to the last 3 when longer than 6.
    assert list(postings._lists["w:a"]) == [4, 5, 6, 7, 8, 9]
    postings.add(["w:a"], 8)  # seen recently: moves to the end instead of repeating
    assert list(postings._lists["w:a"]) == [4, 5, 6, 7, 9, 8]
    postings.add(["w:a"], 8)
    assert list(postings._lists["w:a"]) == [4, 5, 6, 7, 9, 8]


# ------------------------------------------------------------------------------------------------ helpers


def test_distinct_and_unique_with_index_and_inverse_match_numpy():
    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 5, 300):
        x = rng.integers(0, 40, size=n).astype(np.uint64)
        assert np.array_equal(minhash.distinct(x), np.unique(x))
        if n:
            u, first, inv = analysis._unique_first_inverse(x)
            eu, efirst, einv = np.unique(x, return_index=True, return_inverse=True)
            assert np.array_equal(u, eu) and np.array_equal(first, efirst) and np.array_equal(inv, einv)


def test_signature_is_the_minimum_of_the_permutations_slot_by_slot():
    rng = np.random.default_rng(5)
    shingles = minhash.distinct(rng.integers(0, 2**63, size=200, dtype=np.uint64) * np.uint64(3))
    sig = minhash.signature(shingles)
    a, b = minhash._A.tolist(), minhash._B.tolist()
    xs = shingles.tolist()
    expected = [min(((aj * x + bj) % 2**64) >> 32 for x in xs) for aj, bj in zip(a, b)]
    assert sig.dtype == np.uint32 and sig.tolist() == expected
    assert minhash.signature(np.zeros(0, dtype=np.uint64)).tolist() == [0xFFFFFFFF] * minhash.NUM_PERM


def test_word_table_answers_like_a_dict_even_with_full_buckets():
    rng = np.random.default_rng(9)
    keys = np.unique(
        np.concatenate(
            [rng.integers(1, 2**64 - 1, size=3000, dtype=np.uint64), np.array([0, 5, 5 + 16 * 64], dtype=np.uint64)]
        )
    )
    # Many keys in one bucket (same low bits), so some must move on to the next buckets.
    crowd = (rng.integers(1, 2**40, size=40, dtype=np.uint64) << np.uint64(12)) | np.uint64(7)
    keys = np.unique(np.concatenate([keys, crowd]))
    idf = rng.random(len(keys)).astype(np.float32)
    flags = rng.integers(0, 4, size=len(keys)).astype(np.uint8)
    table = analysis._WordTable(keys, idf, flags, absent_idf=99.5)
    assert table._overflow
    absent = rng.integers(0, 2**64 - 1, size=2000, dtype=np.uint64)
    query = np.concatenate([keys, absent, crowd + np.uint64(1 << 12) * np.uint64(5000)])
    got_idf, got_flags = table.lookup(query)
    ref = {k: (v, f) for k, v, f in zip(keys.tolist(), idf.tolist(), flags.tolist())}
    for q, v, f in zip(query.tolist(), got_idf.tolist(), got_flags.tolist()):
        assert (v, f) == ref.get(q, (np.float32(99.5).item(), 0)), q


def test_centroid_table_answers_like_a_dict_through_growth_and_full_buckets():
    from daemon.engine.centroids import CentroidTable

    rng = np.random.default_rng(4)
    table = CentroidTable(buckets=16)
    ref: dict[int, float] = {}
    # Many stories and terms, some keys crowding the same buckets (same product bits), and repeated keys
    # whose values accumulate.
    universe = np.unique(
        np.concatenate(
            [
                (rng.integers(0, 500, 4000).astype(np.uint64) << np.uint64(32))
                | rng.integers(0, 3000, 4000).astype(np.uint64),
                np.arange(60, dtype=np.uint64) << np.uint64(32),
            ]
        )
    )
    for _ in range(400):
        keys = rng.choice(universe, size=rng.integers(1, 90), replace=False)
        slot, vals, hit = table.find(keys)
        assert hit.tolist() == [k in ref for k in keys.tolist()]
        assert vals.tolist() == [ref.get(k, 0.0) for k in keys.tolist()]
        add = rng.random(len(keys))
        table.add(keys, slot, hit, vals + add)
        for k, v in zip(keys.tolist(), (vals + add).tolist()):
            ref[k] = v
    assert table.size == len(ref) and table._nb > 16 and table._over
    slot, vals, hit = table.find(universe)
    assert hit.tolist() == [k in ref for k in universe.tolist()]
    assert vals.tolist() == [ref.get(k, 0.0) for k in universe.tolist()]


def test_word_table_holds_the_prior_and_the_word_lists():
    table_h, table_idf, unknown = analysis.prior_idf_table()
    sample = np.concatenate(
        [table_h[::997], analysis._STOP_H, analysis._FUNCTION_H, np.array([12345, 2**63 + 17], dtype=np.uint64)]
    )
    idf, flags = analysis._lexicon().lookup(sample)
    pos = np.minimum(np.searchsorted(table_h, sample), len(table_h) - 1)
    expected = np.where(table_h[pos] == sample, table_idf[pos], np.float32(unknown))
    assert np.array_equal(idf, expected)
    assert np.array_equal((flags & analysis.STOP) > 0, np.isin(sample, analysis._STOP_H))
    assert np.array_equal((flags & analysis.FUNCTION) > 0, np.isin(sample, analysis._FUNCTION_H))


def test_punctuation_is_normalised_like_the_translation_table():
    rng = random.Random(2)
    alphabet = [chr(k) for k in analysis._PUNCT] + list("ab .,'\n\r\"-") + ["é", "ß", "€", "北", "\u2028"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert analysis.normalise_punctuation(text) == text.translate(analysis._PUNCT)


def test_boilerplate_check_answers_like_its_expression():
    from daemon.engine import text

    rng = random.Random(6)
    pieces = [
        "(end)",
        "END",
        "Copyright",
        "ALL RIGHTS RESERVED",
        "(C) 2024",
        "(c)2019",
        "(c)",
        "Reproduction",
        "redistribution",
        "Reporting by",
        "editing  by",
        "Writing by",
        "Additional Reporting",
        "contact us",
        "Subscribe",
        "newsletter",
        "follow us",
        "click here",
        "Read more",
        "related articles",
        "This article was",
        "this  article has",
        "a.b@x.org",
        "x@",
        "the",
        "rights",
        "by",
        "é",
        "©",
        "\u017fubscribe",
        "\u212aaiser",
        "x" * 120,
    ]
    for _ in range(20000):
        p = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
        assert text.is_boilerplate(p) == (len(p) <= 300 and bool(text._BOILERPLATE_RE.search(p))), p


# ------------------------------------------------------------------------------------------------ tokens


def _words(text: str) -> list[str]:
    toks = analysis.scan([text])
    return [toks.data[a:b].decode() for a, b in zip(toks.start.tolist(), toks.end.tolist())]


def test_tokens_keep_inner_connectors_and_drop_possessives():
    assert _words("Lohan's U.S. visit, 1,000 o'brien co-op x.y.") == [
        "lohan",
        "u.s",
        "visit",
        "1,000",
        "o'brien",
        "co-op",
        "x.y",
    ]
    assert _words("  École  STRASSE  ") == ["école", "strasse"]
    assert _words("") == [] and _words("...") == []


def test_token_flags_capitals_digits_and_sentence_starts():
    toks = analysis.scan(["He met Zhao Leji.  Then\tÉmile left", "2024 was  Big"])
    words = [toks.data[a:b].decode() for a, b in zip(toks.start.tolist(), toks.end.tolist())]
    assert words == ["he", "met", "zhao", "leji", "then", "émile", "left", "2024", "was", "big"]
    assert toks.upper.tolist() == [True, False, True, True, True, True, False, False, False, True]
    assert toks.digit.tolist() == [False] * 7 + [True, False, False]
    assert toks.sentence_start.tolist() == [True, False, False, False, True, False, False, True, False, False]
    assert toks.paragraph.tolist() == [0] * 7 + [1] * 3
    same = analysis.scan(["he met zhao leji.  then\témile left", "2024 was  big"])
    assert np.array_equal(same.hashes, toks.hashes)  # hashes are of the lower-cased bytes


def test_capitalised_paragraph_then_a_paragraph_without_words_is_fine():
    # A body in capitals that ends with a separator paragraph ("* * *") once failed the term weighting.
    fp = Engine().fingerprint(
        Document(
            "x",
            "Title",
            "THE PRESIDENT SAID ON MONDAY THAT THE TALKS WOULD GO ON WITH THE UNION.\n\nThe talks went on.\n\n* * *",
        )
    )
    assert fp.english and fp.terms


# --------------------------------------------------------------------------------------------- the engine


def test_restored_engine_decides_like_the_uninterrupted_one(corpus):
    whole = Engine()
    out = [whole.add(d) for d in corpus]
    cut = len(corpus) * 2 // 3
    restarted = Engine()
    for d, a in zip(corpus[:cut], out[:cut]):
        restarted.restore(
            a.article_id, Fingerprint.from_bytes(a.fingerprint).to_bytes(), a.story_id, a.copy_of, d.published
        )
    again = [restarted.add(d) for d in corpus[cut:]]
    assert [(a.story_id, a.copy_of, a.score, a.evidence) for a in again] == [
        (a.story_id, a.copy_of, a.score, a.evidence) for a in out[cut:]
    ]
    assert any(a.copy_of for a in out[cut:]) and any("score" in a.evidence for a in out[cut:])


def test_story_sums_after_merges_and_moves_equal_the_sums_of_their_members(corpus):
    """Settling edits the stories' sums in place (a merge adds one story's into another, a move takes an article's
    terms and vector out of one and into another): they must stay what adding the members again would give."""
    engine = Engine()
    for d in corpus:
        engine.add(d)
    stories = [st for st in engine._stories if st.members and st.merged_into is None]
    big = sorted(stories, key=lambda st: -len(st.members))
    # A merge of the two largest stories and a move of one write-up from the third largest into the fourth.
    engine._merge(big[0].index, big[1].index)
    movable = [i for i in big[2].members if engine._group_of[i] == i and i in engine._young]
    copies = [k for k in big[2].members if engine._group_of[k] == movable[0] and k != movable[0]]
    engine._move([movable[0], *copies], big[3].index)
    for st in engine._stories:
        assert st.merged_into is None or not st.members
        want: dict[str, float] = {}
        for i in st.members:
            if i in engine._young:
                tids, w = engine._young[i]
                for t, x in zip(tids.tolist(), w.tolist()):
                    name = engine._book.names[t]
                    want[name] = want.get(name, 0.0) + x
        got = {t: v for t, v in engine._book.centroid(st.index, np.array(st.terms, dtype=np.uint64)).items()}
        assert set(want) <= set(got)
        for t, v in got.items():
            assert abs(v - want.get(t, 0.0)) < 1e-9, (st.id, t)
        assert abs(st.norm2 - sum(v * v for v in want.values())) < 1e-6
    for i in range(len(engine._ids)):
        assert i in engine._stories[engine._story_of[i]].members
    assert sum(len(st.members) for st in engine._stories) == len(engine._ids)
