"""Story clustering quality on an ECB+ JSONL corpus (B-cubed precision / recall / F1 over `gold`).

    python benchmarks/ecbplus.py ../shared/datasets/ecbplus-dev.jsonl [--orders 5] [--seed 0]

Runs the engine with its default settings in input order and in several random arrival orders, and prints
the spread, plus a TF-IDF cosine + average-linkage baseline (at its best cut, an optimistic baseline) for
scale. Needs no network.
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

from daemon.engine import Document, Engine, EngineSettings  # noqa: E402
from daemon.engine.cli_cluster import read_corpus  # noqa: E402


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


def tfidf_average_linkage(docs: list[Document], gold: dict[str, str]) -> tuple[float, float, float, float]:
    """Baseline: TF-IDF (corpus IDF) cosine, average-linkage agglomeration, best distance cut."""
    import numpy as np
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    from daemon.engine.terms import content_terms

    bags = [Counter(content_terms(d.title + "\n" + d.text)) for d in docs]
    df = Counter(t for b in bags for t in b)
    vocab = {t: i for i, t in enumerate(df)}
    n = len(docs)
    m = np.zeros((n, len(vocab)))
    for i, b in enumerate(bags):
        for t, c in b.items():
            m[i, vocab[t]] = (1 + math.log(c)) * math.log(n / df[t])
    m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    dist = np.clip(1.0 - m @ m.T, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method="average")
    best = (0.0, 0.0, 0.0, 0.0)
    for cut in np.arange(0.50, 0.99, 0.01):
        labels = fcluster(z, t=cut, criterion="distance")
        score = bcubed({d.id: str(l) for d, l in zip(docs, labels)}, gold)
        if score[2] > best[2]:
            best = (*score, float(cut))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--orders", type=int, default=5, help="random arrival orders (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args(argv)

    docs = read_corpus(args.path)
    gold = {}
    with open(args.path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                gold[str(obj["id"])] = str(obj["gold"])
    print(f"{len(docs)} articles, {len(set(gold.values()))} gold stories")
    print(f"{'run':<22}{'P':>8}{'R':>8}{'F1':>8}{'stories':>9}{'sec':>7}")

    def row(name, pred, secs):
        p, r, f = bcubed(pred, gold)
        print(f"{name:<22}{p:8.4f}{r:8.4f}{f:8.4f}{len(set(pred.values())):9d}{secs:7.2f}")
        return f

    t = time.perf_counter()
    f1s = [row("engine, input order", run_engine(docs), time.perf_counter() - t)]
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
        print(f"{'tfidf+avg-link (best)':<22}{p:8.4f}{r:8.4f}{f:8.4f}{'':>9}{time.perf_counter() - t:7.2f}"
              f"  cut at distance {cut:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
