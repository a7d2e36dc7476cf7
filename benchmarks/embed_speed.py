"""Sentence-embedding speed: articles per second for title + lead, wiredesk's numpy model against sentence-transformers.

    python benchmarks/embed_speed.py [FILE.jsonl ...] [--workers N] [--repeat R] [--limit N]
                                     [--reference-python /path/to/venv/bin/python]

FILE.jsonl: articles with `title` and `text` (default: ../shared/datasets/ecbplus-dev.jsonl and headlines-dev.jsonl
beside the project). Each article's model input is embedding_input(title, text), cut at 128 word pieces. Measured per
file, each R times, alternating between the tools so that both see the same machine load:

- wiredesk, one process: Embedder.embed over all texts (tokenising included, model loading not);
- wiredesk, N worker processes: Engine.fingerprint_many(workers=N) with the embedder — the whole fingerprint, lexical
  part included, as the daemon computes it (worker start and model loading not timed: a warm-up pass comes first);
- with --reference-python: sentence-transformers (benchmarks/embed_speed_reference.py, kept running in that
  interpreter) on the same texts in the same run, and the largest difference between its vectors and wiredesk's.

Reported: the median and the best of the R runs of each tool.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon.engine import Document, Engine  # noqa: E402
from daemon.engine.embed import embedding_input, load_embedder  # noqa: E402

DEFAULTS = [
    ROOT.parent / "shared" / "datasets" / "ecbplus-dev.jsonl",
    ROOT.parent / "shared" / "datasets" / "headlines-dev.jsonl",
]


def read(path: Path, limit: int | None) -> list[Document]:
    docs = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if line.strip():
                obj = json.loads(line)
                docs.append(
                    Document(id=str(obj.get("id", i)), title=obj.get("title") or "", text=obj.get("text") or "")
                )
            if limit and len(docs) >= limit:
                break
    return docs


class Reference:
    """sentence-transformers in its own interpreter, kept running so that its runs alternate with wiredesk's."""

    def __init__(self, python: str, texts: list[str], tmp: Path):
        src, self.out = tmp / "texts.json", tmp / "ref.npy"
        src.write_text(json.dumps(texts), encoding="utf-8")
        self.proc = subprocess.Popen(
            [python, str(ROOT / "benchmarks" / "embed_speed_reference.py"), str(src), str(self.out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, HF_HUB_OFFLINE="1"),
        )
        self.info = self._answer()

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"embed_speed: the reference run failed (exit {self.proc.wait()})")
        return json.loads(line)

    def run(self) -> float:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._answer()["seconds"]

    def close(self) -> np.ndarray:
        self.proc.stdin.close()
        self.proc.wait()
        return np.load(self.out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, default=DEFAULTS)
    ap.add_argument("--workers", type=int, default=2, help="worker processes for the fingerprint-pool run (0: skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="at most this many articles per file")
    ap.add_argument("--reference-python", default=None, help="a Python with sentence-transformers and the model")
    args = ap.parse_args()

    t0 = time.perf_counter()
    embedder = load_embedder()
    load_s = time.perf_counter() - t0
    print(
        f"wiredesk model load (SHA-256 check included): {load_s:.2f} s; embedder threads: {embedder.threads}; "
        f"cores: {len(os.sched_getaffinity(0))}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir, Engine(embedder=embedder) as engine:
        tmp = Path(tmpdir)
        for path in args.files:
            docs = read(path, args.limit)
            texts = [embedding_input(d.title, d.text) for d in docs]
            pieces = sum(len(e.ids) for e in embedder._tok.encode_batch(texts))
            embedder.embed(texts[:32])  # warm-up
            if args.workers:
                list(engine.fingerprint_many(docs[:64], workers=args.workers, chunksize=32))  # start the workers
            ours, pooled, theirs = [], [], []
            ref = Reference(args.reference_python, texts, tmp) if args.reference_python else None
            for _ in range(args.repeat):
                t = time.perf_counter()
                vectors = embedder.embed(texts)
                ours.append(time.perf_counter() - t)
                if args.workers:
                    t = time.perf_counter()
                    for _fp in engine.fingerprint_many(docs, workers=args.workers, chunksize=32):
                        pass
                    pooled.append(time.perf_counter() - t)
                if ref is not None:
                    theirs.append(ref.run())
                print(
                    f"{path.name}: run {len(ours)}/{args.repeat}: wiredesk {len(docs) / ours[-1]:.1f}/s"
                    + (f", {args.workers} workers {len(docs) / pooled[-1]:.1f}/s" if pooled else "")
                    + (f", sentence-transformers {len(docs) / theirs[-1]:.1f}/s" if theirs else ""),
                    file=sys.stderr,
                    flush=True,
                )
            ref_vectors = ref.close() if ref is not None else None
            ref_info = ref.info if ref is not None else None
            n = len(docs)

            def rates(seconds, n=n):
                return n / statistics.median(seconds), n / min(seconds)

            one = rates(ours)
            rows.append((path.name, n, pieces / n, "wiredesk numpy, one process", one, None))
            if pooled:
                rows.append(
                    (
                        path.name,
                        n,
                        pieces / n,
                        f"wiredesk fingerprints + vectors, {args.workers} workers",
                        rates(pooled),
                        None,
                    )
                )
            if theirs:
                st = rates(theirs)
                diff = float(np.abs(vectors - ref_vectors).max())
                rows.append(
                    (
                        path.name,
                        n,
                        pieces / n,
                        f"sentence-transformers ({ref_info['version']}, {ref_info['threads']} threads)",
                        st,
                        diff,
                    )
                )
                rows.append(
                    (
                        path.name,
                        n,
                        pieces / n,
                        "ratio wiredesk one process / sentence-transformers",
                        (one[0] / st[0], one[1] / st[1]),
                        None,
                    )
                )
    print()
    print(
        "| file | articles | word pieces per article | tool | articles/s, median | articles/s, best run | "
        "max abs difference |"
    )
    print("|---|--:|--:|---|--:|--:|--:|")
    for name, n, per, tool, (median, best), diff in rows:
        shown = (f"{median:.2f}x", f"{best:.2f}x") if tool.startswith("ratio") else (f"{median:,.1f}", f"{best:,.1f}")
        print(
            f"| {name} | {n:,} | {per:.1f} | {tool} | {shown[0]} | {shown[1]} | "
            f"{'' if diff is None else f'{diff:.1e}'} |"
        )
    print(
        f"\n{args.repeat} runs per tool, alternating between them (the machine's other load hits both alike); "
        f"best run = the least disturbed"
    )


if __name__ == "__main__":
    main()
