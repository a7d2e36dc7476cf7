"""The story-candidate index (salient term -> most recent stories using it) in a datasketch storage.

With a Redis ``storage_config`` the index lives in Redis, through datasketch's own ordered storage (the
same storage layer, connection settings and key prefix as the copy LSH), so it outlives the process and is
shared by every engine on the same basename. It makes exactly the decisions of the in-memory index
(:class:`daemon.engine.candidates.StoryPostings`): the same lists, trimmed the same way, ranked by the same code.

The lists hold story ids; a lookup answers with the stories this engine knows (restored or created) and
ignores others. Restores are written only where the storage has not seen them: a counter (the position, in
arrival order, after the last article whose terms were written) tells which, so a restart over a filled
Redis writes nothing, an emptied Redis is refilled in order by the restores, and an engine catching up with
another engine's decisions writes nothing either.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import EngineError
from .candidates import push_story, rank_stories


class DatasketchStoryPostings:
    def __init__(
        self, keep: int, storage_config: dict[str, Any], story_index: Mapping[str, int], story_id: Callable[[int], str]
    ):
        from datasketch.storage import ordered_storage

        basename = storage_config.get("basename")
        if isinstance(basename, str):
            basename = basename.encode("utf-8")
        if not basename:
            raise EngineError("a Redis story index needs a 'basename' (the prefix of its keys)")
        self._keep = keep
        self._storage = ordered_storage(storage_config, name=basename + b"_stories:")
        self._redis = self._storage._redis  # the connection datasketch opened from the config
        self._counter = basename + b"_stories_applied"
        self._basename = basename
        self._story_index = story_index
        self._story_id = story_id
        self._applied = -1  # cached counter; it only grows

    # ------------------------------------------------------------------ reads

    def applied(self) -> int:
        """Articles (by arrival position) whose terms the storage holds: every position below this one."""
        value = self._redis.get(self._counter)
        self._applied = int(value) if value is not None else 0
        return self._applied

    def top(self, terms: Iterable[str], k: int) -> list[int]:
        terms = list(terms)
        if not terms:
            return []
        index = self._story_index
        found = []
        for values in self._storage.getmany(*terms):
            if values:
                known = [index.get(v.decode("utf-8")) for v in values]
                found.append(array("i", (i for i in known if i is not None)))
        return rank_stories([f for f in found if len(f)], k)

    # ------------------------------------------------------------------ writes

    def clear(self) -> None:
        """Delete every key under the basename: this index's and the copy LSH's."""
        keys = list(self._redis.scan_iter(match=self._basename + b"*", count=1000))
        for i in range(0, len(keys), 1000):
            self._redis.delete(*keys[i : i + 1000])
        self._applied = -1

    def add(self, terms: Iterable[str], story: int, position: int = 0, *, restoring: bool = False) -> None:
        if restoring and (position < self._applied or position < self.applied()):
            return
        terms = list(terms)
        sid = self._story_id(story).encode("utf-8")
        keep = self._keep
        storage = self._storage
        # datasketch's write buffer is a Redis pipeline (MULTI/EXEC): the lists and the counter change together.
        buffer = storage._buffer
        for term, p in zip(terms, storage.getmany(*terms) if terms else []):
            if not p:
                storage.insert(term, sid, buffer=True)
                continue
            if p[-1] == sid:
                continue
            if push_story(p, sid, keep):  # the same change as the in-memory lists', written back whole
                storage.remove(term, buffer=True)
                storage.insert(term, *p, buffer=True)
            else:
                storage.insert(term, sid, buffer=True)
        buffer.set(self._counter, position + 1)
        buffer.execute()
        self._applied = position + 1
