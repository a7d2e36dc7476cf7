"""Candidate stories for an article: salient term -> the most recent stories using it.

:class:`StoryPostings` keeps the lists in memory; :mod:`.story_index` keeps the same lists in Redis, trimmed and
ranked by the same two functions (:func:`push_story`, :func:`rank_stories`).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, MutableSequence
from typing import TypeVar

import numpy as np

_T = TypeVar("_T")


class StoryPostings:
    """Salient term -> the most recent stories using it, for candidate-story lookup.

    Each list is a machine-int array, so a lookup concatenates the lists without touching Python
    objects and ranks the stories by shared terms with one sort: a few numpy calls whatever the
    lists hold (at most 2 * posting_limit stories each).
    """

    def __init__(self, keep: int):
        self._keep = keep
        self._lists: dict[str, array[int]] = {}

    def add(self, terms: Iterable[str], story: int, position: int = 0, *, restoring: bool = False) -> None:
        lists = self._lists
        keep = self._keep
        for t in terms:
            p = lists.get(t)
            if p is None:
                lists[t] = array("i", (story,))
            elif p[-1] != story:
                push_story(p, story, keep)

    def top(self, terms: Iterable[str], k: int) -> list[int]:
        """The k stories found under most of `terms` (a story counts once per list entry), ties to the
        earlier story; most shared first."""
        return rank_stories([p for p in map(self._lists.get, terms) if p is not None], k)


def push_story(p: MutableSequence[_T], story: _T, keep: int) -> bool:
    """Put `story` at the end of the posting list `p` (a list or array ending in another story): taken out of the last
    few entries first, the list kept within 2 * keep. True when more changed than one entry appended."""
    rewritten = False
    if story in p[-8:]:
        p.remove(story)
        rewritten = True
    p.append(story)
    if len(p) > 2 * keep:
        # News is local in time: a common term only needs to find the stories it saw recently.
        del p[:-keep]
        rewritten = True
    return rewritten


def rank_stories(found: list[array[int]], k: int) -> list[int]:
    """The k story indices occurring most often in the posting lists `found`, ties to the lower index."""
    if not found:
        return []
    x = np.concatenate(found)  # copies: no buffer of a list stays exported
    lo = int(x.min())
    span = int(x.max()) - lo + 1
    if span <= 4 * len(x):
        # The lists hold recent stories, so their indices are close together: counted in place, no sort.
        tally = np.bincount(x - lo, minlength=span)
        stories = np.flatnonzero(tally)
        counts = tally[stories]
        stories += lo
    else:
        x.sort()
        starts = np.flatnonzero(np.concatenate(([True], x[1:] != x[:-1])))
        counts = np.diff(starts, append=len(x))
        stories = x[starts]
    # One sortable key per story: more entries first, then the lower story index.
    key = stories.astype(np.int64) - (counts.astype(np.int64) << 32)
    if len(key) > k:
        key = np.partition(key, k - 1)[:k]
    key.sort()
    out: list[int] = (key & 0xFFFFFFFF).tolist()
    return out
