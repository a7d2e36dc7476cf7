"""Sentence-embedding speed: articles per second for title + lead, wiredesk's int8 and float32 paths against
sentence-transformers.

    python benchmarks/embed_speed.py [FILE.jsonl ...] [--workers N] [--repeat R] [--limit N]
                                     [--reference-python /path/to/venv/bin/python] [--cache-dir DIR]

FILE.jsonl: articles with `title` and `text` (default: ../shared/datasets/ecbplus-dev.jsonl and headlines-dev.jsonl
beside the project). Each article's model input is embedding_input(title, text), cut at 128 word pieces. Measured per
file, each R times, alternating between the tools so that both see the same machine load:

- wiredesk int8, one process: Embedder.embed over all texts (tokenising included, model loading not), with the
  int8 encoder in onnxruntime (built or read from --cache-dir, default the user data folder's models/);
- wiredesk float32, one process: the same with the numpy float32 forward pass;
- wiredesk, N worker processes: Engine.fingerprint_many(workers=N) with the int8 embedder — the whole fingerprint,
  lexical part included, as the daemon computes it (worker start and model loading not timed: a warm-up pass comes
  first); 0 skips it;
- with --reference-python: sentence-transformers (benchmarks/embed_speed_reference.py, kept running in that
  interpreter) on the same texts in the same run, and the largest difference between its vectors and wiredesk's.

Reported: the median and the best of the R runs of each tool, the cosine of the int8 vectors to the float32 ones
(min, 1st percentile, mean), and the load average at the start and at the end.
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


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, default=DEFAULTS)
    ap.add_argument("--workers", type=int, default=0, help="worker processes for the fingerprint-pool run (0: skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="at most this many articles per file")
    ap.add_argument("--reference-python", default=None, help="a Python with sentence-transformers and the model")
    ap.add_argument("--cache-dir", default=None, help="where the int8 graph is kept (default: the user data folder)")
    args = ap.parse_args()

    print(f"load average at start: {load_line()}", flush=True)
    t0 = time.perf_counter()
    f32 = load_embedder(precision="float32")
    t1 = time.perf_counter()
    int8 = load_embedder(precision="int8", cache_dir=args.cache_dir, report=print)
    t2 = time.perf_counter()
    print(
        f"wiredesk model load (SHA-256 check included): float32 {t1 - t0:.2f} s, int8 {t2 - t1:.2f} s "
        f"({int8.precision}); threads: {f32.threads}; cores: {len(os.sched_getaffinity(0))}"
    )
    tools = [("int8", int8), ("float32", f32)]
    rows = []
    cosines = []
    with tempfile.TemporaryDirectory() as tmpdir, Engine(embedder=int8) as engine:
        tmp = Path(tmpdir)
        for path in args.files:
            docs = read(path, args.limit)
            texts = [embedding_input(d.title, d.text) for d in docs]
            pieces = sum(len(e.ids) for e in f32._tok.encode_batch(texts))
            for _, e in tools:
                e.embed(texts[:32])  # warm-up
            if args.workers:
                list(engine.fingerprint_many(docs[:64], workers=args.workers, chunksize=32))  # start the workers
            ours: dict[str, list[float]] = {name: [] for name, _ in tools}
            vectors: dict[str, np.ndarray] = {}
            pooled, theirs = [], []
            ref = Reference(args.reference_python, texts, tmp) if args.reference_python else None
            for run in range(args.repeat):
                # alternate the order too, so that no tool always runs right after the reference
                for name, e in tools if run % 2 == 0 else tools[::-1]:
                    t = time.perf_counter()
                    vectors[name] = e.embed(texts)
                    ours[name].append(time.perf_counter() - t)
                if args.workers:
                    t = time.perf_counter()
                    for _fp in engine.fingerprint_many(docs, workers=args.workers, chunksize=32):
                        pass
                    pooled.append(time.perf_counter() - t)
                if ref is not None:
                    theirs.append(ref.run())
                print(
                    f"{path.name}: run {run + 1}/{args.repeat}: "
                    + ", ".join(f"{name} {len(docs) / ours[name][-1]:.1f}/s" for name, _ in tools)
                    + (f", {args.workers} workers {len(docs) / pooled[-1]:.1f}/s" if pooled else "")
                    + (f", sentence-transformers {len(docs) / theirs[-1]:.1f}/s" if theirs else "")
                    + f"; load {os.getloadavg()[0]:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
            ref_vectors = ref.close() if ref is not None else None
            ref_info = ref.info if ref is not None else None
            n = len(docs)
            cos = (vectors["int8"] * vectors["float32"]).sum(axis=1)
            cosines.append((path.name, n, float(cos.min()), float(np.percentile(cos, 1)), float(cos.mean())))

            def rates(seconds, n=n):
                return n / statistics.median(seconds), n / min(seconds)

            mine = {name: rates(ours[name]) for name, _ in tools}
            for name, _ in tools:
                diff = None if ref_vectors is None else float(np.abs(vectors[name] - ref_vectors).max())
                rows.append((path.name, n, pieces / n, f"wiredesk {name}, one process", mine[name], diff))
            if pooled:
                rows.append(
                    (
                        path.name,
                        n,
                        pieces / n,
                        f"wiredesk int8 fingerprints + vectors, {args.workers} workers",
                        rates(pooled),
                        None,
                    )
                )
            if theirs:
                st = rates(theirs)
                rows.append(
                    (
                        path.name,
                        n,
                        pieces / n,
                        f"sentence-transformers ({ref_info['version']}, {ref_info['threads']} threads)",
                        st,
                        None,
                    )
                )
                for name, _ in tools:
                    one = mine[name]
                    rows.append(
                        (
                            path.name,
                            n,
                            pieces / n,
                            f"ratio wiredesk {name} / sentence-transformers",
                            (one[0] / st[0], one[1] / st[1]),
                            None,
                        )
                    )
    print()
    print(
        "| file | articles | word pieces per article | tool | articles/s, median | articles/s, best run | "
        "max abs difference to sentence-transformers |"
    )
    print("|---|--:|--:|---|--:|--:|--:|")
    for name, n, per, tool, (median, best), diff in rows:
        shown = (f"{median:.2f}x", f"{best:.2f}x") if tool.startswith("ratio") else (f"{median:,.1f}", f"{best:,.1f}")
        print(
            f"| {name} | {n:,} | {per:.1f} | {tool} | {shown[0]} | {shown[1]} | "
            f"{'' if diff is None else f'{diff:.1e}'} |"
        )
    print("\n| file | articles | cosine int8 to float32: min | 1st percentile | mean |")
    print("|---|--:|--:|--:|--:|")
    for name, n, lo, p1, mean in cosines:
        print(f"| {name} | {n:,} | {lo:.4f} | {p1:.4f} | {mean:.4f} |")
    print(
        f"\n{args.repeat} runs per tool, alternating between them (the machine's other load hits both alike); "
        f"best run = the least disturbed"
    )
    print(f"load average at end: {load_line()}")


if __name__ == "__main__":
    main()
