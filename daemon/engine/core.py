"""The incremental engine: decide an article's copy group and story, then index it."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from datetime import datetime
from typing import Callable

import numpy as np

from . import minhash
from .fingerprint import Fingerprint, compute, term_params
from .model import Assignment, Document, EngineSettings


@dataclass
class _Story:
    id: str
    centroid: dict[str, float] = field(default_factory=dict)   # sum of member term vectors
    norm2: float = 0.0
    members: int = 0
    vectors: int = 0              # members that contributed to the centroid (copies do not)
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
    def __init__(self, settings: EngineSettings | None = None,
                 new_story_id: Callable[[], str] | None = None):
        self.settings = settings or EngineSettings()
        self._term_params = term_params(self.settings)
        self._stories: list[_Story] = []
        self._story_index: dict[str, int] = {}
        self._new_story_id = new_story_id or _DefaultIds(self._story_index)
        # Per article, by insertion index.
        self._ids: list[str] = []
        self._index_of: dict[str, int] = {}
        self._sizes: list[int] = []
        self._times: list[float | None] = []
        self._story_of: list[int] = []
        self._group_of: list[int] = []              # copy group = insertion index of its founder
        self._sigs = np.zeros((1024, minhash.NUM_PERM), dtype=np.uint32)
        # Per copy group (keyed by founder): the earliest member so far.
        self._group_first: dict[int, int] = {}
        self._lsh = minhash.BandIndex(self.settings.lsh_rows)
        self._postings: dict[str, list[int]] = {}    # salient term -> most recent stories using it

    def __len__(self) -> int:
        return len(self._ids)

    # ------------------------------------------------------------------ public

    def fingerprint(self, doc: Document) -> Fingerprint:
        return compute(doc.title or "", doc.text or "", self.settings, self._term_params)

    def add(self, doc: Document) -> Assignment:
        if doc.id in self._index_of:
            raise ValueError(f"article {doc.id!r} is already indexed")
        ts = _timestamp(doc.published)
        fp = self.fingerprint(doc)
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
                    is_copy=copy_of is not None)

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
        best = None
        for i, jac in zip(idx.tolist(), agree.tolist()):
            if jac < s.copy_min_jaccard or self._sizes[i] < s.copy_min_shingles:
                continue
            _, cont = minhash.overlap(jac, fp.shingles, self._sizes[i])
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
        postings = self._postings
        counts = Counter(chain.from_iterable(postings[t] for t in fp.terms[: s.candidate_terms] if t in postings))
        if not counts:
            return None, 1.0, {}
        window = s.time_window_hours * 3600.0
        ranked = heapq.nsmallest(s.max_candidates, counts.items(), key=lambda kv: (-kv[1], kv[0]))
        weights = fp.weights.tolist()
        scored = []
        for st, _ in ranked:
            story = self._stories[st]
            if ts is not None and story.first is not None and not (
                    story.first - window <= ts <= story.last + window):
                continue
            c = story.centroid
            dot = 0.0
            for t, w in zip(fp.terms, weights):
                v = c.get(t)
                if v is not None:
                    dot += w * v
            scored.append((self._score(dot, story), st))
        scored.sort(key=lambda x: (-x[0], x[1]))
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

    def _index(self, article_id: str, fp: Fingerprint, keys: list[int], ts: float | None, story: int,
               group: int | None, *, is_copy: bool) -> None:
        i = len(self._ids)
        self._ids.append(article_id)
        self._index_of[article_id] = i
        self._sizes.append(fp.shingles)
        self._times.append(ts)
        self._story_of.append(story)
        if i >= len(self._sigs):
            grown = np.zeros((2 * len(self._sigs), minhash.NUM_PERM), dtype=np.uint32)
            grown[: len(self._sigs)] = self._sigs
            self._sigs = grown
        self._sigs[i] = fp.signature
        if fp.shingles >= self.settings.copy_min_shingles:
            self._lsh.insert(keys, i)

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
        for t, w in zip(fp.terms, fp.weights.tolist()):
            old = c.get(t, 0.0)
            dot += old * w
            c[t] = old + w
        st.vectors += 1
        st.norm2 += 2.0 * dot + float(np.dot(fp.weights, fp.weights))
        keep = self.settings.posting_limit
        for t in fp.terms[: self.settings.candidate_terms]:
            p = self._postings.get(t)
            if p is None:
                self._postings[t] = [story]
            elif p[-1] != story:
                if story in p[-8:]:
                    p.remove(story)
                p.append(story)
                if len(p) > 2 * keep:
                    # News is local in time: a common term only needs to find the stories it saw recently.
                    del p[:-keep]
