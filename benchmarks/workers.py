"""Several workers on one PostgreSQL database: the 1,000-feed loopback farm polled by 1, 2 and 3 workers.

    python benchmarks/workers.py [--feeds 1000] [--entries 20] [--postgres URL] [--redis URL]

For each worker count: a fresh schema, the feeds from a config file, then that many `wiredesk poll --once`
processes started together (article fetching off: the feeds' own content is clustered). Reports the wall time until
the last worker exits, feeds/s, how the feeds were shared, and whether the stories (as sets of article URLs) are
identical to the one-worker run. The farm (tests/farm.py) runs in its own process; its entries are news-like
English reports of a few events per 90 minutes, so the workers make real story and copy decisions. With `--redis`
every run is made twice: indexes in each worker's memory, then the copy and story indexes shared in Redis.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from consistency import stored_and_replayed  # noqa: E402
from ecbplus import bcubed  # noqa: E402  (benchmarks/ecbplus.py)

from daemon.app import semantic_embedder  # noqa: E402

EXE = (
    [str(ROOT / ".venv" / "bin" / "wiredesk")]
    if (ROOT / ".venv" / "bin" / "wiredesk").exists()
    else [sys.executable, "-m", "daemon"]
)


def partition(url: str) -> list[list[str]]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "select m.story_id, e.url from memberships m join articles a on a.id = m.article_id "
                "join entries e on e.id = a.entry_id"
            )
        ).all()
    engine.dispose()
    groups: dict[str, list[str]] = {}
    for sid, u in rows:
        groups.setdefault(sid, []).append(u.split("/page/", 1)[-1])
    return sorted(sorted(g) for g in groups.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument(
        "--redis", default="", help="also run with the indexes in this Redis (e.g. redis://127.0.0.1:6379/0)"
    )
    ap.add_argument("--redis-only", action="store_true", help="with --redis: only the runs with the indexes in Redis")
    args = ap.parse_args()
    farm = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "farm.py"),
            "--feeds",
            str(args.feeds),
            "--entries",
            str(args.entries),
            "--no-pages",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    base = farm.stdout.readline().strip()
    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    rows, reference = [], None
    try:
        runs = [] if args.redis and args.redis_only else [(k, "") for k in map(int, args.workers.split(","))]
        if args.redis:
            runs += [(k, args.redis) for k in map(int, args.workers.split(","))]
        for k, redis_url in runs:
            schema = "bench_" + uuid.uuid4().hex[:8]
            with admin.connect() as c:
                c.execute(sa.text(f"CREATE SCHEMA {schema}"))
            url = f"{args.postgres}?options=-csearch_path%3D{schema}"
            with tempfile.TemporaryDirectory() as tmp:
                lines = ["[fetch]", 'allow_networks = ["127.0.0.0/8"]', "fetch_articles = false"]
                if redis_url:
                    lines += ["[redis]", f'url = "{redis_url}"']
                for f in range(args.feeds):
                    lines += ["[[feeds]]", f'url = "{base}/feed/{f}.xml"']
                Path(tmp, "wiredesk.toml").write_text("\n".join(lines) + "\n")
                env = dict(os.environ, WIREDESK_DATABASE_URL=url, XDG_DATA_HOME=tmp, XDG_CONFIG_HOME=tmp)
                # feeds added and tables made before the clock starts, as a deployment would have them
                subprocess.run([*EXE, "feeds", "list", "--json"], cwd=tmp, env=env, check=True, capture_output=True)
                started = time.monotonic()
                procs = [
                    subprocess.Popen(
                        [*EXE, "poll", "--once"],
                        cwd=tmp,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        text=True,
                    )
                    for _ in range(k)
                ]
                outs = [p.communicate()[0] for p in procs]
                wall = time.monotonic() - started
            shares = [int(o.split("polled ")[1].split(" ")[0]) if "polled " in o else 0 for o in outs]
            stories = partition(url)
            stored, replayed = stored_and_replayed(url, semantic_embedder())
            if reference is None:
                reference = stories
            if redis_url:
                clear_redis(redis_url, url)
            rows.append(
                (
                    k,
                    "redis" if redis_url else "memory",
                    wall,
                    args.feeds / wall,
                    shares,
                    len(stories),
                    stored == replayed,
                    stories == reference,
                    bcubed(labels(stories), labels(reference))[2],
                    all(p.returncode == 0 for p in procs),
                )
            )
            with admin.connect() as c:
                c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        farm.terminate()
        admin.dispose()
    print(f"{args.feeds} feeds x {args.entries} entries on loopback, PostgreSQL, article pages off")
    print(
        f"{'workers':>7}  {'indexes':<7}  {'wall s':>7}  {'feeds/s':>8}  {'feeds per worker':<20} {'stories':>7}  "
        "= one engine, same sequence  identical to first run  B-cubed F1 vs first run  all exit 0"
    )
    for k, where, wall, rate, shares, n, same, identical, f1, ok in rows:
        print(
            f"{k:>7}  {where:<7}  {wall:7.1f}  {rate:8.1f}  {str(shares):<20} {n:>7}  {str(same):<27}  "
            f"{str(identical):<22}  {f1:<23.4f}  {ok}"
        )
    print(
        "'= one engine, same sequence': the stored stories and copies equal those of one fresh engine fed the articles in\n"
        "the order the workers decided them (memberships.seq): no worker decided on stale state. The B-cubed F1 against\n"
        "the first run (one worker) shows how far the stories differ, if they do."
    )
    return 0 if all(r[6] and r[7] and r[9] for r in rows) else 1


def labels(groups: list[list[str]]) -> dict[str, int]:
    """A partition as item -> group number, the form benchmarks/ecbplus.py scores."""
    return {item: i for i, group in enumerate(groups) for item in group}


def clear_redis(redis_url: str, database_url: str) -> None:
    import redis

    from daemon.app import index_basename

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=index_basename(database_url) + b"*"))
    for i in range(0, len(keys), 1000):
        client.delete(*keys[i : i + 1000])


if __name__ == "__main__":
    sys.exit(main())
