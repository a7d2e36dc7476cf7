"""The story-decision transaction: the entries locked, their articles stored, the decision lock, the memberships
other processes committed since (the engine's catch-up), and the stories and memberships written.

The engine decides between these steps, inside the one transaction, so the steps are methods of a
:class:`DecisionTransaction` opened by :func:`decision_transaction`; what they take and give are plain records.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy import text as sql
from sqlalchemy.orm import Session

from daemon.errors import StorageRefused
from daemon.states import EntryState
from storage import articles as pages
from storage import changes
from storage.db import Database
from storage.models import Article, Entry, Membership, Story, StoryAlias
from storage.records import (
    DecisionStored,
    LockedEntry,
    NewArticle,
    StoredChange,
    StoredMembership,
    StoredPage,
    StoryChange,
    StoryDecision,
)


class DecisionTransaction:
    """One transaction of story decisions (committed when its ``with`` block ends, rolled back on any error)."""

    def __init__(self, session: Session, db: Database):
        self._s = session
        self._db = db
        self._entries: dict[int, Entry] = {}
        self._articles: dict[int, Article] = {}

    def lock_entries(self, ids: Sequence[int]) -> dict[int, LockedEntry]:
        """The entries of ``ids`` that still exist, locked until the end of the transaction: another worker
        deciding the same entries waits here, then finds them done."""
        rows = self._s.scalars(select(Entry).where(Entry.id.in_(ids)).order_by(Entry.id).with_for_update())
        self._entries = {row.id: row for row in rows}
        return {
            row.id: LockedEntry(row.id, row.state, row.text, row.text_source, row.page_url, row.page_title)
            for row in self._entries.values()
        }

    def stored_pages(self, keys: Collection[str]) -> dict[str, StoredPage]:
        """The articles already stored for these pages (URL keys), by key."""
        return pages.stored_pages(self._s, keys)

    def record_same_page(self, entry_id: int, page: StoredPage, source: str | None, now: datetime) -> None:
        """The locked entry ``entry_id`` (of another feed) is the article already stored for its page: recorded on it,
        whose story and copies stay as they are, and done."""
        pages.record_feed(
            self._s, article_id=page.article_id, story_id=page.story_id, entry_id=entry_id, source=source, now=now
        )
        self._done(entry_id)

    def _done(self, entry_id: int) -> None:
        """The locked entry is done: its text now lives on its article (or on the article of its page)."""
        row = self._entries[entry_id]
        row.state = EntryState.DONE.value
        row.error = None
        row.text = row.text_source = row.page_url = row.page_title = None

    def add_articles(self, articles: Sequence[NewArticle], now: datetime) -> list[int]:
        """Store the articles (their fingerprints come with the decisions); their ids, in the order given. The unique
        URL key refuses a page that another worker stored meanwhile (storage.failures.is_conflict)."""
        rows = [
            Article(
                entry_id=a.entry_id,
                external_id=a.external_id,
                url=a.url,
                title=a.title,
                text=a.text,
                source=a.source,
                published=a.published,
                url_key=a.url_key,
                extracted_from=a.extracted_from,
                page_url=a.page_url,
                text_hash=a.text_hash,
                fingerprint=b"",
                created_at=now,
            )
            for a in articles
        ]
        self._s.add_all(rows)
        self._s.flush()
        self._articles.update((row.id, row) for row in rows)
        return [row.id for row in rows]

    def lock(self) -> None:
        """Hold the story-decision lock until the transaction ends: one decision at a time across processes.
        PostgreSQL serialises on an advisory lock; SQLite's single writer already does (since the first write)."""
        lock_decisions(self._s, self._db)

    def memberships_after(self, seq: int) -> Iterator[StoredMembership]:
        """The stored decisions after ``seq``, in order: what the engine restores to catch up."""
        rows = self._s.execute(
            select(
                Membership.seq,
                Membership.article_id,
                Membership.story_id,
                Membership.copy_of,
                Article.fingerprint,
                Article.published,
                Article.source,
            )
            .join(Article, Article.id == Membership.article_id)
            .where(Membership.seq > seq)
            .order_by(Membership.seq)
        )
        for row_seq, article_id, story_id, copy_of, fingerprint, published, source in rows:
            yield StoredMembership(row_seq, article_id, story_id, copy_of, fingerprint, published, source)

    def log_after(self, seq: int) -> Iterator[StoredMembership | StoredChange]:
        """The stored decisions and the settling changes (merges, moves) after ``seq``, together in seq order: what
        the engine restores and applies to catch up. A decision comes with the story its article is in now."""
        return changes.log_after(self._s, seq, self.memberships_after(seq))

    def last_seq(self) -> int:
        """The seq of the last stored decision or settling change (0 when none is)."""
        return max(self._s.scalar(select(func.max(Membership.seq))) or 0, changes.last_change_seq(self._s))

    def store_changes(self, settled: Sequence[StoryChange], now: datetime, seq: int) -> list[StoredChange]:
        """Write a settling pass's merges and moves after ``seq``, in order (storage/changes.py)."""
        return changes.store_changes(self._s, settled, now, seq)

    def store(self, decisions: Sequence[StoryDecision], now: datetime, seq: int) -> list[DecisionStored]:
        """Write the decisions after ``seq``, in order: each article's fingerprint, its story (created, or its
        count and time updated) and membership, and its entry done (its text now kept on the article)."""
        s = self._s
        with s.no_autoflush:
            # the batch's stories that already exist, in one query
            wanted = {decision.story_id for decision in decisions}
            stories = {story.id: story for story in s.scalars(select(Story).where(Story.id.in_(wanted)))}
            merged = s.scalars(select(StoryAlias.id).where(StoryAlias.id.in_(wanted - stories.keys()))).first()
            if merged is not None:
                # an engine that has not applied a merge: never bring the absorbed story back
                raise StorageRefused(f"story {merged} was merged into another; its id takes no new article")
            stored: list[DecisionStored] = []
            for decision in decisions:
                article = self._articles[decision.article_id]
                article.fingerprint = decision.fingerprint
                story = stories.get(decision.story_id)
                if story is None:
                    sid = decision.story_id
                    story = Story(
                        id=sid,
                        uuid=changes.story_uuid(sid),
                        title=article.title,
                        created_at=now,
                        updated_at=now,
                        article_count=0,
                    )
                    s.add(story)
                stories[story.id] = story
                story.updated_at = now
                story.article_count += 1
                seq += 1
                copy_of = int(decision.copy_of) if decision.copy_of else None
                s.add(
                    Membership(
                        article_id=article.id,
                        story_id=story.id,
                        copy_of=copy_of,
                        score=float(decision.score),
                        evidence=decision.evidence,
                        created_at=now,
                        seq=seq,
                    )
                )
                self._done(decision.entry_id)
                stored.append(DecisionStored(article.id, story.id, copy_of, seq))
        return stored


@contextmanager
def decision_transaction(db: Database) -> Iterator[DecisionTransaction]:
    """A :class:`DecisionTransaction`: committed when the block ends, rolled back on any error."""
    with db.session() as s:
        yield DecisionTransaction(s, db)


def lock_decisions(s: Session, db: Database) -> None:
    """Hold the story-decision lock until `s` commits (PostgreSQL; SQLite's single writer already serialises)."""
    if db.dialect == "postgresql":
        s.execute(sql("SELECT pg_advisory_xact_lock(7320512, hashtext(current_schema()))"))
    elif db.dialect == "sqlite":
        # the write lock now, before anything is read: a pass that reads first (settling) must not decide on a
        # state another process changes before its first write (a write that changes no row still takes the lock)
        s.execute(sql("UPDATE stories SET article_count = article_count WHERE 0 = 1"))
