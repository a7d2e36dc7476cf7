"""Prometheus metrics for /metrics: counts read from the database at scrape time, timings and errors as they happen."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from daemon.states import FeedStatus
from storage import Database
from storage.stats import store_counts


class StoreCollector:
    """Counts of what is stored; computed per scrape so that several processes agree on one truth."""

    def __init__(self, db: Database):
        self.db = db

    def collect(self):
        counts = store_counts(self.db)
        by_status = counts.feeds_by_status
        feeds = GaugeMetricFamily("wiredesk_feeds", "Feeds by status", labels=["status"])
        for status in FeedStatus:
            feeds.add_metric([status.value], by_status.get(status, 0))
        yield feeds
        yield GaugeMetricFamily(
            "wiredesk_broken_feeds",
            "Feeds whose last poll failed or that are gone",
            value=by_status.get(FeedStatus.ERROR, 0) + by_status.get(FeedStatus.GONE, 0),
        )
        yield GaugeMetricFamily("wiredesk_entries", "Stored feed entries", value=counts.entries)
        yield GaugeMetricFamily("wiredesk_articles", "Stored articles", value=counts.articles)
        yield GaugeMetricFamily("wiredesk_stories", "Stored stories", value=counts.stories)


class Metrics:
    def __init__(self, db: Database):
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(db))
        self.poll_seconds = Histogram(
            "wiredesk_poll_duration_seconds",
            "Duration of one poll cycle",
            registry=self.registry,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
        )
        self.fetch_errors = Counter(
            "wiredesk_fetch_errors", "Failed feed fetches by kind", ["kind"], registry=self.registry
        )
        self.polled_feeds = Counter(
            "wiredesk_polled_feeds", "Feed polls by outcome", ["outcome"], registry=self.registry
        )

        self.settle_seconds = Histogram(
            "wiredesk_settle_duration_seconds",
            "Duration of one settling pass (the young stories revisited)",
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
        )
        self.story_changes = Counter(
            "wiredesk_story_changes", "Stories merged and articles moved by settling", ["kind"], registry=self.registry
        )
        for kind in ("merge", "move"):
            self.story_changes.labels(kind)  # both shown from the start, at 0

    def record_settle(self, report) -> None:
        self.settle_seconds.observe(report.seconds)
        for kind, n in (("merge", report.merges), ("move", report.moves)):
            if n:
                self.story_changes.labels(kind).inc(n)

    def record(self, report, seconds: float) -> None:
        self.poll_seconds.observe(seconds)
        for f in report.feeds:
            if f.ok:
                self.polled_feeds.labels("not_modified" if f.not_modified else "ok").inc()
            else:
                self.polled_feeds.labels("error").inc()
                self.fetch_errors.labels(str(f.error_kind or "unknown")).inc()
