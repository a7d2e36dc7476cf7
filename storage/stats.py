"""Counts of what is stored, for /metrics."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.db import Database
from storage.models import Article, Entry, Feed, Story
from storage.records import StoreCounts


def store_counts(db: Database) -> StoreCounts:
    with db.session() as s:
        by_status = {k: v for k, v in s.execute(select(Feed.status, func.count()).group_by(Feed.status))}
        entries = s.scalar(select(func.count()).select_from(Entry)) or 0
        articles = s.scalar(select(func.count()).select_from(Article)) or 0
        stories = s.scalar(select(func.count()).select_from(Story)) or 0
    return StoreCounts(by_status, entries, articles, stories)
