"""The incremental engine: decide an article's copy group and story, then index it."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Iterator

import heapq

import numpy as np

from . import minhash
from .fingerprint import Fingerprint, FingerprintPool, compute, term_params
from .model import Assignment, Document, EngineSettings


@dataclass
class _Story:
    id: str
    centroid: dict[str, float] = field(default_factory=dict)   # sum of member term vectors
    norm2: float = 0.0
    members: int = 0
    vectors: int = 0              # members that contributed to the centroid (copies do not)
    anchors: list[str] | None = None  # its leading names, recomputed after the centroid changes
    first: float | None = None     # publication span, POSIX seconds
    last: float | None = None

    def extend_span(self, ts: float | None) -> None:
        if ts is None:
            return
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)


def _timestamp(published: datetime | None) -> float | None:
    if published is None:
        return None
    if published.tzinfo is None:
        raise ValueError("published must be timezone-aware")
    return published.timestamp()


class _StoryPostings:
    """Salient term -> the most recent stories using it, for candidate-story lookup.

    Each list is a machine-int array, so a lookup concatenates the lists without touching Python
    objects and ranks the stories by shared terms with one sort: a few numpy calls whatever the
    lists hold (at most 2 * posting_limit stories each).
    """

    def __init__(self, keep: int):
        self._keep = keep
        self._lists: dict[str, array] = {}

    def add(self, terms, story: int, position: int = 0, *, restoring: bool = False) -> None:
        lists = self._lists
        keep = self._keep
        for t in terms:
            p = lists.get(t)
            if p is None:
                lists[t] = array("i", (story,))
            elif p[-1] != story:
                if story in p[-8:]:
                    p.remove(story)
                p.append(story)
                if len(p) > 2 * keep:
                    # News is local in time: a common term only needs to find the stories it saw recently.
                    del p[:-keep]

    def top(self, terms, k: int) -> list[int]:
        """The k stories found under most of `terms` (a story counts once per list entry), ties to the
        earlier story; most shared first."""
        return rank_stories([p for p in map(self._lists.get, terms) if p is not None], k)


def rank_stories(found: list, k: int) -> list[int]:
    """The k story indices occurring most often in the posting lists `found`, ties to the lower index."""
    if not found:
        return []
    x = np.concatenate(found)   # copies: no buffer of a list stays exported
    x.sort()
    starts = np.flatnonzero(np.concatenate(([True], x[1:] != x[:-1])))
    counts = np.diff(starts, append=len(x))
    # One sortable key per story: more entries first, then the lower story index.
    key = x[starts].astype(np.int64) - (counts.astype(np.int64) << 32)
    if len(key) > k:
        key = np.partition(key, k - 1)[:k]
    key.sort()
    return (key & 0xFFFFFFFF).tolist()


class _DefaultIds:
    """s1, s2, ...: deterministic, and skips ids already taken by restored stories."""

    def __init__(self, taken: dict[str, int]):
        self._n = 0
        self._taken = taken

    def __call__(self) -> str:
        while True:
            self._n += 1
            sid = f"s{self._n}"
            if sid not in self._taken:
                return sid


class Engine:
    """Incremental decisions, one article at a time (see the package documentation).

    `lsh_storage`: a datasketch ``storage_config`` (for example ``{"type": "redis", "basename": b"wiredesk",
    "redis": {"host": "127.0.0.1", "port": 6379}}``) puts the copy-candidate LSH in a datasketch
    ``MinHashLSH`` on that storage and, for Redis, the story-candidate index in datasketch's ordered storage
    on the same basename (see :mod:`.story_index`): shared with other engines on the same basename and kept
    across restarts. Without it both indexes are the engine's own in-memory ones, which answer the same
    candidates without round trips.
    """

    def __init__(self, settings: EngineSettings | None = None,
                 new_story_id: Callable[[], str] | None = None, *, lsh_storage: dict | None = None):
        self.settings = settings or EngineSettings()
        self._term_params = term_params(self.settings)
        self._stories: list[_Story] = []
        self._story_index: dict[str, int] = {}
        self._new_story_id = new_story_id or _DefaultIds(self._story_index)
        # Per article, by insertion index.
        self._ids: list[str] = []
        self._index_of: dict[str, int] = {}
        self._sizes = np.zeros(1024, dtype=np.int64)   # distinct shingles per article
        self._times: list[float | None] = []
        self._story_of: list[int] = []
        self._group_of: list[int] = []              # copy group = insertion index of its founder
        self._sigs = np.zeros((1024, minhash.NUM_PERM), dtype=np.uint32)
        # Per copy group (keyed by founder): the earliest member so far.
        self._group_first: dict[int, int] = {}
        if lsh_storage is None:
            self._lsh = minhash.BandIndex(self.settings.lsh_rows)
        else:
            self._lsh = minhash.DatasketchBandIndex(self.settings.lsh_rows, lsh_storage, self._index_of)
        self._pool: FingerprintPool | None = None
        if lsh_storage is not None and lsh_storage.get("type") == "redis":
            from .story_index import DatasketchStoryPostings

            self._postings = DatasketchStoryPostings(self.settings.posting_limit, lsh_storage, self._story_index,
                                                     lambda st: self._stories[st].id)
        else:
            self._postings = _StoryPostings(self.settings.posting_limit)

    def __len__(self) -> int:
        return len(self._ids)

    # ------------------------------------------------------------------ public

    @property
    def story_index(self):
        """The story-candidate index (in memory, or in Redis through datasketch's storage with `lsh_storage`)."""
        return self._postings

    def shared_indexes_ahead(self) -> bool:
        """True when the indexes in Redis have seen articles this engine was not given (by add or restore)."""
        applied = getattr(self._postings, "applied", None)
        return applied is not None and applied() > len(self._ids)

    def clear_shared_indexes(self) -> None:
        """Delete every key of the indexes in Redis (this engine is then unusable: make a new one)."""
        self._postings.clear()

    @property
    def copy_index(self) -> minhash.BandIndex | minhash.DatasketchBandIndex:
        """The copy-candidate LSH index (in memory, or datasketch's over `lsh_storage`)."""
        return self._lsh

    def fingerprint(self, doc: Document) -> Fingerprint:
        """The fingerprint of a document: a pure function of its title and text, the settings and the
        word-frequency prior, so it may be computed anywhere (see :meth:`fingerprint_many`)."""
        return compute(doc.title or "", doc.text or "", self.settings, self._term_params)

    def fingerprint_many(self, docs: Iterable[Document], workers: int = 0,
                         chunksize: int = 32) -> Iterator[Fingerprint]:
        """Fingerprints of `docs`, in order, computed by `workers` worker processes (0: in this one).

        Lazy: documents are read and fingerprints computed a bounded number of chunks ahead of the
        consumer, so a stream can be fed to :meth:`add` as it comes (``add(doc, fingerprint=fp)``).
        The worker processes are started on first use and kept until :meth:`close`.
        """
        if workers <= 0:
            return (self.fingerprint(d) for d in docs)
        if self._pool is None or self._pool.workers != workers:
            self.close()
            self._pool = FingerprintPool(self.settings, workers)
        return self._pool.map(docs, chunksize)

    def close(self) -> None:
        """Stop the fingerprint worker processes, if any."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, doc: Document, fingerprint: Fingerprint | None = None) -> Assignment:
        """Decide and index one article. `fingerprint`, when given, must be this document's under the
        same settings (from :meth:`fingerprint` or :meth:`fingerprint_many`)."""
        if doc.id in self._index_of:
            raise ValueError(f"article {doc.id!r} is already indexed")
        ts = _timestamp(doc.published)
        fp = fingerprint if fingerprint is not None else self.fingerprint(doc)
        keys = self._lsh.keys(fp.signature)

        copy = self._find_copy(fp, keys)
        if copy is not None:
            match, jac, cont = copy
            story = self._story_of[match]
            group = self._group_of[match]
            first = self._group_first[group]
            copy_of = self._ids[first]
            evidence = {"copy": {"matched": self._ids[match], "jaccard": round(jac, 4),
                                 "containment": round(cont, 4)}}
            score = cont
        else:
            copy_of = None
            group = None
            story, score, evidence = self._find_story(fp, ts)
        if story is None:
            story = self._create_story(self._new_story_id())
            score = 1.0
            evidence.setdefault("founder", True)

        self._index(doc.id, fp, keys, ts, story, group, is_copy=copy_of is not None)
        return Assignment(article_id=doc.id, story_id=self._stories[story].id, copy_of=copy_of,
                          score=round(float(score), 6), evidence=evidence, fingerprint=fp.to_bytes())

    def restore(self, article_id: str, fingerprint: bytes, story_id: str, copy_of: str | None,
                published: datetime | None = None) -> None:
        """Re-index a stored decision (call in the original insertion order)."""
        if article_id in self._index_of:
            raise ValueError(f"article {article_id!r} is already indexed")
        fp = Fingerprint.from_bytes(fingerprint)
        story = self._story_index.get(story_id)
        if story is None:
            story = self._create_story(story_id)
        group = None
        if copy_of is not None:
            src = self._index_of.get(copy_of)
            if src is not None:
                group = self._group_of[src]
        self._index(article_id, fp, self._lsh.keys(fp.signature), _timestamp(published), story, group,
                    is_copy=copy_of is not None, restoring=True)

    # ------------------------------------------------------------------ copies

    def _find_copy(self, fp: Fingerprint, keys: list[int]) -> tuple[int, float, float] | None:
        s = self.settings
        if fp.shingles < s.copy_min_shingles:
            return None
        cands = self._lsh.query(keys)
        if not cands:
            return None
        idx = np.fromiter(cands, dtype=np.int64, count=len(cands))
        agree = np.count_nonzero(self._sigs[idx] == fp.signature[None, :], axis=1) / minhash.NUM_PERM
        # Most candidates share a band or two and nothing more: drop them before the loop.
        ok = (agree >= s.copy_min_jaccard) & (self._sizes[idx] >= s.copy_min_shingles)
        best = None
        for i, jac, size in zip(idx[ok].tolist(), agree[ok].tolist(), self._sizes[idx[ok]].tolist()):
            _, cont = minhash.overlap(jac, fp.shingles, size)
            if cont < s.copy_min_containment:
                continue
            key = (cont + jac, -i)
            if best is None or key > best[0]:
                best = (key, i, jac, cont)
        if best is None:
            return None
        return best[1], best[2], best[3]

    # ------------------------------------------------------------------ stories

    def _find_story(self, fp: Fingerprint, ts: float | None) -> tuple[int | None, float, dict]:
        s = self.settings
        if not fp.terms:
            return None, 1.0, {"reason": "no salient terms (unsupported language or empty text)"}
        ranked = self._postings.top(fp.terms[: s.candidate_terms], s.max_candidates)
        if not ranked:
            return None, 1.0, {}
        window = s.time_window_hours * 3600.0
        weights = fp.weights.tolist()
        scored = []
        for st in ranked:
            story = self._stories[st]
            if ts is not None and story.first is not None and not (
                    story.first - window <= ts <= story.last + window):
                continue
            c = story.centroid
            dot = 0.0
            # The shared terms first, in one C-level pass (its cache misses overlap; a large centroid
            # is mostly out of cache), then the sum over them in the article's term order.
            shared = c.keys() & fp.terms
            if shared:
                for t, w in zip(fp.terms, weights):
                    if t in shared:
                        dot += w * c[t]
            scored.append((self._score(dot, story), st))
        scored.sort(key=lambda x: (-x[0], x[1]))
        if s.anchor_names:
            # An article naming none of a story's leading names must be very close to join it: two events that
            # share a place and its usual vocabulary are not one story (a visit to Pyongyang vs a delegation there).
            have = set(fp.terms)
            scored = [(cos, st) for cos, st in scored
                      if cos >= s.anchor_free_similarity or self._anchored(self._stories[st], have)]
        best = scored[0] if scored and scored[0][0] >= s.story_threshold else None
        if best is None:
            ev = {"best_similarity": round(scored[0][0], 4)} if scored else {}
            return None, 1.0, ev
        cos, st = best
        story = self._stories[st]
        norm = story.norm2 ** 0.5
        shared = [(t, w * story.centroid[t] / norm) for t, w in zip(fp.terms, weights) if t in story.centroid]
        shared.sort(key=lambda x: -x[1])
        evidence = {"similarity": round(cos, 4),
                    "shared_terms": [[t, round(v, 4)] for t, v in shared[:10]],
                    "story_size": story.members}
        return st, cos, evidence

    def _anchored(self, story: _Story, terms: set[str]) -> bool:
        if story.anchors is None:
            c = story.centroid
            story.anchors = heapq.nlargest(self.settings.anchor_names, (t for t in c if t.startswith("e:")),
                                           key=lambda t: (c[t], t))
        return not story.anchors or any(t in terms for t in story.anchors)

    def _score(self, dot: float, story: _Story) -> float:
        """Centroid cosine, with a prior on how alike a young story's members are.

        dot / |centroid| equals the average similarity to the members divided by the square root of the
        members' average similarity among themselves; for a story of one or two members that average is
        unknown, so a prior (worth one member pair) stands in for it instead of the perfect 1.0 of a
        single article, which would demand too much of the second write-up.
        """
        s = self.settings
        n = story.vectors
        if n == 0:
            return 0.0
        pairs = n * (n - 1) / 2.0
        sum_pairs = (story.norm2 - n) / 2.0
        cohesion = (sum_pairs + s.cohesion_prior) / (pairs + 1.0)
        return dot / n / max(cohesion, 1e-3) ** 0.5

    def _create_story(self, story_id: str) -> int:
        if story_id in self._story_index:
            raise ValueError(f"story id {story_id!r} already exists")
        self._stories.append(_Story(story_id))
        self._story_index[story_id] = len(self._stories) - 1
        return len(self._stories) - 1

    # ------------------------------------------------------------------ indexing

    def _index(self, article_id: str, fp: Fingerprint, keys, ts: float | None, story: int,
               group: int | None, *, is_copy: bool, restoring: bool = False) -> None:
        i = len(self._ids)
        self._ids.append(article_id)
        self._index_of[article_id] = i
        self._times.append(ts)
        self._story_of.append(story)
        if i >= len(self._sigs):
            self._sigs = np.concatenate([self._sigs, np.zeros_like(self._sigs)])
            self._sizes = np.concatenate([self._sizes, np.zeros_like(self._sizes)])
        self._sigs[i] = fp.signature
        self._sizes[i] = fp.shingles
        if fp.shingles >= self.settings.copy_min_shingles:
            self._lsh.insert(keys, i, article_id, restoring=restoring)

        if group is None:
            group = i
            self._group_first[i] = i
        else:
            first = self._group_first[group]
            if ts is not None and (self._times[first] is None or ts < self._times[first]):
                self._group_first[group] = i
        self._group_of.append(group)

        st = self._stories[story]
        st.extend_span(ts)
        st.members += 1
        if is_copy or not fp.terms:
            return  # a copy adds no new wording; the centroid describes distinct write-ups
        c = st.centroid
        dot = 0.0
        weights = fp.weights.tolist()
        for t, w in zip(fp.terms, weights):
            old = c.get(t, 0.0)
            dot += old * w
            c[t] = old + w
        if st.anchors is not None:
            if min(weights) >= 0.0:
                # Only this article's terms changed, and none went down: the new leading names are among
                # the old ones and this article's (the same list as a pass over the whole centroid, which
                # costs more than the rest of the decision once a story is large).
                names = set(st.anchors).union(t for t in fp.terms if t.startswith("e:"))
                st.anchors = heapq.nlargest(self.settings.anchor_names, names, key=lambda t: (c[t], t))
            else:
                st.anchors = None
        st.vectors += 1
        st.norm2 += 2.0 * dot + float(np.dot(fp.weights, fp.weights))
        self._postings.add(fp.terms[: self.settings.candidate_terms], story, i, restoring=restoring)
