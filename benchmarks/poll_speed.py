"""Polling speed: wiredesk against lemon24/reader on one loopback farm of 1,000 RSS feeds x 20 entries.

    python benchmarks/poll_speed.py --reader-python /work/tmp/reader-venv/bin/python

The farm (tests/farm.py, its own process) serves every feed with ETag and Last-Modified. Each tool gets a fresh
database with the feeds already added (not timed), then a cold poll (every feed new: fetch, parse, store 20,000
entries) and a warm one (every feed answers 304). wiredesk runs as `wiredesk poll --once` with article fetching off
(fetch.fetch_articles = false); reader runs through benchmarks/reader_driver.py under the reader venv's python, once
per `--reader-workers` setting, and the best of those settings is the one compared against. wiredesk keeps its
default fetch limits (20 requests in flight, 2 per host, and every farm feed is on one host) unless --connections
says otherwise, and parses in one worker process per core.

Two times per run:
  poll     the polling itself: for wiredesk the feeds stage of the poll (fetch, parse, store; from its log lines),
           for reader the call to update_feeds_iter. Neither includes interpreter start, imports or opening the
           database.
  process  the whole command, start to exit. For wiredesk this includes the articles stage: every new entry is
           fingerprinted and assigned to a story, work reader does not do at all (shown in its own column).
Peak RSS is that of the whole process tree (wiredesk's parse workers included): the largest sum of resident memory
over samples taken every 50 ms, or the main process's own peak if larger.

Targets (issue 4): wiredesk's poll at least 2x reader's best cold and 3x reader's best warm, in feeds per second.
The machine is shared, so every configuration runs --repeat times, interleaved, and the fastest run counts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FARM = ROOT / "tests" / "farm.py"
DRIVER = Path(__file__).resolve().parent / "reader_driver.py"
COLD_TARGET, WARM_TARGET = 2.0, 3.0


@dataclass(frozen=True)
class Run:
    tool: str  # "wiredesk" or "reader w=N"
    kind: str  # "cold" or "warm"
    feeds: int
    poll_s: float | None
    process_s: float
    articles_s: float | None  # wiredesk's articles stage; None for reader
    peak_mb: float
    problem: str | None  # set when not every feed came back as expected

    def rate(self, seconds: float | None) -> float | None:
        return self.feeds / seconds if seconds else None


# ---- measuring a process ---------------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue  # gone meanwhile
    return pids


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str, str, int]:
    """Run ``cmd``; returns (wall seconds, peak tree RSS in MB, stdout, stderr, exit code)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_kb = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_kb
        while not done.wait(0.05):
            peak_kb = max(peak_kb, sum(_rss_kb(p) for p in _tree(proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_parts: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda n=n, s=s: out_parts.__setitem__(n, s.read()), daemon=True)
        for n, s in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    for r in readers:
        r.join()
    peak_kb = max(peak_kb, usage.ru_maxrss)  # the main process's own peak, exact
    return wall, peak_kb / 1024, out_parts.get("out", ""), out_parts.get("err", ""), proc.returncode


# ---- the farm ----------------------------------------------------------------------------------------------------


def start_farm(feeds: int, entries: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(FARM), "--feeds", str(feeds), "--entries", str(entries), "--no-pages"],
        stdout=subprocess.PIPE,
        text=True,
    )
    base = proc.stdout.readline().strip()
    if not base.startswith("http://"):
        proc.kill()
        raise SystemExit(f"poll_speed: the farm did not start ({FARM})")
    return proc, base


# ---- wiredesk ----------------------------------------------------------------------------------------------------

_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO wiredesk: "


def _stage_seconds(log: str, stage: str) -> float | None:
    start = re.search(_STAMP + re.escape(stage) + r": \d+ to do", log)
    end = re.search(_STAMP + re.escape(stage) + r": done", log)
    if not (start and end):
        return None
    when = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f") for m in (start, end)]
    return (when[1] - when[0]).total_seconds()


def _stages_seconds(log: str, *stages: str) -> float | None:
    times = [t for t in (_stage_seconds(log, s) for s in stages) if t is not None]
    return sum(times) if times else None


def wiredesk_runs(urls: list[str], work: Path, connections: int | None, parse_workers: int) -> list[Run]:
    work.mkdir(parents=True)
    db = work / "wiredesk.db"
    limits = [f"max_connections = {connections}", f"max_per_host = {connections}"] if connections else []
    (work / "wiredesk.toml").write_text(
        "\n".join(
            [
                "[database]",
                f'url = "sqlite:///{db}"',
                "[fetch]",
                'allow_networks = ["127.0.0.0/8"]',
                "fetch_articles = false",
                *limits,
                "[schedule]",
                f"parse_workers = {parse_workers}",
                "[log]",
                'level = "INFO"',
            ]
        )
        + "\n"
    )
    outlines = "".join(f'<outline type="rss" text="feed {i}" xmlUrl="{u}"/>' for i, u in enumerate(urls))
    (work / "feeds.opml").write_text(
        f'<?xml version="1.0"?><opml version="2.0"><head><title>farm</title></head><body>{outlines}</body></opml>'
    )
    exe = [sys.executable, "-m", "daemon"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("WIREDESK_DATABASE_URL", None)
    setup = subprocess.run([*exe, "feeds", "import", "feeds.opml"], cwd=work, env=env, capture_output=True, text=True)
    if setup.returncode != 0:
        raise SystemExit(f"poll_speed: wiredesk feeds import failed: {setup.stderr.strip()}")
    runs = []
    for kind, extra in (("cold", []), ("warm", ["--all"])):
        wall, peak, out, err, code = measure([*exe, "poll", "--once", *extra], work, env)
        summary = next((line for line in out.splitlines() if line.startswith("polled ")), "")
        expected = f"{len(urls)} ok" if kind == "cold" else f"{len(urls)} not modified"
        if code != 0:
            problem = f"exit {code}: " + (err.strip().splitlines() or ["no output"])[-1]
        elif expected not in summary:
            problem = summary or "no summary line"
        else:
            problem = None
        runs.append(
            Run(
                "wiredesk",
                kind,
                len(urls),
                _stage_seconds(err, "fetching feeds"),
                wall,
                _stages_seconds(err, "finding article texts", "deciding stories"),
                peak,
                problem,
            )
        )
    return runs


# ---- reader ------------------------------------------------------------------------------------------------------


def reader_runs(python: str, urls: list[str], work: Path, workers: int) -> list[Run]:
    work.mkdir(parents=True)
    (work / "urls.txt").write_text("\n".join(urls) + "\n")
    db = str(work / "reader.sqlite")
    setup = subprocess.run([python, str(DRIVER), db, "add", "urls.txt"], cwd=work, capture_output=True, text=True)
    if setup.returncode != 0:
        raise SystemExit(f"poll_speed: adding feeds to reader failed: {setup.stderr.strip()[-500:]}")
    runs = []
    for kind, extra in (("cold", []), ("warm", ["--all"])):
        wall, peak, out, err, code = measure(
            [python, str(DRIVER), db, "update", "--workers", str(workers), *extra], work, dict(os.environ)
        )
        try:
            result = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            runs.append(
                Run(
                    f"reader w={workers}",
                    kind,
                    len(urls),
                    None,
                    wall,
                    None,
                    peak,
                    (err.strip().splitlines() or ["no output"])[-1],
                )
            )
            continue
        want = "updated" if kind == "cold" else "not_modified"
        problem = None if code == 0 and result[want] == len(urls) else f"{result} (exit {code})"
        runs.append(Run(f"reader w={workers}", kind, len(urls), result["seconds"], wall, None, peak, problem))
    return runs


# ---- report ------------------------------------------------------------------------------------------------------


def best(runs: list[Run]) -> dict[tuple[str, str], Run]:
    chosen: dict[tuple[str, str], Run] = {}
    for run in runs:
        key = (run.tool, run.kind)
        current = chosen.get(key)
        if current is None or (run.poll_s or 1e9) < (current.poll_s or 1e9):
            chosen[key] = run
    return chosen


def fmt(value: float | None, spec: str) -> str:
    if value is None:
        width = re.match(r"\d*", spec).group()
        return "-".rjust(int(width or 0))
    return format(value, spec)


def report(runs: list[Run], repeat: int, with_reader: bool) -> int:
    chosen = best(runs)
    print()
    print(f"fastest of {repeat} run(s) per row; poll = the polling itself, process = the whole command")
    head = (
        f"{'tool':<12} {'run':<5} {'poll s':>8} {'poll feeds/s':>13} {'process s':>10} {'process feeds/s':>16} "
        f"{'articles s':>11} {'peak RSS MB':>12}  note"
    )
    print(head)
    print("-" * len(head))
    for (tool, kind), run in sorted(chosen.items(), key=lambda kv: (kv[0][0] != "wiredesk", kv[0][0], kv[0][1])):
        print(
            f"{tool:<12} {kind:<5} {fmt(run.poll_s, '8.2f')} {fmt(run.rate(run.poll_s), '13.0f')} "
            f"{run.process_s:10.2f} {fmt(run.rate(run.process_s), '16.0f')} {fmt(run.articles_s, '11.2f')} "
            f"{run.peak_mb:12.0f}  {run.problem or ''}"
        )
    if not with_reader:
        print("\nreader was not run (no --reader-python): wiredesk's numbers only, no ratios")
        return 0
    print()
    failed = False
    for kind, target in (("cold", COLD_TARGET), ("warm", WARM_TARGET)):
        ours = chosen.get(("wiredesk", kind))
        theirs = [
            r for (tool, k), r in chosen.items() if tool != "wiredesk" and k == kind and r.poll_s and not r.problem
        ]
        if ours is None or not ours.poll_s or not theirs:
            print(f"{kind}: cannot compare (a run failed)")
            failed = True
            continue
        ref = min(theirs, key=lambda r: r.poll_s)
        poll_ratio = ref.poll_s / ours.poll_s
        ref_process = min(theirs, key=lambda r: r.process_s)
        process_ratio = ref_process.process_s / ours.process_s
        ok = poll_ratio >= target and not ours.problem
        failed |= not ok
        print(
            f"{kind}: poll {poll_ratio:.2f}x reader's best ({ref.tool}), target {target:g}x: "
            f"{'met' if ok else 'NOT met'}; whole process {process_ratio:.2f}x ({ref_process.tool})"
        )
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reader-python", help="python of a venv with reader==3.27 (without it: wiredesk only)")
    p.add_argument("--reader-workers", default="1,4,16", help="reader's workers settings to try (default 1,4,16)")
    p.add_argument("--feeds", type=int, default=1000)
    p.add_argument("--entries", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3, help="runs per configuration, interleaved; the fastest counts")
    p.add_argument(
        "--connections",
        type=int,
        help="set wiredesk's fetch.max_connections and fetch.max_per_host (every farm feed is on one host); "
        "default: wiredesk's own defaults (20 overall, 2 per host)",
    )
    p.add_argument("--parse-workers", type=int, default=0, help="wiredesk's schedule.parse_workers (0: one per core)")
    p.add_argument("--keep", action="store_true", help="keep the temporary databases")
    args = p.parse_args()
    if args.reader_python and not Path(args.reader_python).exists():
        p.error(f"--reader-python {args.reader_python} does not exist")
    workers = [int(w) for w in args.reader_workers.split(",") if w.strip()]

    farm, base = start_farm(args.feeds, args.entries)
    tmp = Path(tempfile.mkdtemp(prefix="poll_speed-"))
    runs: list[Run] = []
    try:
        urls = [f"{base}/feed/{i}.xml" for i in range(args.feeds)]
        print(
            f"farm: {args.feeds} feeds x {args.entries} entries at {base}; cores: {os.cpu_count()}; "
            f"wiredesk: {args.connections or 'default'} connections, parse_workers={args.parse_workers or 'cores'}",
            flush=True,
        )
        for r in range(args.repeat):
            batch = wiredesk_runs(urls, tmp / f"wiredesk-{r}", args.connections, args.parse_workers)
            if args.reader_python:
                for w in workers:
                    batch += reader_runs(args.reader_python, urls, tmp / f"reader-{w}-{r}", w)
            for run in batch:
                print(
                    f"  run {r + 1}: {run.tool:<12} {run.kind}  poll {fmt(run.poll_s, '.2f')} s  "
                    f"process {run.process_s:.2f} s  peak {run.peak_mb:.0f} MB  {run.problem or ''}",
                    flush=True,
                )
            runs += batch
    finally:
        farm.terminate()
        farm.wait()
        if args.keep:
            print(f"databases kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return report(runs, args.repeat, bool(args.reader_python))


if __name__ == "__main__":
    sys.exit(main())
