"""How far the signals can go: story quality of clusterers that are told the answer, beside wiredesk's own.

    .venv/bin/python benchmarks/story_ceiling.py ../shared/datasets/headlines-dev.jsonl [--vectors other.npy ...]

A story decision can only be as good as its similarities let it be. This measures that ceiling on a development
set with gold stories, for each representation: the sentence vectors of wiredesk's model (all-MiniLM-L6-v2), TF-IDF
over wiredesk's content terms (IDF from the whole set), both together, and any other model's vectors given with
`--vectors` (a float .npy file, one row per article in file order, made once elsewhere: wiredesk does not ship that
model). For each, three references that see more than wiredesk ever does:

- nearest gold centroid: every gold story is known in full; each article (left out of its own story) goes to the
  story whose centroid is nearest. What a perfect clusterer that decides by centroid similarity gets.
- k nearest neighbours: the gold story of every other article is known; each article takes the story of its k most
  similar articles (votes weighted by similarity; k = 1, 3, 10). What deciding by the closest members gets.
- average linkage at its best cut: the whole set at once, the cut chosen on the gold labels.

Then wiredesk's own streaming decision (`wiredesk cluster` in file order), which sees each article once, in order,
and knows no label. B-cubed precision, recall and F1 for all. Needs no network.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ecbplus import average_linkage_best_cut, bcubed, tfidf_matrix  # noqa: E402

CUTS = np.arange(0.30, 1.20, 0.01)  # distance cuts tried for average linkage (cosine distance of unit rows)


def unit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def score(ids: list[str], labels, gold: dict[str, str]) -> tuple[float, float, float]:
    return bcubed({i: str(label) for i, label in zip(ids, labels)}, gold)


def nearest_centroid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    k = int(y.max()) + 1
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, y, x)
    out = np.empty(len(x), dtype=np.intp)
    for i in range(len(x)):
        c = sums.copy()
        c[y[i]] -= x[i]  # the article left out of its own story
        c = unit(c)
        out[i] = int(np.argmax(c @ x[i]))
    return out


def knn(sim: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    s = sim.copy()
    np.fill_diagonal(s, -np.inf)
    top = np.argpartition(-s, k, axis=1)[:, :k]
    out = np.empty(len(y), dtype=np.intp)
    for i in range(len(y)):
        votes: Counter = Counter()
        for j in top[i]:
            votes[int(y[j])] += float(s[i, j])
        out[i] = max(votes, key=lambda lab: (votes[lab], -lab))
    return out


def wiredesk(path: Path, embedder) -> dict[str, str]:
    import io

    from daemon.cli.cluster import cluster_jsonl

    out, err = io.StringIO(), io.StringIO()
    if cluster_jsonl(str(path), out=out, err=err, embedder=embedder) != 0:
        raise SystemExit(err.getvalue().strip())
    return {d["id"]: d["story"] for d in map(json.loads, out.getvalue().splitlines())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", type=Path)
    ap.add_argument(
        "--vectors",
        type=Path,
        action="append",
        default=[],
        help="another model's vectors (.npy, one row per article in file order); may be repeated",
    )
    args = ap.parse_args(argv)
    rows = [json.loads(x) for x in args.path.read_text(encoding="utf-8").splitlines() if x.strip()]
    ids = [str(r["id"]) for r in rows]
    gold = {str(r["id"]): str(r["gold"]) for r in rows}
    names = sorted(set(gold.values()))
    y = np.array([names.index(gold[i]) for i in ids])
    print(f"{args.path.name}: {len(rows)} articles, {len(names)} gold stories", file=sys.stderr)

    from daemon.app import semantic_embedder

    embedder = semantic_embedder(report=lambda line: print(line, file=sys.stderr))
    reps: list[tuple[str, np.ndarray]] = []
    t0 = time.perf_counter()
    lexical = unit(tfidf_matrix([(r.get("title") or "") + "\n" + (r.get("text") or "") for r in rows]))
    if embedder is not None:
        vec = unit(embedder.embed_articles([(r.get("title") or "", r.get("text") or "") for r in rows]))
        print(f"embedded in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        reps.append(("all-MiniLM-L6-v2 (wiredesk's model)", vec))
    reps.append(("TF-IDF", lexical))
    if embedder is not None:
        reps.append(("MiniLM + TF-IDF", unit(np.hstack([vec, lexical]))))
    for p in args.vectors:
        other = np.load(p)
        if other.shape[0] != len(rows):
            raise SystemExit(f"error: {p} has {other.shape[0]} rows, {args.path.name} {len(rows)} articles")
        reps.append((p.stem, unit(other)))
        reps.append((f"{p.stem} + TF-IDF", unit(np.hstack([unit(other), lexical]))))

    head = f"{'representation':40}{'reference':40}{'P':>7}{'R':>7}{'F1':>7}"
    print(head)
    print("-" * len(head))

    def line(rep: str, ref: str, s: tuple[float, float, float]) -> None:
        print(f"{rep:40}{ref:40}{s[0]:7.3f}{s[1]:7.3f}{s[2]:7.3f}", flush=True)

    for rep, x in reps:
        sim = x @ x.T
        line(rep, "nearest gold centroid (answer known)", score(ids, nearest_centroid(x, y), gold))
        for k in (1, 3, 10):
            line(rep, f"{k} nearest neighbours (answer known)", score(ids, knn(sim, y, k), gold))
        line(rep, "average linkage, best cut on gold", average_linkage_best_cut(sim, ids, gold, CUTS)[:3])
    pred = wiredesk(args.path, embedder)
    line("wiredesk (semantic + lexical features)", "streaming, no labels, file order", bcubed(pred, gold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
