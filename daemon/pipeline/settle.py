"""Settling: the engine's merges and moves as storage writes them, and stored ones as the engine replays them.

The engine speaks of articles by their stored ids as strings; storage by the ids themselves. A merge is stored
with the absorbed story as ``from_story`` and the survivor as ``to_story``, so that both kinds read the same way:
articles went from one story to the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.engine import Merge, Move
from daemon.states import ChangeKind
from storage.records import StoredChange, StoryChange


@dataclass(frozen=True)
class SettleReport:
    """What one settling pass did: the changes stored (in order) and how long the pass took."""

    changes: tuple[StoredChange, ...]
    seconds: float

    @property
    def merges(self) -> int:
        return sum(1 for c in self.changes if c.kind == ChangeKind.MERGE)

    @property
    def moves(self) -> int:
        return sum(1 for c in self.changes if c.kind == ChangeKind.MOVE)

    def describe(self) -> str:
        return f"{_count(self.merges, 'story', 'stories')} merged, {_count(self.moves, 'move', 'moves')} of articles"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def to_storage(change: Merge | Move) -> StoryChange:
    """An engine's change as storage writes it."""
    if isinstance(change, Merge):
        return StoryChange(ChangeKind.MERGE, change.absorbed, change.survivor, (), change.score, change.evidence)
    return StoryChange(
        ChangeKind.MOVE,
        change.from_story,
        change.to_story,
        tuple(int(a) for a in change.article_ids),
        change.score,
        change.evidence,
    )


def to_engine(stored: StoredChange) -> Merge | Move:
    """A stored change as an engine replays it (Engine.apply)."""
    if stored.kind == ChangeKind.MERGE:
        return Merge(survivor=stored.to_story, absorbed=stored.from_story, score=stored.score, evidence=stored.evidence)
    return Move(
        article_ids=tuple(str(a) for a in stored.article_ids),
        from_story=stored.from_story,
        to_story=stored.to_story,
        score=stored.score,
        evidence=stored.evidence,
    )
