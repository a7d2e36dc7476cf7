"""Wire-copy detection benchmark built from a JSONL corpus's real texts (seeded, reproducible).

    python benchmarks/copies.py ../shared/datasets/ecbplus-dev.jsonl [--seed 7]

For every article one or two copies are made as a republishing outlet would: a new headline, a dateline in
front, boilerplate at the end, cut to 60-100 % of its paragraphs, 0-8 % of its words changed, and sometimes a
paragraph of another article added (at most a third of the copy's length, so that a short original plus a
long foreign paragraph does not turn into a copy of the foreign article). Originals and copies are streamed in a random order in which every copy
comes after its original. Pair precision and recall are computed over copy groups (the original and its
copies); pairs of distinct originals that are themselves near-identical in the corpus (exact word 3-shingle
containment >= 0.5) are left out of the count. The engine is shown next to the plain datasketch path
(MinHash(128) over word 3-shingles, LSH at threshold 0.5).
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.cli.cluster import read_corpus  # noqa: E402
from daemon.engine import Document, Engine  # noqa: E402

CITIES = [
    "SEOUL",
    "WASHINGTON",
    "LONDON",
    "BEIJING",
    "PARIS",
    "NEW YORK",
    "TOKYO",
    "BERLIN",
    "MOSCOW",
    "SYDNEY",
    "NEW DELHI",
    "CAIRO",
    "LOS ANGELES",
    "BRUSSELS",
]
AGENCIES = ["Yonhap", "AP", "Reuters", "AFP", "dpa", "Kyodo", "Xinhua", "UPI"]
MONTHS = ["Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec."]
BOILERPLATE = [
    "(END)",
    "Copyright {year} {agency}. All rights reserved. This material may not be published, broadcast, "
    "rewritten or redistributed.",
    "(c) {year} {agency}. Unauthorized reproduction and redistribution prohibited.",
    "Reporting by staff; Editing by the {agency} desk.",
    "Follow us on social media and subscribe to our newsletter for the latest news.",
    "This article was provided by {agency} and is republished under licence. All rights reserved.",
]
HEADLINE_PREFIX = ["", "", "UPDATE 1-", "(LEAD) ", "Breaking: ", "WRAPUP ", "(2nd LD) "]


@dataclass(frozen=True)
class Item:
    doc: Document
    family: str  # id of the original the text derives from


def _change_words(text: str, rate: float, vocab: list[str], rng: random.Random) -> str:
    words = text.split(" ")
    n = len(words)
    k = int(round(rate * n))
    for _ in range(k):
        if not words:
            break
        i = rng.randrange(len(words))
        op = rng.random()
        if op < 0.7:
            words[i] = rng.choice(vocab)
        elif op < 0.85 and len(words) > 1:
            del words[i]
        else:
            words.insert(i, rng.choice(vocab))
    return " ".join(words)


def make_copy(orig: Document, other: Document, copy_id: str, vocab: list[str], rng: random.Random) -> Document:
    paras = [p for p in orig.text.split("\n\n") if p.strip()]
    keep = max(1, math.ceil(len(paras) * rng.uniform(0.6, 1.0)))
    paras = paras[:keep]
    rate = rng.uniform(0.0, 0.08)
    paras = [_change_words(p, rate, vocab, rng) for p in paras]
    if rng.random() < 0.3:
        extra = [p for p in other.text.split("\n\n") if p.strip()]
        if extra:
            # A paragraph of context, not a second story: at most a third of the copy's length.
            words = rng.choice(extra).split(" ")
            budget = max(8, sum(len(p.split(" ")) for p in paras) // 3)
            paras.insert(rng.randint(1, len(paras)), " ".join(words[:budget]))
    agency = rng.choice(AGENCIES)
    dateline = (
        f"{rng.choice(CITIES)}, {rng.choice(MONTHS)} {rng.randint(1, 28)} ({agency}) {rng.choice(['--', '—', '-'])} "
    )
    paras[0] = dateline + paras[0]
    paras.append(rng.choice(BOILERPLATE).format(year=rng.randint(2005, 2024), agency=agency))
    words = [w for w in re.findall(r"[A-Za-z]{4,}", orig.title or orig.text)]
    rng.shuffle(words)
    headline = rng.choice(HEADLINE_PREFIX) + " ".join(words[: rng.randint(4, 9)]).capitalize()
    return Document(id=copy_id, title=headline, text="\n\n".join(paras))


def build(originals: list[Document], seed: int) -> list[Item]:
    """Originals and copies in a stream order where each copy follows its original."""
    rng = random.Random(seed)
    vocab = sorted({w for d in originals for w in re.findall(r"[a-z]{3,}", d.text)})
    timed: list[tuple[float, Item]] = []
    for orig in originals:
        t0 = rng.random()
        timed.append((t0, Item(orig, orig.id)))
        for k in range(rng.choice([1, 1, 2])):
            other = originals[rng.randrange(len(originals))]
            while other.id == orig.id:
                other = originals[rng.randrange(len(originals))]
            copy = make_copy(orig, other, f"{orig.id}~copy{k + 1}", vocab, rng)
            timed.append((t0 + rng.uniform(0.0, 0.3), Item(copy, orig.id)))
    timed.sort(key=lambda x: x[0])
    return [item for _, item in timed]


def _shingles(text: str) -> set[tuple[str, ...]]:
    w = re.findall(r"\w+", text.lower())
    return {tuple(w[i : i + 3]) for i in range(max(1, len(w) - 2))}


def near_identical_originals(originals: list[Document], threshold: float = 0.5) -> dict[str, str]:
    """Union-find roots joining originals whose exact 3-shingle containment reaches threshold."""
    sets = {d.id: _shingles(d.text) for d in originals}
    parent = {d.id: d.id for d in originals}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    index: dict[tuple, list[str]] = {}
    for d in originals:
        for sh in sets[d.id]:
            index.setdefault(sh, []).append(d.id)
    for d in originals:
        counts: dict[str, int] = {}
        for sh in sets[d.id]:
            for o in index[sh]:
                if o != d.id:
                    counts[o] = counts.get(o, 0) + 1
        for o, inter in counts.items():
            if inter / max(1, min(len(sets[d.id]), len(sets[o]))) >= threshold:
                parent[find(d.id)] = find(o)
    return {k: find(k) for k in parent}


def groups_to_pairs(links: dict[str, str | None]) -> set[frozenset]:
    parent = {k: k for k in links}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links.items():
        if b is not None:
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for k in links:
        groups.setdefault(find(k), []).append(k)
    return {frozenset(p) for g in groups.values() for p in itertools.combinations(g, 2)}


def score(pred: set[frozenset], items: list[Item], natural: dict[str, str]) -> tuple[float, float, int, int]:
    family = {it.doc.id: it.family for it in items}
    gold = set()
    by_family: dict[str, list[str]] = {}
    for it in items:
        by_family.setdefault(it.family, []).append(it.doc.id)
    for members in by_family.values():
        gold |= {frozenset(p) for p in itertools.combinations(members, 2)}

    def ignored(pair):
        a, b = tuple(pair)
        fa, fb = family[a], family[b]
        return fa != fb and natural[fa] == natural[fb]

    counted = {p for p in pred if not ignored(p)}
    tp = len(counted & gold)
    precision = tp / len(counted) if counted else 1.0
    recall = tp / len(gold) if gold else 1.0
    return precision, recall, len(counted) - tp, len(gold) - tp


def run_engine(items: list[Item]) -> dict[str, str | None]:
    engine = Engine()
    return {it.doc.id: engine.add(it.doc).copy_of for it in items}


def run_datasketch(items: list[Item], threshold: float = 0.5) -> dict[str, str | None]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    sketches = {}
    out: dict[str, str | None] = {}
    for it in items:
        words = it.doc.text.lower().split()
        shingles = {" ".join(words[i : i + 3]).encode("utf-8") for i in range(max(1, len(words) - 2))}
        m = MinHash(num_perm=128)
        m.update_batch(list(shingles))
        cands = lsh.query(m)
        out[it.doc.id] = max(cands, key=lambda c: (m.jaccard(sketches[c]), c)) if cands else None
        lsh.insert(it.doc.id, m)
        sketches[it.doc.id] = m
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    originals = read_corpus(args.path)
    items = build(originals, args.seed)
    natural = near_identical_originals(originals)
    n_natural = len(originals) - len(set(natural.values()))
    print(
        f"{len(originals)} originals, {len(items) - len(originals)} copies, "
        f"{n_natural} originals joined to a near-identical other original (their cross pairs not counted)"
    )
    print(f"{'method':<28}{'precision':>10}{'recall':>9}{'FP pairs':>10}{'FN pairs':>10}{'sec':>7}")
    for name, fn in [("engine", run_engine), ("datasketch LSH@0.5", run_datasketch)]:
        t = time.perf_counter()
        links = fn(items)
        secs = time.perf_counter() - t
        p, r, fp, fn_ = score(groups_to_pairs(links), items, natural)
        print(f"{name:<28}{p:10.4f}{r:9.4f}{fp:10d}{fn_:10d}{secs:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
