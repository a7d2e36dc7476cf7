"""Fit the story decision's weights (daemon/engine/decision.py) on the development sets, deterministically.

    .venv/bin/python benchmarks/fit_story_model.py [--datasets ../shared/datasets] [--cv 5]

Training pairs come from the engine itself run over each development stream with the gold stories forced
(`Engine.observe`): for every article, each candidate story the engine would score is one example, labelled by
whether it is the article's gold story. The streams:
- ECB+ development topics in input order, and once more with synthetic publication dates (unrelated events
  on the same days, each story's articles within 36 h of its own day, the two events of a topic 30-720 days
  apart), for the time features; the same with the titles alone, as headlines;
- the development headlines (title only) in input order;
- each SemEval development pair with a clear label (overall <= 1.5 same story, >= 3.5 not) on its own;
- the same streams without semantic vectors, for the lexical-only mode (no model installed).
Each stream group weighs the same in an L2-regularised logistic regression fitted by Newton's method. The join
threshold and what ranks the candidates that pass it (the probability, or the cosine to the story's centroid) are
then chosen together, on a fixed grid, to maximise the mean of the model's development scores (ECB+ B-cubed F1 and
SemEval pair accuracy for the full-text models, headline and ECB+ title B-cubed F1 for the headline models). With
--cv K the same fit is repeated K times leaving out a K-th of the ECB+ topics, of the headline
stories and of the SemEval pairs, and scored on what was left out, so that a fit to the development sets shows.

Prints the fitted MODELS (weights and threshold) and CHOOSE_BY as Python for daemon/engine/decision.py.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ecbplus import bcubed  # noqa: E402  (benchmarks/ecbplus.py)

from daemon.engine import (  # noqa: E402
    Document,
    Engine,
    EngineSettings,
    decision,  # noqa: E402
)
from daemon.engine.fingerprint import compute, term_params  # noqa: E402

L2 = 1e-2
THRESHOLDS = (0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
# What ranks the candidates that pass (decision.CHOOSE_BY), chosen with the threshold: the probability, or the
# cosine to the story's centroid (semantic where the model has it, else lexical).
CHOOSE = {
    "semantic": ("probability", "sem_mean"),
    "semantic_short": ("probability", "sem_mean"),
    "lexical": ("probability", "lex"),
    "lexical_short": ("probability", "lex"),
}
EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
NEVER = (np.r_[-50.0, np.zeros(decision.N_FEATURES - 1)], 0.5, "probability")  # a model not fitted yet joins nothing
# The sets each model is chosen and scored on: full texts, and headlines (ECB+ titles alone are a second set of
# real headlines, so that the short models do not follow one source).
SCORED_ON = {
    "semantic": ("ecb", "semeval"),
    "lexical": ("ecb", "semeval"),
    "semantic_short": ("headlines", "ecb_titles"),
    "lexical_short": ("headlines", "ecb_titles"),
}
ORDER = ("lexical_short", "lexical", "semantic_short", "semantic")
# Only candidates near by one signal at least are training rows: far ones are easy negatives that would set the
# weights, while the decision is made between the near ones (own story, sister event, a new story).
NEAR_LEX, NEAR_SEM = 0.2, 0.6


# ----------------------------------------------------------------------------------------------- data


class Item:
    """One article of a stream: its document, fingerprint and gold story."""

    __slots__ = ("doc", "fp", "gold", "group")

    def __init__(self, doc: Document, fp, gold: str, group: str):
        self.doc, self.fp, self.gold, self.group = doc, fp, gold, group


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load(datasets: Path, embed) -> dict[str, list]:
    """{"ecb", "ecb_titles", "headlines": [Item], "semeval": [(Item, Item, same)]}: fingerprints with vectors from
    `embed(titles, texts)` (None: without)."""
    settings = EngineSettings()
    params = term_params(settings)

    def items(rows, titles, texts, gold_key, group_key, prefix):
        vecs = embed(titles, texts) if embed else [None] * len(rows)
        out = []
        for i, (r, t, x, v) in enumerate(zip(rows, titles, texts, vecs)):
            fp = compute(t, x, settings, params)
            if v is not None:
                fp = with_vector(fp, v)
            doc = Document(id=f"{prefix}{i}", title=t, text=x, source=r.get("source"))
            out.append(Item(doc, fp, str(r[gold_key]), str(r[group_key])))
        return out

    rows = _read(datasets / "ecbplus-dev.jsonl")
    ecb = items(rows, [r["title"] or "" for r in rows], [r["text"] or "" for r in rows], "gold", "topic", "e")
    ecb_titles = items(rows, [r["title"] or "" for r in rows], [""] * len(rows), "gold", "topic", "t")
    rows = _read(datasets / "headlines-dev.jsonl")
    headlines = items(rows, [r["title"] or "" for r in rows], [r["text"] or "" for r in rows], "gold", "gold", "h")
    pairs = [p for p in _read(datasets / "semeval-dev.jsonl") if p["overall"] <= 1.5 or p["overall"] >= 3.5]
    a = items(pairs, [""] * len(pairs), [p["text1"] for p in pairs], "pair", "pair", "a")
    b = items(pairs, [""] * len(pairs), [p["text2"] for p in pairs], "pair", "pair", "b")
    semeval = [(x, y, p["overall"] <= 1.5) for x, y, p in zip(a, b, pairs)]
    return {"ecb": ecb, "ecb_titles": ecb_titles, "headlines": headlines, "semeval": semeval}


def with_vector(fp, vector):
    """The fingerprint `fp` carrying the semantic vector `vector`."""
    import dataclasses

    if any(f.name == "vector" for f in dataclasses.fields(fp)):
        return dataclasses.replace(fp, vector=np.asarray(vector, dtype=np.float32))
    raise SystemExit("this engine's fingerprints carry no semantic vector")


def without_vector(fp):
    import dataclasses

    if any(f.name == "vector" for f in dataclasses.fields(fp)):
        return dataclasses.replace(fp, vector=None)
    return fp


def dated(items: list[Item], seed: int = 0) -> list[tuple[Item, datetime]]:
    """ECB+ items with synthetic dates: the topics' first events spread over 60 days (so that unrelated events
    share days, as in a real stream), a topic's second event 30-720 days after its first, each story's articles
    within 36 h of its day; in publication order."""
    rng = random.Random(seed)
    topic_day: dict[str, float] = {}
    story_day: dict[str, float] = {}
    for it in items:
        if it.gold in story_day:
            continue
        if it.group not in topic_day:
            topic_day[it.group] = story_day[it.gold] = rng.uniform(0, 60)
        else:
            story_day[it.gold] = topic_day[it.group] + rng.uniform(30, 720)
    out = []
    for it in items:
        when = EPOCH + timedelta(days=story_day[it.gold], hours=rng.uniform(0, 36))
        out.append((it, when))
    out.sort(key=lambda x: (x[1], x[0].doc.id))
    return out


# ----------------------------------------------------------------------------------------------- pairs


def observe(stream, vectors: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per model: the feature rows it scores and their labels, from one stream of (item, published) with the
    gold stories forced."""
    engine = Engine()
    rows: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for it, when in stream:
        fp = it.fp if vectors else without_vector(it.fp)
        doc = Document(id=it.doc.id, title=it.doc.title, text=it.doc.text, published=when, source=it.doc.source)
        ids, x, models, _ = engine.observe(doc, it.gold, fingerprint=fp)
        for sid, row, name in zip(ids, x, models):
            rows[name][0].append(row)
            rows[name][1].append(1.0 if sid == it.gold else 0.0)
    out = {}
    for k, (xs, ys) in rows.items():
        x, y = np.array(xs), np.array(ys)
        near = (x[:, decision.INDEX["lex"]] > NEAR_LEX) | (x[:, decision.INDEX["sem_mean"]] > NEAR_SEM)
        out[k] = (x[near], y[near])
    return out


