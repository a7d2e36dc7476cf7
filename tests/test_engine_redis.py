"""The copy-candidate LSH as a datasketch MinHashLSH, in memory and in Redis, and the story-candidate index in
Redis through datasketch's ordered storage (127.0.0.1:6379, skipped if absent).

Same decisions as the engine's own indexes; a second engine on the same basename sees the first one's entries;
an emptied Redis is refilled by restore(); restoring over a filled one writes nothing.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from farm import _TOPICS  # the test farm's event topics and the words spoken around them

from daemon.engine import Document, Engine
from daemon.errors import StorageError

REDIS = {"host": "127.0.0.1", "port": 6379}

_PLACES = ["Port Alvar", "Kestrel Bay", "Dunmore", "Valeska", "Oristan", "Halvik", "Brenmoor", "Calder Springs"]
_PEOPLE = [
    "Maria Lopez",
    "Tomas Berg",
    "Aiko Tanaka",
    "Samuel Okafor",
    "Lena Fischer",
    "Rafael Duarte",
    "Nadia Haddad",
    "Piotr Nowak",
    "Grace Mensah",
    "Ivan Petrov",
]


def dev_like_corpus(n_events: int = 60, seed: int = 3) -> list[Document]:
    """News-like English articles: several write-ups per event (shared names and terms, different
    sentences) and wire copies (an earlier article with a new headline, cut short, a word changed)."""
    rng = random.Random(seed)
    base = datetime(2024, 4, 1, tzinfo=timezone.utc)
    docs: list[Document] = []
    for e in range(n_events):
        topic, words = _TOPICS[e % len(_TOPICS)]
        place, person = rng.choice(_PLACES), rng.choice(_PEOPLE)
        number, year = rng.randint(12, 900), rng.choice([2023, 2024])
        when = base + timedelta(days=3 * e)
        pool = [
            f"The {topic} in {place} has affected at least {number} people, officials said on Monday.",
            f"{person}, who leads the response in {place}, said the {rng.choice(words)} would take weeks.",
            f"Residents of {place} described the {rng.choice(words)} and the {rng.choice(words)} as the worst since {year}.",
            f"According to {person}, the {rng.choice(words)} and {rng.choice(words)} were not expected.",
            f"Local authorities in {place} asked for help with the {rng.choice(words)} on Tuesday.",
            f"The number of {rng.choice(words)} reported in {place} rose to {number} by the evening.",
            f"Critics said the {rng.choice(words)} in {place} had been ignored for years by the authorities.",
            f"{person} told reporters that the {rng.choice(words)} was under control but warned of more {rng.choice(words)}.",
        ]
        for k in range(rng.randint(2, 4)):
            sents = rng.sample(pool, 5)
            paras = ["SOME CITY, April 2 (Wire) -- " + sents[0] if k == 0 else sents[0]] + sents[1:]
            docs.append(
                Document(
                    id=f"e{e}-{k}",
                    title=f"{topic.title()} in {place}: {person} speaks",
                    text="\n\n".join(paras),
                    published=when + timedelta(hours=5 * k),
                    source=f"outlet{k}",
                )
            )
            if rng.random() < 0.35 and len(docs) > 1:
                src = docs[rng.randrange(max(0, len(docs) - 12), len(docs))]
                body = src.text.split("\n\n")[: rng.randint(3, 5)]
                body[-1] = body[-1].replace(" the ", " a ", 1)
                docs.append(
                    Document(
                        id=f"{src.id}-copy{len(docs)}",
                        title="Copy: " + src.title,
                        text="\n\n".join(body) + "\n\n(END)",
                        published=src.published + timedelta(hours=1),
                        source="copier",
                    )
                )
    return docs


def decisions(engine: Engine, docs: list[Document]) -> list[tuple]:
    return [(a.article_id, a.story_id, a.copy_of, a.score, a.evidence, a.fingerprint) for a in map(engine.add, docs)]


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    docs = dev_like_corpus()
    assert len(docs) >= 200
    return docs


@pytest.fixture(scope="module")
def reference(corpus) -> list[tuple]:
    out = decisions(Engine(), corpus)
    # The corpus exercises both tiers: copies found, stories of several articles.
    assert sum(1 for d in out if d[2] is not None) >= 20
    assert len({d[1] for d in out}) < len(out) - 40
    return out


@pytest.fixture
def redis_storage():
    redis = pytest.importorskip("redis")
    client = redis.Redis(socket_connect_timeout=1, **REDIS)
    try:
        client.ping()
    except redis.exceptions.RedisError:
        pytest.skip("no Redis server at 127.0.0.1:6379")
    basename = f"wiredesk-test-{uuid.uuid4().hex[:12]}".encode()
    yield {"type": "redis", "basename": basename, "redis": dict(REDIS)}
    keys = list(client.scan_iter(match=basename + b"*"))
    if keys:
        client.delete(*keys)


def _clear(storage: dict) -> None:
    import redis

    client = redis.Redis(**REDIS)
    keys = list(client.scan_iter(match=storage["basename"] + b"*"))
    if keys:
        client.delete(*keys)


def _watch_writes(engine: Engine, monkeypatch) -> list:
    """Record every write either Redis index would make."""
    writes = []
    lsh = engine.copy_index.lsh
    monkeypatch.setattr(lsh, "insert", lambda *a, **k: writes.append(("copy", a)))
    monkeypatch.setattr(lsh, "insertion_session", lambda *a, **k: writes.append(("copy", a)))
    stories = engine.story_index._storage
    monkeypatch.setattr(stories, "insert", lambda *a, **k: writes.append(("story", a)))
    monkeypatch.setattr(stories, "remove", lambda *a, **k: writes.append(("story", a)))
    return writes


def _story_lists(storage: dict) -> dict[bytes, list[bytes]]:
    """Every story-index list in Redis, by key."""
    import redis

    client = redis.Redis(**REDIS)
    prefix = storage["basename"] + b"_stories:"
    return {k: client.lrange(k, 0, -1) for k in client.scan_iter(match=prefix + b"*") if client.type(k) == b"list"}


def test_datasketch_index_in_memory_makes_the_same_decisions(corpus, reference):
    assert decisions(Engine(lsh_storage={"type": "dict"}), corpus) == reference


def test_redis_index_makes_the_same_decisions(corpus, reference, redis_storage):
    engine = Engine(lsh_storage=redis_storage)
    assert type(engine.story_index).__name__ == "DatasketchStoryPostings"
    assert decisions(engine, corpus) == reference
    assert set(engine.copy_index.stored_ids()) <= {d.id for d in corpus}
    lists = _story_lists(redis_storage)
    assert len(lists) > 100, "the story index was written to Redis"
    story_ids = {d[1] for d in reference}
    assert {v.decode() for values in lists.values() for v in values} <= story_ids
    assert engine.story_index.applied() > len(corpus) // 2
    # The pipelined writes are datasketch's own layout: its MinHashLSH on the same storage reads them back.
    from datasketch import MinHashLSH

    from daemon.engine.fingerprint import Fingerprint

    index = engine.copy_index
    plain = MinHashLSH(num_perm=128, params=(index.bands, index.rows), storage_config=redis_storage)
    for doc, d in list(zip(corpus, reference))[::25]:
        keys = index.keys(Fingerprint.from_bytes(d[5]).signature)
        if doc.id in index:
            assert doc.id in plain.query(keys) and doc.id in plain


def test_redis_story_index_trims_lists_like_the_memory_index(corpus, redis_storage):
    """A small posting limit makes lists trim and reorder often: still the same decisions and the same lists."""
    from daemon.engine import EngineSettings

    settings = EngineSettings(posting_limit=3)
    memory, shared = Engine(settings), Engine(settings, lsh_storage=redis_storage)
    assert decisions(shared, corpus) == decisions(memory, corpus)
    lists = _story_lists(redis_storage)
    prefix = redis_storage["basename"] + b"_stories:"
    expected = {
        prefix + t.encode(): [memory._stories[i].id.encode() for i in p] for t, p in memory.story_index._lists.items()
    }
    assert lists == expected
    assert max(map(len, lists.values())) > 3


def test_second_engine_on_the_same_basename_sees_the_first_ones_entries(corpus, reference, redis_storage, monkeypatch):
    first = Engine(lsh_storage=redis_storage)
    head = corpus[:150]
    out = decisions(first, head)
    stored = set(first.copy_index.stored_ids())
    assert stored and stored <= {d.id for d in head}

    second = Engine(lsh_storage=redis_storage)
    assert set(second.copy_index.stored_ids()) == stored
    assert all(doc_id in second.copy_index for doc_id in stored)
    # Restoring over the filled indexes writes nothing ...
    lists = _story_lists(redis_storage)
    writes = _watch_writes(second, monkeypatch)
    for doc, (art, story, copy_of, _, _, fp) in zip(head, out):
        second.restore(art, fp, story, copy_of, published=doc.published)
    assert writes == []
    monkeypatch.undo()
    assert sorted(second.copy_index.stored_ids()) == sorted(stored)
    assert _story_lists(redis_storage) == lists
    # ... and the second engine goes on exactly as the first, finding copies through the shared entries.
    rest = corpus[150:]
    assert decisions(second, rest) == reference[150:]


def test_empty_redis_is_rebuilt_from_restore(corpus, reference, redis_storage):
    first = Engine(lsh_storage=redis_storage)
    head = corpus[:150]
    out = decisions(first, head)
    stored = set(first.copy_index.stored_ids())
    lists = _story_lists(redis_storage)
    applied = first.story_index.applied()
    _clear(redis_storage)

    second = Engine(lsh_storage=redis_storage)
    assert second.copy_index.stored_ids() == [] and _story_lists(redis_storage) == {}
    for doc, (art, story, copy_of, _, _, fp) in zip(head, out):
        second.restore(art, fp, story, copy_of, published=doc.published)
    assert set(second.copy_index.stored_ids()) == stored
    assert _story_lists(redis_storage) == lists
    assert second.story_index.applied() == applied
    assert decisions(second, corpus[150:]) == reference[150:]


def test_unreachable_redis_is_a_clear_error():
    storage = {"type": "redis", "basename": b"wiredesk-test-none", "redis": {"host": "127.0.0.1", "port": 1}}
    with pytest.raises(StorageError, match=r"cannot reach Redis at 127\.0\.0\.1:1"):
        Engine(lsh_storage=storage)


def test_redis_index_without_a_basename_is_refused():
    with pytest.raises(ValueError, match="basename"):
        Engine(lsh_storage={"type": "redis", "redis": dict(REDIS)})


def test_catching_up_with_another_engines_decisions_writes_nothing(corpus, reference, redis_storage, monkeypatch):
    first, second = Engine(lsh_storage=redis_storage), Engine(lsh_storage=redis_storage)
    out = decisions(first, corpus[:100])
    for doc, (art, story, copy_of, _, _, fp) in zip(corpus[:100], out):
        second.restore(art, fp, story, copy_of, published=doc.published)
    later = decisions(first, corpus[100:180])  # stored in Redis after the second engine looked
    writes = _watch_writes(second, monkeypatch)
    for doc, (art, story, copy_of, _, _, fp) in zip(corpus[100:180], later):
        second.restore(art, fp, story, copy_of, published=doc.published)
    assert writes == []
    monkeypatch.undo()
    assert decisions(second, corpus[180:]) == reference[180:]
