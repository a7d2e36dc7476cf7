"""The long-running service and its cron-style sibling `poll --once`."""

from __future__ import annotations

import asyncio
import logging
import sys

from daemon.app import database, make_fetcher, pipeline_settings
from daemon.feeds import sync_config_feeds
from daemon.pipeline import Pipeline

log = logging.getLogger("wiredesk")


def poll_once(config, all_feeds: bool = False) -> int:
    from daemon.progress import console_progress

    db = database(config)
    sync_config_feeds(db, config)

    async def go():
        fetcher = make_fetcher(config)
        try:
            with console_progress() as progress:
                pipeline = Pipeline(db, fetcher, pipeline_settings(config), progress=progress)
                feeds = pipeline.due_feeds(all_feeds=all_feeds)
                return await pipeline.poll(feeds)
        finally:
            await fetcher.aclose()

    report = asyncio.run(go())
    ok = sum(1 for f in report.feeds if f.ok)
    new = sum(f.new_entries for f in report.feeds)
    stored = sum(1 for a in report.articles if a.article_id)
    print(
        f"polled {len(report.feeds)} feeds: {ok} ok, {len(report.failed_feeds)} failed, "
        f"{sum(1 for f in report.feeds if f.not_modified)} not modified; {new} new entries, {stored} new articles"
    )
    for f in report.failed_feeds:
        print(f"  {f.error}", file=sys.stderr)
    return 0


def run(config, host: str | None = None, port: int | None = None) -> int:
    from daemon.errors import WiredeskError

    raise WiredeskError("wiredesk run is not available in this version yet; use wiredesk poll --once from cron")