def training_groups(data, keep=lambda it: True) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Per model, one (rows, labels) group per stream and vector mode."""
    streams = []
    for key in ("ecb", "ecb_titles"):
        items = [it for it in data[key] if keep(it)]
        streams += [[(it, None) for it in items], dated(items)]
    streams.append([(it, None) for it in data["headlines"] if keep(it)])
    pairs = []
    for a, b, same in data["semeval"]:
        if keep(a):
            pairs.append([(a, None), (Item(b.doc, b.fp, a.gold if same else a.gold + "/b", b.group), None)])
    groups: dict[str, list] = defaultdict(list)
    for vectors in (True, False):
        for stream in streams:
            for name, g in observe(stream, vectors).items():
                groups[name].append(g)
        merged: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
        for stream in pairs:  # the pairs together are one group
            for name, (x, y) in observe(stream, vectors).items():
                merged[name][0].append(x)
                merged[name][1].append(y)
        for name, (xs, ys) in merged.items():
            groups[name].append((np.vstack(xs), np.concatenate(ys)))
    return groups


def fit(groups) -> np.ndarray:
    """L2-regularised logistic regression (Newton's method), every group weighing the same in total."""
    groups = [g for g in groups if len(g[1])]
    if not groups:
        return NEVER[0].copy()
    x = np.vstack([g[0] for g in groups])
    y = np.concatenate([g[1] for g in groups])
    w = np.concatenate([np.full(len(g[1]), len(y) / (len(groups) * len(g[1]))) for g in groups])
    cols = x.shape[1]
    used = np.abs(x).max(axis=0) > 0  # a feature never seen keeps weight 0
    reg = np.full(cols, L2)
    reg[decision.INDEX["bias"]] = 0.0
    b = np.zeros(cols)
    xu = x[:, used]
    bu = np.zeros(int(used.sum()))
    ru = reg[used]
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(xu @ bu, -50, 50)))
        grad = xu.T @ (w * (p - y)) + ru * bu
        hess = (xu * (w * p * (1 - p))[:, None]).T @ xu + np.diag(ru) + 1e-9 * np.eye(len(bu))
        step = np.linalg.solve(hess, grad)
        bu -= step
        if np.abs(step).max() < 1e-12:
            break
    b[used] = bu
    return b


