"""Engine throughput and memory against the plain datasketch path, side by side, at 10k and 100k articles.

    python benchmarks/engine_speed.py ../shared/datasets/ecbplus-dev.jsonl [--sizes 10000,100000]

The corpus is synthesised from the dev texts (seeded): each article shuffles sentences of three real
articles into new paragraphs and replaces 15 % of their words, so articles are distinct but realistic; one in ten is a
light copy of an earlier synthetic article so the copy path is exercised too.

* engine: `Engine.add` per article — fingerprint (normalisation, shingles, MinHash, salient terms), copy
  detection and story assignment.
* datasketch: word 3-shingles, `MinHash(num_perm=128).update_batch` over SHA-1-hashed shingles, then
  `MinHashLSH(threshold=0.5)` query and insert.

Each path runs in its own process so that its resident memory growth per indexed article can be read
(corpus built before the baseline reading). Prints articles/s and bytes/article.
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
    from daemon.engine import Document
    from daemon.engine.cli_cluster import read_corpus

    base = read_corpus(path)
    sentences = [[x for x in re.split(r"(?<=[.!?])\s+", d.text.replace("\n\n", " ")) if len(x) > 20] or [d.text]
                 for d in base]
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
        paras = [" ".join(words[j:j + step]) for j in range(0, len(words), step)]
        docs.append(Document(id=f"a{i}", title=base[picks[0]].title, text="\n\n".join(paras)))
    return docs


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(path: str, n: int, method: str) -> dict:
    import gc

    docs = synthesise(path, n)
    if method == "engine":
        from daemon.engine import Engine

        engine = Engine()
        engine.add(docs[0].__class__(id="warm-up", title="", text="Warm up the word table."))
    gc.collect()
    before = rss()
    t = time.perf_counter()
    if method == "engine":
        for d in docs:
            engine.add(d)
        keep = engine
    else:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=0.5, num_perm=128)
        for d in docs:
            words = d.text.lower().split()
            shingles = {" ".join(words[i:i + 3]).encode("utf-8") for i in range(max(1, len(words) - 2))}
            m = MinHash(num_perm=128)
            m.update_batch(list(shingles))
            lsh.query(m)
            lsh.insert(d.id, m)
        keep = lsh
    secs = time.perf_counter() - t
    gc.collect()
    grown = rss() - before
    del keep
    return {"method": method, "n": n, "secs": secs, "per_sec": n / secs, "bytes_per_article": grown / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--worker", nargs=2, metavar=("N", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.path, int(args.worker[0]), args.worker[1])))
        return 0

    print(f"{'articles':>9} {'method':<11}{'articles/s':>12}{'bytes/article':>15}{'sec':>8}")
    for n in (int(x) for x in args.sizes.split(",")):
        res = {}
        for method in ("engine", "datasketch"):
            out = subprocess.run([sys.executable, __file__, args.path, "--worker", str(n), method],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            res[method] = r
            print(f"{n:>9} {method:<11}{r['per_sec']:12.0f}{r['bytes_per_article']:15.0f}{r['secs']:8.1f}",
                  flush=True)
        print(f"{n:>9} {'speed-up':<11}{res['engine']['per_sec'] / res['datasketch']['per_sec']:11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
