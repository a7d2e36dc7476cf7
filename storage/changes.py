"""The settling pass's changes to stored stories: merges and moves written with their evidence, the aliases of
absorbed stories, and the changes read back (for the engine's catch-up and for a story's history).

A merge moves every membership of the absorbed story to the survivor in place, deletes the absorbed story and keeps
its id and urn:uuid as an alias of the survivor; a move changes the story of an article and its copies in place. In
both, the stories' article counts follow and their update time is the change's. Every change takes the next seq of
the memberships' sequence (memberships.seq and story_changes.seq together), so a worker catching up replays the new
memberships and the changes in the order they were stored. The functions take the session of the story-decision
transaction (storage/decisions.py), under its lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from daemon.errors import StorageError, StorageRefused
from daemon.states import ChangeKind
from storage.models import Article, Membership, Story, StoryAlias
from storage.models import StoryChange as ChangeRow
from storage.records import StoredChange, StoredMembership, StoryChange

MAX_ALIAS_HOPS = 64  # a chain longer than this is a loop (aliases are moved on at each merge: one hop is usual)


def story_uuid(story_id: str) -> str:
    """The urn:uuid of a new story: its id read as a UUID when it is one (the engine's ids are), else a random one."""
    return f"urn:uuid:{uuid.UUID(hex=story_id) if len(story_id) == 32 else uuid.uuid4()}"


def last_change_seq(s: Session) -> int:
    return s.scalar(select(func.max(ChangeRow.seq))) or 0


def changes_after(s: Session, seq: int) -> list[StoredChange]:
    """The stored changes after ``seq``, in order."""
    return [_record(row) for row in s.scalars(select(ChangeRow).where(ChangeRow.seq > seq).order_by(ChangeRow.seq))]


def log_after(
    s: Session, seq: int, memberships: Iterator[StoredMembership]
) -> Iterator[StoredMembership | StoredChange]:
    """``memberships`` (those after ``seq``, in seq order) and the changes after ``seq``, together in seq order: what
    a worker replays to catch up with the others."""
    changes = iter(changes_after(s, seq))
    change = next(changes, None)
    for membership in memberships:
        while change is not None and change.seq < membership.seq:
            yield change
            change = next(changes, None)
        yield membership
    while change is not None:
        yield change
        change = next(changes, None)


def _record(row: ChangeRow) -> StoredChange:
    return StoredChange(
        seq=row.seq,
        kind=ChangeKind(row.kind),
        from_story=row.from_story,
        to_story=row.to_story,
        article_ids=tuple(int(a) for a in row.article_ids or ()),
        score=row.score,
        evidence=row.evidence or {},
        at=row.created_at,
    )


def store_changes(s: Session, changes: Sequence[StoryChange], now: datetime, seq: int) -> list[StoredChange]:
    """Write the changes after ``seq``, in order; what was stored, each with its seq. A change that does not fit what
    is stored (a story or an article that is not where the change says) is a StorageRefused: the transaction is
    rolled back and the engine rebuilt from what is stored."""
    stored: list[StoredChange] = []
    for change in changes:
        seq += 1
        if change.kind == ChangeKind.MERGE:
            article_ids = _merge(s, change, now, seq)
        elif change.kind == ChangeKind.MOVE:
            article_ids = _move(s, change, now)
        else:
            raise StorageRefused(f"unknown kind of story change {change.kind!r}")
        row = ChangeRow(
            seq=seq,
            kind=str(change.kind),
            from_story=change.from_story,
            to_story=change.to_story,
            article_ids=list(article_ids),
            score=float(change.score),
            evidence=change.evidence,
            created_at=now,
        )
        s.add(row)
        s.flush()
        stored.append(_record(row))
    return stored


def _merge(s: Session, change: StoryChange, now: datetime, seq: int) -> tuple[int, ...]:
    absorbed, survivor = change.from_story, change.to_story
    found = s.execute(select(Story.uuid).where(Story.id == absorbed)).first()
    target = s.get(Story, survivor)
    if found is None or target is None or absorbed == survivor:
        raise StorageRefused(
            f"cannot merge story {absorbed} into {survivor}: "
            + ("they are the same story" if absorbed == survivor else "one of them is not a stored story")
        )
    article_ids = tuple(
        s.scalars(select(Membership.article_id).where(Membership.story_id == absorbed).order_by(Membership.seq))
    )
    s.execute(
        update(Membership)
        .where(Membership.story_id == absorbed)
        .values(story_id=survivor)
        .execution_options(synchronize_session=False)
    )
    target.article_count += len(article_ids)
    target.updated_at = now
    # the aliases that led to the absorbed story lead to the survivor now: a chain resolves in one lookup
    s.execute(
        update(StoryAlias)
        .where(StoryAlias.survivor_id == absorbed)
        .values(survivor_id=survivor)
        .execution_options(synchronize_session=False)
    )
    s.add(StoryAlias(id=absorbed, uuid=found[0], survivor_id=survivor, seq=seq, created_at=now))
    s.flush()
    s.execute(delete(Story).where(Story.id == absorbed).execution_options(synchronize_session=False))
    return article_ids


def _move(s: Session, change: StoryChange, now: datetime) -> tuple[int, ...]:
    ids = tuple(dict.fromkeys(change.article_ids))
    if not ids or change.from_story == change.to_story:
        raise StorageRefused(f"a move from story {change.from_story} to {change.to_story} without articles to move")
    query = select(Membership.article_id, Membership.story_id).where(Membership.article_id.in_(ids))
    where = {article_id: story_id for article_id, story_id in s.execute(query)}
    astray = [a for a in ids if where.get(a) != change.from_story]
    if astray:
        raise StorageRefused(
            f"cannot move articles {', '.join(map(str, astray))} from story {change.from_story}: "
            "they are not stored in it"
        )
    source = s.get(Story, change.from_story)
    if source is None:
        raise StorageRefused(f"cannot move articles from story {change.from_story}: it is not a stored story")
    titles = {a: title for a, title in s.execute(select(Article.id, Article.title).where(Article.id.in_(ids)))}
    target = s.get(Story, change.to_story)
    if target is None:
        if s.get(StoryAlias, change.to_story) is not None:
            raise StorageRefused(f"cannot move articles to story {change.to_story}: it was merged into another")
        target = Story(
            id=change.to_story,
            uuid=story_uuid(change.to_story),
            title=titles.get(ids[0]) or "",
            created_at=now,
            updated_at=now,
            article_count=0,
        )
        s.add(target)
        s.flush()
    s.execute(
        update(Membership)
        .where(Membership.article_id.in_(ids))
        .values(story_id=change.to_story)
        .execution_options(synchronize_session=False)
    )
    source.article_count -= len(ids)
    target.article_count += len(ids)
    source.updated_at = target.updated_at = now
    if source.title in titles.values():
        # the story was named after an article that left it: named after its first remaining one
        first = s.scalar(
            select(Article.title)
            .join(Membership, Membership.article_id == Article.id)
            .where(Membership.story_id == source.id)
            .order_by(Membership.seq)
            .limit(1)
        )
        if first is not None:
            source.title = first
    return ids


# ---- readers -----------------------------------------------------------------------------------------------------


def resolve_alias(s: Session, ident: str) -> tuple[str, str] | None:
    """(the alias's own id, the story that holds its articles now) when ``ident`` is the id or urn:uuid of a story
    absorbed by a merge; None otherwise."""
    row = s.execute(
        select(StoryAlias.id, StoryAlias.survivor_id).where((StoryAlias.id == ident) | (StoryAlias.uuid == ident))
    ).first()
    if row is None:
        return None
    alias, survivor = row
    for _ in range(MAX_ALIAS_HOPS):  # aliases are moved on at each merge; a chain left by hand is followed too
        onward = s.scalar(select(StoryAlias.survivor_id).where(StoryAlias.id == survivor))
        if onward is None:
            return alias, survivor
        survivor = onward
    raise StorageError(f"story alias {alias} leads round in a circle; the story_aliases table needs repair")


def alias_ids_like(s: Session, pattern: str, limit: int) -> list[str]:
    """The alias ids matching a LIKE pattern (escaped with a backslash), in order."""
    return list(
        s.scalars(
            select(StoryAlias.id).where(StoryAlias.id.like(pattern, escape="\\")).order_by(StoryAlias.id).limit(limit)
        )
    )


def story_history(s: Session, story_id: str) -> tuple[StoredChange, ...]:
    """The merges and moves that involve the story or a story merged into it, oldest first, with the keys and titles
    of the articles they moved."""
    ids = {story_id, *s.scalars(select(StoryAlias.id).where(StoryAlias.survivor_id == story_id))}
    rows = list(
        s.scalars(
            select(ChangeRow)
            .where(or_(ChangeRow.from_story.in_(ids), ChangeRow.to_story.in_(ids)))
            .order_by(ChangeRow.seq)
        )
    )
    wanted = {int(a) for row in rows for a in row.article_ids or ()}
    about: dict[int, tuple[str, str]] = {}
    if wanted:
        for article_id, external_id, title in s.execute(
            select(Article.id, Article.external_id, Article.title).where(Article.id.in_(wanted))
        ):
            about[article_id] = (external_id or str(article_id), title)
    out = []
    for row in rows:
        record = _record(row)
        known = [about.get(a, (str(a), "")) for a in record.article_ids]
        out.append(replace(record, article_keys=tuple(k for k, _ in known), article_titles=tuple(t for _, t in known)))
    return tuple(out)
