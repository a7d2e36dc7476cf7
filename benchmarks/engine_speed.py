"""Engine throughput and memory against the plain datasketch path, side by side, at 10k and 100k articles.

    python benchmarks/engine_speed.py ../shared/datasets/ecbplus-dev.jsonl [--sizes 10000,100000]
                                      [--sample 5000] [--workers 1] [--methods engine,engine-pool,decision,datasketch]

The corpus is synthesised from the dev texts (seeded): each article shuffles sentences of three real
articles into new paragraphs and replaces 15 % of their words, so articles are distinct but realistic; one in
ten is a light copy of an earlier synthetic article so the copy path is exercised too.

Methods, each in its own process (so that its resident memory growth per indexed article can be read):

* engine: `Engine.add` per article in one process: fingerprint (normalisation, shingles, MinHash, salient
  terms), copy detection and story assignment.
* engine-pool: the same decisions, with the fingerprints computed by `--workers` worker processes
  (`Engine.fingerprint_many`) while the main process decides, article by article, in order. This is the
  only method that runs anything in parallel. The pool is started and warmed before the clock starts.
* decision: the decision alone, without fingerprinting or embedding: every fingerprint is computed before the
  clock starts and given a semantic vector (a fixed random projection of its term vector, so that articles
  sharing terms have close vectors, as real embeddings of related texts do), then `Engine.add` runs on the
  stored fingerprints. Its cpu us/art is the decision's cost per article at index size N, a settling pass every
  100 articles included (each pass's own cost is printed beside it).
* datasketch: the plain path of the issue, in one process: word 3-shingles, `MinHash(num_perm=128)
  .update_batch` over SHA-1-hashed shingles, then `MinHashLSH(threshold=0.5)` query and insert.

Throughput at index size N is measured on the last `--sample` articles of an N-article stream: the engine
runs the whole stream (its story and copy indexes grow as in real use) and the clock of the last articles
is read separately; the datasketch index is first filled with N - sample entries (random signatures in
datasketch's own value range: its per-article cost does not depend on what the other entries are) and then
the last articles of the stream go through the plain path. Both are per-article throughput at index size
N, measured in the same run. Memory is the growth of the process's resident set over the whole stream,
divided by N (for engine-pool: the main process, which holds the index; each worker holds a fixed ~100 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def synthesise(path: str, n: int, seed: int = 11):
    from daemon.cli.cluster import read_corpus
    from daemon.engine import Document

    base = read_corpus(path)
    sentences = [
        [x for x in re.split(r"(?<=[.!?])\s+", d.text.replace("\n\n", " ")) if len(x) > 20] or [d.text] for d in base
    ]
    vocab = sorted({w for d in base for w in re.findall(r"[a-z]{3,}", d.text)})
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        if docs and rng.random() < 0.1:
            src = docs[rng.randrange(len(docs))]
            body = src.text.split("\n\n")
            body = body[: max(1, int(len(body) * rng.uniform(0.6, 1.0)))]
            docs.append(Document(id=f"a{i}", title="Copy: " + src.title, text="\n\n".join(body)))
            continue
        # Sentences of three articles, shuffled into 3-6 paragraphs, 15 % of words replaced: distinct
        # texts with the length, vocabulary and names of real news.
        picks = [rng.randrange(len(base)) for _ in range(3)]
        sents = [s for j in picks for s in rng.sample(sentences[j], min(len(sentences[j]), rng.randint(2, 6)))]
        rng.shuffle(sents)
        words = " ".join(sents).split(" ")
        for _ in range(len(words) * 15 // 100):
            words[rng.randrange(len(words))] = rng.choice(vocab)
        k = rng.randint(3, 6)
        step = max(1, len(words) // k)
        paras = [" ".join(words[j : j + step]) for j in range(0, len(words), step)]
        docs.append(Document(id=f"a{i}", title=base[picks[0]].title, text="\n\n".join(paras)))
    return docs


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Clock:
    """Wall and CPU time of a whole run and of its last `sample` steps."""

    def __init__(self, n: int, sample: int):
        self.n, self.mark_at = n, n - sample
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.mark = (self.t0, self.c0)

    def tick(self, i: int) -> None:
        if i == self.mark_at:
            self.mark = (time.perf_counter(), time.process_time())

    def result(self) -> dict:
        t, c = time.perf_counter(), time.process_time()
        window = self.n - self.mark_at
        return {
            "secs": t - self.t0,
            "per_sec_all": self.n / (t - self.t0),
            "per_sec": window / (t - self.mark[0]),
            "cpu_us": (c - self.mark[1]) / window * 1e6,
        }


def run_engine(docs, sample: int, workers: int) -> dict:
    from daemon.engine import Document, Engine

    engine = Engine()
    # Build the word tables (and start and warm the worker processes) before the clock starts.
    engine.fingerprint(
        Document(
            id="warm-up",
            title="Warm up",
            text="The tables are built on the first English article, which is this one, said the benchmark on Monday.",
        )
    )
    if workers:
        for _ in engine.fingerprint_many(docs[: 8 * 32 * workers], workers=workers):
            pass
    fingerprints = engine.fingerprint_many(docs, workers=workers) if workers else None
    out = timed_adds(engine, docs, fingerprints, sample)
    if workers:
        out["cpu_us"] = None  # the main process's CPU time alone says little here
    engine.close()
    return out


def run_decision(docs, sample: int) -> dict:
    import dataclasses
    import zlib

    import numpy as np

    from daemon.engine import Engine

    engine = Engine()
    proj = np.random.default_rng(5).standard_normal((4096, 384)).astype(np.float32)
    fps = []
    for d in docs:
        fp = engine.fingerprint(d)
        if fp.terms:
            rows = np.array([zlib.crc32(t.encode()) % 4096 for t in fp.terms])
            v = fp.weights @ proj[rows]
            fp = dataclasses.replace(fp, vector=(v / np.linalg.norm(v)).astype(np.float32))
        fps.append(fp)
    return timed_adds(engine, docs, fps, sample, settle_every=SETTLE_EVERY)


SETTLE_EVERY = 100  # a settling pass every this many articles, as `wiredesk cluster` runs them without dates


def timed_adds(engine, docs, fingerprints, sample: int, settle_every: int = 0) -> dict:
    """Clock `engine.add` over `docs` (with `fingerprints` when given: an iterable in the same order), with a
    settling pass every `settle_every` articles counted in the clock, and the resident memory growth per article."""
    import gc

    gc.collect()
    before = rss()
    clock = Clock(len(docs), sample)
    fps = iter(fingerprints) if fingerprints is not None else None
    settle_secs, passes = 0.0, 0
    for i, d in enumerate(docs):
        clock.tick(i)
        engine.add(d, fingerprint=next(fps) if fps is not None else None)
        if settle_every and i % settle_every == settle_every - 1:
            t = time.perf_counter()
            engine.settle()
            if i >= len(docs) - sample:
                settle_secs += time.perf_counter() - t
                passes += 1
    out = clock.result()
    if passes:
        out["settle_ms_per_pass"] = 1000 * settle_secs / passes
    gc.collect()
    out["bytes_per_article"] = (rss() - before) / len(docs)
    return out


def run_datasketch(docs, sample: int) -> dict:
    import gc

    import numpy as np
    from datasketch import LeanMinHash, MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    scheme = MinHash(num_perm=128).scheme
    gc.collect()
    before = rss()
    # The index at size N - sample: random signatures in datasketch's value range and dtype.
    rng = np.random.default_rng(7)
    template = MinHash(num_perm=128).hashvalues
    for i in range(len(docs) - sample):
        hv = rng.integers(0, 2**32 - 1, size=128, dtype=np.uint64).astype(template.dtype)
        lsh.insert(f"fill{i}", LeanMinHash(seed=1, hashvalues=hv, scheme=scheme), check_duplication=False)
    clock = Clock(sample, sample)
    for d in docs[len(docs) - sample :]:
        words = d.text.lower().split()
        shingles = {" ".join(words[i : i + 3]).encode("utf-8") for i in range(max(1, len(words) - 2))}
        m = MinHash(num_perm=128)
        m.update_batch(list(shingles))
        lsh.query(m)
        lsh.insert(d.id, m)
    out = clock.result()
    out["per_sec_all"] = None
    gc.collect()
    out["bytes_per_article"] = (rss() - before) / len(docs)
    return out


def worker(path: str, n: int, method: str, sample: int, workers: int) -> dict:
    docs = synthesise(path, n)
    if method == "decision":
        out = run_decision(docs, sample)
    elif method == "datasketch":
        out = run_datasketch(docs, sample)
    else:
        out = run_engine(docs, sample, workers if method == "engine-pool" else 0)
    out.update(method=method, n=n, sample=sample)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--sample", type=int, default=5000, help="articles timed at each index size")
    # On 2 cores one worker is right: the main process keeps the other core busy with the decisions, and a
    # second worker only competes with it for the core and the cache.
    ap.add_argument("--workers", type=int, default=1, help="fingerprint worker processes for engine-pool")
    ap.add_argument("--methods", default="engine,engine-pool,decision,datasketch")
    ap.add_argument("--worker", nargs=2, metavar=("N", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        n = int(args.worker[0])
        print(json.dumps(worker(args.path, n, args.worker[1], min(args.sample, n), args.workers)))
        return 0
    if not Path(args.path).is_file():
        print(f"engine_speed: no such file: {args.path}", file=sys.stderr)
        return 2

    methods = args.methods.split(",")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(
        f"engine+{args.workers}p: fingerprints in {args.workers} worker process(es), decisions in the main process "
        "(parallel); engine and datasketch: one process each"
    )
    print(
        f"{'articles':>9} {'method':<12}{'articles/s':>11}{'(all N)':>9}{'cpu us/art':>11}"
        f"{'bytes/art':>11}{'sec':>7}   articles/s over the last SAMPLE articles, at index size N"
    )
    for n in (int(x) for x in args.sizes.split(",")):
        res = {}
        for method in methods:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    args.path,
                    "--worker",
                    str(n),
                    method,
                    "--sample",
                    str(args.sample),
                    "--workers",
                    str(args.workers),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            res[method] = r
            label = f"engine+{args.workers}p" if method == "engine-pool" else method
            all_n = f"{r['per_sec_all']:9.0f}" if r["per_sec_all"] else f"{'-':>9}"
            cpu = f"{r['cpu_us']:11.0f}" if r["cpu_us"] else f"{'-':>11}"
            print(
                f"{n:>9} {label:<12}{r['per_sec']:11.0f}{all_n}{cpu}{r['bytes_per_article']:11.0f}{r['secs']:7.1f}"
                + (f"   settling: {r['settle_ms_per_pass']:.1f} ms a pass" if r.get("settle_ms_per_pass") else ""),
                flush=True,
            )
        if "datasketch" in res:
            base = res["datasketch"]["per_sec"]
            ratios = ", ".join(
                f"{m} {res[m]['per_sec'] / base:.2f}x" for m in methods if m not in ("datasketch", "decision")
            )
            print(f"{n:>9} speed-up vs datasketch (SAMPLE={min(args.sample, n)}): {ratios}", flush=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
