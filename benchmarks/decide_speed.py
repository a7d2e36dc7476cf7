"""The story-decision stage of a poll, per article: the engine alone against the whole stage with its database writes.

    python benchmarks/decide_speed.py [--articles 3000] [--database URL] [--batch 64,1]

Fills a fresh database with `--articles` entries whose text is found and whose stories are not decided yet (state
`ready`; news-like English from the test farm, a few articles per event over 20 feeds), then times, per article:

* fingerprint: `Engine.fingerprint` of every article, in one process;
* engine: `Engine.add` with those fingerprints (copy and story decisions, no database);
* stage: `Pipeline.decide_ready`, what a poll runs after finding the texts — fingerprints, decisions, and storing the
  articles, stories and memberships, `--batch` entries per transaction (each size on its own fresh database).

The default database is a temporary SQLite file (the embedded default); pass a PostgreSQL URL to measure that, each
run in a schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def fill(db, n: int, seed: int = 7) -> list:
    import sqlalchemy as sa
    from farm import event, news

    from daemon.engine import Document
    from daemon.feeds import add_feed
    from storage.models import Entry, Feed

    rng = random.Random(seed)
    events = [event(seed, i) for i in range(max(1, n // 3))]
    urls = [f"https://example.com/{f}.xml" for f in range(20)]
    for u in urls:
        add_feed(db, u)
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    docs = []
    with db.session() as s:
        ids = {u: s.scalar(sa.select(Feed.id).where(Feed.url == u)) for u in urls}
        for i in range(n):
            ev = events[(i // 3) % len(events)]
            when = start + timedelta(seconds=30 * i)
            u = urls[i % len(urls)]
            text, title = news(rng, ev, 150), f"{ev['topic'].capitalize()} in {ev['place']}"
            docs.append(Document(id=str(i), title=title, text=text, published=when))
            s.add(
                Entry(
                    feed_id=ids[u],
                    identity=f"{u}#{i}",
                    url=f"{u}/{i}",
                    title=title,
                    content_hash=str(i),
                    state="ready",
                    text=text,
                    text_source="feed",
                    published=when,
                    first_seen_at=when,
                    changed_at=when,
                )
            )
    return docs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=3000)
    ap.add_argument("--database", default="", help="a PostgreSQL URL (default: a temporary SQLite file)")
    ap.add_argument("--batch", default="64,1", help="entries per transaction to compare (default 64,1)")
    args = ap.parse_args()

    import sqlalchemy as sa

    from daemon.engine import Engine
    from daemon.pipeline import Pipeline, PipelineSettings
    from daemon.pipeline import run as pipeline_module
    from storage import open_database

    n = args.articles
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in [int(b) for b in args.batch.split(",")]:
            schema = None
            if args.database:
                schema = "decide_" + uuid.uuid4().hex[:8]
                admin = sa.create_engine(args.database, isolation_level="AUTOCOMMIT")
                with admin.connect() as c:
                    c.execute(sa.text(f"CREATE SCHEMA {schema}"))
                url = f"{args.database}?options=-csearch_path%3D{schema}"
            else:
                url = f"sqlite:///{Path(tmp) / f'decide-{batch}.sqlite'}"
            db = open_database(url)
            docs = fill(db, n)
            engine = Engine()
            engine.fingerprint(docs[0])  # the word tables, loaded once per process
            t = time.perf_counter()
            fps = [engine.fingerprint(d) for d in docs]
            t_fp = time.perf_counter() - t
            t = time.perf_counter()
            for d, fp in zip(docs, fps):
                engine.add(d, fingerprint=fp)
            t_add = time.perf_counter() - t
            pipeline_module.DECIDE_BATCH = batch
            pipeline = Pipeline(db, fetcher=None, settings=PipelineSettings())
            pipeline.engine.get()
            t = time.perf_counter()
            outcomes = pipeline.decide_ready()
            t_stage = time.perf_counter() - t
            stories = len({o.story_id for o in outcomes if o.story_id})
            db.dispose()
            if schema:
                with admin.connect() as c:
                    c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()
            rows.append((batch, t_fp, t_add, t_stage, stories))
    where = "PostgreSQL" if args.database else "SQLite (temporary file)"
    print(f"{n} ready articles, {where}; microseconds per article")
    print(f"{'batch':>5}  {'fingerprint':>11}  {'engine':>7}  {'stage':>7}  {'stage - engine':>14}  {'stories':>7}")
    for batch, t_fp, t_add, t_stage, stories in rows:
        per = lambda x: x / n * 1e6  # noqa: E731
        print(
            f"{batch:>5}  {per(t_fp):11.0f}  {per(t_add):7.0f}  {per(t_stage):7.0f}  "
            f"{per(t_stage - t_fp - t_add):14.0f}  {stories:>7}"
        )
    print("stage: Pipeline.decide_ready (fingerprints + decisions + database); stage - engine: what the storing costs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
