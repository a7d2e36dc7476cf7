"""The development sets as streams a daemon could meet, and wiredesk's engine run over them.

A file's own order is not a stream: headlines-dev.jsonl and ecbplus-dev.jsonl list each story's articles together,
which hides chaining and order effects (../shared/datasets/README.md, "Scoring any set as a stream"). The streams:

- allsides-dev: publication order (the file's order), real dates;
- headlines-dev, dated: each gold story starts at a random moment of one week, its articles (in a random order)
  follow at exponential gaps with mean 12 h; fed in time order; seeds 1-3;
- headlines-dev, undated: random orders, seeds 1-3;
- ecbplus-dev: input order and 5 random orders (seeds 1-5), undated;
- the seed fixtures (seeds/, the project's own: five outlets on one event over four days, two wire copies, ten
  controls with the same cast) in publication order, with the expected stories of seeds/manifest.json.

Fingerprints (with the semantic vectors) are computed once per set and kept in benchmarks/out/ keyed by the set's
SHA-256, so that running many streams, or a fit, does not embed the texts again.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.cli.cluster import read_corpus, settled_stories  # noqa: E402
from daemon.engine import Document, Engine, Fingerprint  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
HOUR = 3600.0
WEEK = 7 * 24 * HOUR


@dataclass
class Stream:
    set: str  # allsides, headlines, ecbplus
    group: str  # "publication order", "dated", "undated", "orders"
    label: str  # the stream within the group
    docs: list[Document]
    fps: list[Fingerprint]
    gold: dict[str, str]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprints(path: Path, embedder, label: str = "semantic") -> tuple[list[Document], list[Fingerprint]]:
    """The documents of a JSONL set and their fingerprints (cached in benchmarks/out/)."""
    docs = read_corpus(path)
    precision = getattr(embedder, "precision", "float32")
    cache = OUT / f"fp-{path.stem}-{sha256(path)[:16]}-{label}-{precision}.bin"
    if cache.exists():
        blob = cache.read_bytes()
        fps, at = [], 0
        while at < len(blob):
            n = int.from_bytes(blob[at : at + 4], "little")
            fps.append(Fingerprint.from_bytes(blob[at + 4 : at + 4 + n]))
            at += 4 + n
        if len(fps) == len(docs):
            return docs, fps
    engine = Engine(embedder=embedder)
    fps = list(engine.fingerprint_many(docs, chunksize=256))
    OUT.mkdir(exist_ok=True)
    with open(cache, "wb") as fh:
        for fp in fps:
            b = fp.to_bytes()
            fh.write(len(b).to_bytes(4, "little") + b)
    return docs, fps


def gold_of(path: Path) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                out[str(obj["id"])] = str(obj["gold"])
    return out


SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def seed_stream(embedder) -> Stream:
    arts = json.loads((SEEDS / "manifest.json").read_text(encoding="utf-8"))["articles"]
    arts.sort(key=lambda a: a["published"])
    docs = [
        Document(
            a["id"],
            a.get("title") or "",
            (SEEDS / a["text"]).read_text(encoding="utf-8"),
            datetime.fromisoformat(a["published"]),
        )
        for a in arts
    ]
    fps = list(Engine(embedder=embedder).fingerprint_many(docs, chunksize=64))
    return Stream("seeds", "publication order", "publication order", docs, fps, {a["id"]: a["story"] for a in arts})


def streams(
    datasets: Path, embedder, label: str = "semantic", sets=("allsides", "headlines", "ecbplus")
) -> list[Stream]:
    out: list[Stream] = []
    for name in sets:
        if name == "seeds":
            out.append(seed_stream(embedder))
            continue
        path = datasets / f"{name}-dev.jsonl"
        docs, fps = fingerprints(path, embedder, label)
        gold = gold_of(path)
        pairs = list(zip(docs, fps))
        if name == "allsides":
            out.append(Stream(name, "publication order", "publication order", docs, fps, gold))
        elif name == "headlines":
            by = defaultdict(list)
            for d, fp in pairs:
                by[gold[d.id]].append((d, fp))
            epoch = datetime(2014, 3, 1, tzinfo=timezone.utc).timestamp()
            for seed in (1, 2, 3):
                rng = random.Random(seed)
                timed = []
                for g in sorted(by):
                    members = list(by[g])
                    rng.shuffle(members)
                    t = rng.uniform(0, WEEK)
                    for d, fp in members:
                        timed.append((t, d, fp))
                        t += rng.expovariate(1 / (12 * HOUR))
                timed.sort(key=lambda x: x[0])
                ds = [
                    Document(d.id, d.title, d.text, datetime.fromtimestamp(epoch + t, timezone.utc), d.source, d.url)
                    for t, d, _ in timed
                ]
                out.append(Stream(name, "dated", f"seed {seed}", ds, [fp for _, _, fp in timed], gold))
            for seed in (1, 2, 3):
                order = list(pairs)
                random.Random(seed).shuffle(order)
                out.append(Stream(name, "undated", f"seed {seed}", [d for d, _ in order], [f for _, f in order], gold))
        elif name == "ecbplus":
            out.append(Stream(name, "orders", "input order", docs, fps, gold))
            for seed in range(1, 6):
                order = list(pairs)
                random.Random(seed).shuffle(order)
                out.append(Stream(name, "orders", f"seed {seed}", [d for d, _ in order], [f for _, f in order], gold))
    return out


def run_wiredesk(stream: Stream, embedder=None, configure=None, settle: bool = True) -> dict[str, str]:
    """{id: story} from the engine over the stream, as `wiredesk cluster` decides (settling by stream time)."""
    engine = Engine(embedder=embedder)
    if configure is not None:
        configure(engine)
    if settle:
        settled_stories(engine, stream.docs, stream.fps)
        return {d.id: engine.story_of(d.id) for d in stream.docs}
    return {d.id: engine.add(d, fingerprint=fp).story_id for d, fp in zip(stream.docs, stream.fps)}


def largest_story_events(pred: dict[str, str], gold: dict[str, str]) -> int:
    """The most gold events any one predicted story holds."""
    by = defaultdict(set)
    for i, c in pred.items():
        by[c].add(gold[i])
    return max(len(s) for s in by.values())
