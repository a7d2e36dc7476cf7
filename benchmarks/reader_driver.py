"""Drive lemon24/reader for benchmarks/poll_speed.py: run with the python of a venv that has reader installed.

    python reader_driver.py DB add URLS_FILE          # setup: one feed URL a line
    python reader_driver.py DB update --workers N [--all]

``update`` prints one JSON line: the seconds spent in ``update_feeds_iter`` (the poll itself, imports and opening the
database excluded) and how the feeds came out. ``--all`` updates every feed, scheduled or not, as a warm re-poll must:
reader would otherwise skip feeds updated less than its update interval ago.

Kept free of wiredesk imports: it runs under another interpreter with only reader installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("db")
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add")
    add.add_argument("urls_file")
    up = sub.add_parser("update")
    up.add_argument("--workers", type=int, default=1)
    up.add_argument("--all", action="store_true")
    args = p.parse_args()

    from reader import make_reader

    reader = make_reader(args.db)
    try:
        if args.action == "add":
            with open(args.urls_file, encoding="utf-8") as fh:
                urls = [line.strip() for line in fh if line.strip()]
            for url in urls:
                reader.add_feed(url, exist_ok=True)
            print(json.dumps({"added": len(urls)}))
            return 0
        counts = {"updated": 0, "not_modified": 0, "failed": 0, "new_entries": 0}
        first_error = None
        started = time.perf_counter()
        for result in reader.update_feeds_iter(workers=args.workers, scheduled=not args.all):
            value = result.value
            if value is None:
                counts["not_modified"] += 1
            elif isinstance(value, Exception):
                counts["failed"] += 1
                first_error = first_error or f"{result.url}: {value}"
            else:
                counts["updated"] += 1
                counts["new_entries"] += value.new
        seconds = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "seconds": seconds,
                    "feeds": sum(counts[k] for k in ("updated", "not_modified", "failed")),
                    **counts,
                    "first_error": first_error,
                }
            )
        )
        return 0
    finally:
        reader.close()


if __name__ == "__main__":
    sys.exit(main())