# ----------------------------------------------------------------------------------------------- scoring


def engine_with(models) -> Engine:
    engine = Engine()
    for name, (w, t, by) in models.items():
        engine.set_story_model(name, w, t, by)
    return engine


def cluster(items: list[Item], models, vectors=True, order_seed: int = 0) -> tuple[float, float, float]:
    """B-cubed (P, R, F1) of the engine with `models` ({name: (weights, threshold, choose_by)}) over `items`."""
    order = list(items)
    if order_seed:
        random.Random(order_seed).shuffle(order)
    engine = engine_with(models)
    pred = {}
    for it in order:
        fp = it.fp if vectors else without_vector(it.fp)
        pred[it.doc.id] = engine.add(it.doc, fingerprint=fp).story_id
    return bcubed(pred, {it.doc.id: it.gold for it in items})


def pairs_accuracy(pairs, models, vectors=True) -> tuple[float, float, float]:
    """(accuracy, same-story recall, share of different-story pairs kept apart)."""
    same_ok = same_n = apart_ok = apart_n = 0
    for a, b, same in pairs:
        engine = engine_with(models)
        fa = a.fp if vectors else without_vector(a.fp)
        fb = b.fp if vectors else without_vector(b.fp)
        joined = engine.add(a.doc, fingerprint=fa).story_id == engine.add(b.doc, fingerprint=fb).story_id
        if same:
            same_n += 1
            same_ok += joined
        else:
            apart_n += 1
            apart_ok += not joined
    n = same_n + apart_n
    return ((same_ok + apart_ok) / n if n else 0.0, same_ok / max(same_n, 1), apart_ok / max(apart_n, 1))


def score(data, key: str, models, vectors=True, keep=lambda it: True) -> float:
    """B-cubed F1 on a clustering set, accuracy on the SemEval pairs."""
    if key == "semeval":
        pairs = [p for p in data["semeval"] if keep(p[0])]
        return pairs_accuracy(pairs, models, vectors)[0] if pairs else float("nan")
    items = [it for it in data[key] if keep(it)]
    return cluster(items, models, vectors)[2] if items else float("nan")


