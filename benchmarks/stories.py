"""Story quality on the three development sets, through `wiredesk cluster`'s own code, with and without the
semantic model, beside a batch TF-IDF baseline.

    .venv/bin/python benchmarks/stories.py [--datasets ../shared/datasets] [--orders 5]

- ECB+ development topics: B-cubed F1 in input order and in `--orders` random arrival orders (seeded); the mean
  and the spread (max - min) over all of them.
- Development headlines (title only): B-cubed F1 in input order.
- SemEval development pairs with a clear label (overall <= 1.5 same story, >= 3.5 not), each pair on its own:
  accuracy, same-story recall and the share of different-story pairs kept apart.
The baseline is TF-IDF cosine with average linkage over the whole set at once, at its best cut (an optimistic
baseline: it sees everything and picks its cut on the gold labels). Needs no network.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ecbplus import bcubed, tfidf_average_linkage  # noqa: E402

from daemon.cli.cluster import cluster_jsonl, read_corpus  # noqa: E402


def run_cluster(rows: list[dict], embedder) -> dict[str, str]:
    """{id: story} from `wiredesk cluster` over `rows` written as a JSONL file."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8", delete=False) as fh:
        for r in rows:
            fh.write(json.dumps({k: r.get(k) for k in ("id", "title", "text", "url", "source", "published")}) + "\n")
        path = fh.name
    out, err = io.StringIO(), io.StringIO()
    try:
        if cluster_jsonl(path, out=out, err=err, embedder=embedder) != 0:
            raise SystemExit(err.getvalue().strip())
    finally:
        Path(path).unlink()
    return {d["id"]: d["story"] for d in map(json.loads, out.getvalue().splitlines())}


def ecb(rows, embedder, orders: int) -> tuple[list[float], float]:
    gold = {r["id"]: r["gold"] for r in rows}
    f1s = []
    for seed in range(orders + 1):
        order = list(rows)
        if seed:
            random.Random(seed).shuffle(order)
        f1s.append(bcubed(run_cluster(order, embedder), gold)[2])
    return f1s, sum(f1s) / len(f1s)


def pairs(rows, embedder) -> tuple[float, float, float]:
    same_ok = same_n = apart_ok = apart_n = 0
    corpus = []
    for p in rows:
        corpus += [
            {"id": p["pair"] + "/1", "title": "", "text": p["text1"]},
            {"id": p["pair"] + "/2", "title": "", "text": p["text2"]},
        ]
    # Each pair on its own: a corpus of two articles per run, as the engine would see a pair in isolation.
    for i in range(0, len(corpus), 2):
        got = run_cluster(corpus[i : i + 2], embedder)
        joined = got[corpus[i]["id"]] == got[corpus[i + 1]["id"]]
        if rows[i // 2]["overall"] <= 1.5:
            same_n += 1
            same_ok += joined
        else:
            apart_n += 1
            apart_ok += not joined
    return (same_ok + apart_ok) / (same_n + apart_n), same_ok / same_n, apart_ok / apart_n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--datasets", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
    )
    ap.add_argument("--orders", type=int, default=5)
    args = ap.parse_args(argv)
    from daemon.app import semantic_embedder

    model = semantic_embedder(report=lambda line: print(line, file=sys.stderr))

    def read(name):
        return [json.loads(x) for x in (args.datasets / name).read_text(encoding="utf-8").splitlines() if x.strip()]

    ecb_rows, hl_rows = read("ecbplus-dev.jsonl"), read("headlines-dev.jsonl")
    se_rows = [p for p in read("semeval-dev.jsonl") if p["overall"] <= 1.5 or p["overall"] >= 3.5]
    columns = [("semantic", model)] if model is not None else []
    columns.append(("lexical only", None))
    results: dict[str, dict] = {}
    for label, emb in columns:
        t0 = time.perf_counter()
        f1s, mean = ecb(ecb_rows, emb, args.orders)
        hl = bcubed(run_cluster(hl_rows, emb), {r["id"]: r["gold"] for r in hl_rows})
        se = pairs(se_rows, emb)
        results[label] = {
            "ecb_input": f1s[0],
            "ecb_mean": mean,
            "ecb_spread": max(f1s) - min(f1s),
            "headlines": hl,
            "semeval": se,
        }
        print(f"{label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    ecb_docs, hl_docs = (
        read_corpus(args.datasets / "ecbplus-dev.jsonl"),
        read_corpus(args.datasets / "headlines-dev.jsonl"),
    )
    base_ecb = tfidf_average_linkage(ecb_docs, {r["id"]: r["gold"] for r in ecb_rows})
    base_hl = tfidf_average_linkage(hl_docs, {r["id"]: r["gold"] for r in hl_rows})

    labels = list(results)
    head = f"{'':44}" + "".join(f"{c:>16}" for c in labels) + f"{'TF-IDF batch':>16}"
    print(head)
    print("-" * len(head))

    def row(name, key, base=None, fmt="{:.3f}"):
        cells = "".join(f"{fmt.format(key(results[c])):>16}" for c in labels)
        print(f"{name:44}{cells}{(fmt.format(base) if base is not None else '-'):>16}")

    row("ECB+ B-cubed F1, input order", lambda r: r["ecb_input"], base_ecb[2])
    row(f"ECB+ B-cubed F1, mean of {args.orders + 1} orders", lambda r: r["ecb_mean"])
    row(f"ECB+ spread over {args.orders + 1} orders", lambda r: r["ecb_spread"])
    row("headlines B-cubed F1", lambda r: r["headlines"][2], base_hl[2])
    row("headlines B-cubed precision", lambda r: r["headlines"][0], base_hl[0])
    row("headlines B-cubed recall", lambda r: r["headlines"][1], base_hl[1])
    row("SemEval pair accuracy", lambda r: r["semeval"][0])
    row("SemEval same-story recall", lambda r: r["semeval"][1])
    row("SemEval different stories kept apart", lambda r: r["semeval"][2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
