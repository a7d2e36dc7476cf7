"""Story clustering quality on an ECB+ JSONL corpus (B-cubed precision / recall / F1 over `gold`).

    python benchmarks/ecbplus.py ../shared/datasets/ecbplus-dev.jsonl [--orders 5] [--seed 0] [--diagnose]

Runs the engine with its default settings in input order and in several random arrival orders, and prints
the spread, plus a TF-IDF cosine + average-linkage baseline (at its best cut, an optimistic baseline) for
scale. Needs no network.

--diagnose adds where the input-order run loses (the topics with the lowest F1 and how their stories were
split or merged) and how far the engine's own article vectors separate each story from the other story of its
topic: with every story's centroid known in advance (the gold members, the article itself left out), how often an
article is closer to its own story than to its sister, and how the plain centroid cosines of both kinds fall
around the engine's join threshold. An incremental engine only ever sees a young story when the sister's first
article arrives, so the absolute overlap, not the ranking, is what bounds it.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.cli.cluster import read_corpus  # noqa: E402
from daemon.engine import Document, Engine, EngineSettings  # noqa: E402


def bcubed(pred: dict[str, str], gold: dict[str, str]) -> tuple[float, float, float]:
    """B-cubed precision, recall, F1 (averaged over items)."""
    by_pred: dict[str, set[str]] = defaultdict(set)
    by_gold: dict[str, set[str]] = defaultdict(set)
    for item, c in pred.items():
        by_pred[c].add(item)
    for item, g in gold.items():
        by_gold[g].add(item)
    p = r = 0.0
    for item in gold:
        cp = by_pred[pred[item]]
        cg = by_gold[gold[item]]
        inter = len(cp & cg)
        p += inter / len(cp)
        r += inter / len(cg)
    n = len(gold)
    p, r = p / n, r / n
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def run_engine(docs: list[Document], settings: EngineSettings | None = None) -> dict[str, str]:
    engine = Engine(settings)
    return {d.id: engine.add(d).story_id for d in docs}


def tfidf_matrix(texts: list[str]):
    """TF-IDF rows (log-scaled counts of wiredesk's content terms, IDF from these texts), one per text, not normalised."""
    import numpy as np

    from daemon.engine.terms import content_terms

    bags = [Counter(content_terms(text)) for text in texts]
    df = Counter(t for b in bags for t in b)
    vocab = {t: i for i, t in enumerate(df)}
    n = len(texts)
    m = np.zeros((n, len(vocab)))
    for i, b in enumerate(bags):
        for t, c in b.items():
            m[i, vocab[t]] = (1 + math.log(c)) * math.log(n / df[t])
    return m


def average_linkage_best_cut(sim, ids: list[str], gold: dict[str, str], cuts) -> tuple[float, float, float, float]:
    """Average-linkage agglomeration of a cosine matrix `sim`, cut at each distance in `cuts`: the best cut's
    (B-cubed P, R, F1, cut)."""
    import numpy as np
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    dist = np.clip(1.0 - sim, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method="average")
    best = (0.0, 0.0, 0.0, 0.0)
    for cut in cuts:
        labels = fcluster(z, t=cut, criterion="distance")
        score = bcubed({i: str(label) for i, label in zip(ids, labels)}, gold)
        if score[2] > best[2]:
            best = (*score, float(cut))
    return best


def tfidf_average_linkage(docs: list[Document], gold: dict[str, str]) -> tuple[float, float, float, float]:
    """Baseline: TF-IDF (corpus IDF) cosine, average-linkage agglomeration, best distance cut."""
    import numpy as np

    m = tfidf_matrix([d.title + "\n" + d.text for d in docs])
    m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    return average_linkage_best_cut(m @ m.T, [d.id for d in docs], gold, np.arange(0.50, 0.99, 0.01))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--orders", type=int, default=5, help="random arrival orders (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument(
        "--diagnose", action="store_true", help="per-topic losses and how well the features separate sisters"
    )
    args = ap.parse_args(argv)

    docs = read_corpus(args.path)
    gold, topic = {}, {}
    with open(args.path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                gold[str(obj["id"])] = str(obj["gold"])
                topic[str(obj["id"])] = str(obj.get("topic"))
    print(f"{len(docs)} articles, {len(set(gold.values()))} gold stories")
    print(f"{'run':<22}{'P':>8}{'R':>8}{'F1':>8}{'stories':>9}{'sec':>7}")

    def row(name, pred, secs):
        p, r, f = bcubed(pred, gold)
        print(f"{name:<22}{p:8.4f}{r:8.4f}{f:8.4f}{len(set(pred.values())):9d}{secs:7.2f}")
        return f

    t = time.perf_counter()
    first = run_engine(docs)
    f1s = [row("engine, input order", first, time.perf_counter() - t)]
    rng = random.Random(args.seed)
    for k in range(args.orders):
        order = docs[:]
        rng.shuffle(order)
        t = time.perf_counter()
        f1s.append(row(f"engine, random #{k + 1}", run_engine(order), time.perf_counter() - t))
    print(f"F1 spread over orders: {max(f1s) - min(f1s):.4f} (min {min(f1s):.4f}, mean {sum(f1s) / len(f1s):.4f})")
    if not args.no_baseline:
        t = time.perf_counter()
        p, r, f, cut = tfidf_average_linkage(docs, gold)
        print(
            f"{'tfidf+avg-link (best)':<22}{p:8.4f}{r:8.4f}{f:8.4f}{'':>9}{time.perf_counter() - t:7.2f}"
            f"  cut at distance {cut:.2f}"
        )
    if args.diagnose:
        diagnose(docs, gold, topic, first)
    return 0


def auc(higher, lower) -> float:
    """How often a value of `higher` exceeds one of `lower` (ties count half): the area under the ROC curve."""
    import numpy as np
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([higher, lower]))
    return float((ranks[: len(higher)].sum() - len(higher) * (len(higher) + 1) / 2) / (len(higher) * len(lower)))


def diagnose(docs: list[Document], gold: dict[str, str], topic: dict[str, str], pred: dict[str, str]) -> None:
    import numpy as np

    print("\nlowest topics, input order (gold story: members in each predicted story)")
    losses = []
    for t in sorted(set(topic.values())):
        ids = [d for d in gold if topic[d] == t]
        f = bcubed({d: pred[d] for d in ids}, {d: gold[d] for d in ids})[2]
        found: dict[str, Counter] = defaultdict(Counter)
        for d in ids:
            found[pred[d]][gold[d]] += 1
        losses.append((f, t, sorted((dict(c) for c in found.values()), key=lambda c: -sum(c.values()))))
    for f, t, parts in sorted(losses)[:10]:
        print(
            f"  topic {t:<4} F1 {f:.3f}  "
            + "  ".join("+".join(f"{g}:{n}" for g, n in sorted(c.items())) for c in parts)
        )

    engine = Engine()
    vectors = {}
    for d in docs:
        fp = engine.fingerprint(d)
        vectors[d.id] = dict(zip(fp.terms, fp.weights.astype(float).tolist()))
    members: dict[str, list[str]] = defaultdict(list)
    for d in docs:
        members[gold[d.id]].append(d.id)
    sisters: dict[str, set[str]] = defaultdict(set)
    for d in docs:
        sisters[topic[d.id]].add(gold[d.id])

    def centroid(ids):
        c: dict[str, float] = defaultdict(float)
        for i in ids:
            for term, w in vectors[i].items():
                c[term] += w
        return c

    def cosine(v, c):
        dot = sum(w * c.get(term, 0.0) for term, w in v.items())
        n = math.sqrt(sum(w * w for w in v.values())) * math.sqrt(sum(w * w for w in c.values()))
        return dot / n if n else 0.0

    cents = {g: centroid(ids) for g, ids in members.items()}
    own, sister, closer = [], [], 0
    for d in docs:
        g = gold[d.id]
        others = sisters[topic[d.id]] - {g}
        rest = [i for i in members[g] if i != d.id]
        if not others or not rest:
            continue
        mine = cosine(vectors[d.id], centroid(rest))
        theirs = [cosine(vectors[d.id], cents[o]) for o in others]
        own.append(mine)
        sister.extend(theirs)
        closer += mine > max(theirs)
    own_a, sister_a = np.array(own), np.array(sister)
    th = 0.3  # the centroid-cosine cut the engine joined at before its learned decision
    print(f"\nseparation with every centroid known ({len(own)} articles that have a sister story):")
    print(f"  closer to its own story than to its sister: {closer / len(own):.3f}")
    print(f"  an own-story cosine above a sister-story cosine (AUC): {auc(own_a, sister_a):.3f}")
    # The situation of a sister's first article: each story known by one member (a random one, seeded).
    rng = random.Random(0)
    young_own, young_sister = [], []
    for d in docs:
        g = gold[d.id]
        others = sorted(sisters[topic[d.id]] - {g})
        rest = [i for i in members[g] if i != d.id]
        if not others or not rest:
            continue
        young_own.append(cosine(vectors[d.id], vectors[rng.choice(rest)]))
        young_sister.extend(cosine(vectors[d.id], vectors[rng.choice(members[o])]) for o in others)
    yo, ys = np.array(young_own), np.array(young_sister)
    young_auc = auc(yo, ys)
    cut = min(np.linspace(0, 1, 101), key=lambda c: (yo < c).mean() + (ys >= c).mean())
    print(
        f"  the same with each story known by one member: AUC {young_auc:.3f}; at the best cut ({cut:.2f}) "
        f"{(yo < cut).mean():.3f} of own below and {(ys >= cut).mean():.3f} of sister above"
    )
    print(f"  {'cosine cut':>10}  {'own below':>9}  {'sister above':>12}")
    for cut in sorted({0.25, th, 0.35, 0.4, 0.45, 0.5}):
        mark = "  (join threshold)" if cut == th else ""
        print(f"  {cut:10.2f}  {(own_a < cut).mean():9.3f}  {(sister_a >= cut).mean():12.3f}{mark}")


if __name__ == "__main__":
    sys.exit(main())