def choose(data, name: str, weights, models: dict) -> tuple[float, str, dict]:
    """The threshold of model `name` on a fixed grid and what ranks its passing candidates: the best mean of its
    development scores."""
    vectors = name.startswith("semantic")
    best = None
    pairs: dict[float, float] = {}  # a pair's second article has one candidate at most: the ranking does not matter
    for by in CHOOSE[name]:
        for t in THRESHOLDS:
            s = {}
            for k in SCORED_ON[name]:
                if k == "semeval" and t in pairs:
                    s[k] = pairs[t]
                    continue
                s[k] = score(data, k, {**models, name: (weights, t, by)}, vectors)
                if k == "semeval":
                    pairs[t] = s[k]
            mean = sum(s.values()) / len(s)
            print(
                f"  {name}: threshold {t:.2f}, by {by}: "
                + "  ".join(f"{k} {v:.3f}" for k, v in s.items())
                + f"  mean {mean:.3f}",
                file=sys.stderr,
            )
            if best is None or mean > best[0] + 1e-12:
                best = (mean, t, by, s)
    return best[1], best[2], best[3]


def fit_all(data, embed: bool) -> tuple[dict, dict]:
    """Every model's weights and threshold, and its in-sample scores."""
    groups = training_groups(data)
    models = {name: NEVER for name in ORDER}
    results = {}
    for name in ORDER:
        if name.startswith("semantic") and not embed:
            continue
        w = fit(groups[name])
        t, by, s = choose(data, name, w, models)
        models[name] = (w, t, by)
        results[name] = s
    return models, results


def fold_of(key: str, k: int) -> int:
    import hashlib

    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % k


def semantic_embedder():
    """embed(titles, texts) with wiredesk's own model, or None when the model is not installed."""
    from daemon.engine.embed import ModelError, load_embedder

    try:
        model = load_embedder()
    except ModelError as exc:  # the one-line reason is printed; the fit goes on lexically
        print(f"{exc}: fitting the lexical models only", file=sys.stderr)
        return None
    return lambda titles, texts: model.embed_articles(zip(titles, texts))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--datasets", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
    )
    ap.add_argument("--cv", type=int, default=0, help="also report K-fold scores, leaving topics/stories/pairs out")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    embed = semantic_embedder()
    data = load(args.datasets, embed)
    print(f"read, embedded and fingerprinted the development sets in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    models, results = fit_all(data, embed is not None)
    for name, s in results.items():
        print(
            f"{name}: threshold {models[name][1]}, by {models[name][2]}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in s.items())
            + " (in-sample)",
            file=sys.stderr,
        )
    print(f"fitted in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if args.cv:
        got: dict = defaultdict(list)
        for f in range(args.cv):
            groups = training_groups(data, keep=lambda it, f=f: fold_of(it.group, args.cv) != f)
            fold = {name: (fit(groups[name]),) + models[name][1:] if name in results else NEVER for name in ORDER}
            for name in results:
                for k in SCORED_ON[name]:
                    got[name, k].append(
                        score(
                            data,
                            k,
                            fold,
                            name.startswith("semantic"),
                            keep=lambda it, f=f: fold_of(it.group, args.cv) == f,
                        )
                    )
        print(
            f"{args.cv}-fold cross-validated (ECB+ topics, headline stories, SemEval pairs left out; mean of the "
            "folds' scores on what was left out):",
            file=sys.stderr,
        )
        for name in results:
            print(
                f"  {name}: " + ", ".join(f"{k} {np.nanmean(got[name, k]):.3f}" for k in SCORED_ON[name]),
                file=sys.stderr,
            )
    # Laid out as `ruff format` lays out decision.py, so the printed block goes in as it is.
    print("MODELS: dict[str, tuple[np.ndarray, float]] = {")
    for name in ORDER:
        w, t, _ = models[name]
        print(f'    "{name}": (\n        np.array(\n            [')
        for feature, value in zip(decision.NAMES, w.tolist()):
            print(f"                {value!r},  # {feature}")
        print(f"            ]\n        ),\n        {t!r},\n    ),")
    print("}")
    print("CHOOSE_BY: dict[str, str] = {")
    for name in ORDER:
        print(f'    "{name}": "{models[name][2]}",')
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
