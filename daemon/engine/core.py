"""The incremental engine: decide an article's copy group and story, then index it."""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Callable, Iterable, Iterator, MutableSequence, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..errors import EngineError
from . import decision, minhash
from .blas import matvec as _matvec
from .fingerprint import Fingerprint, FingerprintPool, compute, embed_with, term_params
from .model import Assignment, Document, EngineSettings

if TYPE_CHECKING:
    from .story_index import DatasketchStoryPostings

_T = TypeVar("_T")


@dataclass
class _Story:
    id: str
    book: _Centroids = field(repr=False)
    terms: array[int] = field(default_factory=lambda: array("I"))  # ids of the terms of its centroid
    norm2: float = 0.0
    # |centroid|^2 per kind: words, names, numbers
    kind_norm2: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    vec_count: int = 0  # members whose semantic vector is in the story's mean
    # The latest decision.NEAREST_MEMBERS of those vectors (float16, as stored), for the nearest-member cosine: one
    # block per story, read in one piece, instead of rows gathered from all over the article table. A ring once
    # full; grows by doubling until then.
    recent: np.ndarray | None = field(default=None, repr=False)
    time_sum: float = 0.0  # of the dated members, for the mean time
    dated: int = 0
    outlets: set[str] = field(default_factory=set)
    members: int = 0
    vectors: int = 0  # members that contributed to the centroid (copies do not)
    anchors: list[str] | None = None  # its leading names, recomputed after the centroid changes
    anchor_weights: list[float] = field(default_factory=list)  # their centroid weights
    first: float | None = None  # publication span, POSIX seconds
    last: float | None = None
    index: int = -1

    @property
    def centroid(self) -> dict[str, float]:
        """Sum of member term vectors, term -> weight (built from the engine's table on each call)."""
        return self.book.centroid(self)

    def extend_span(self, ts: float | None) -> None:
        if ts is None:
            return
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)


def fp_vector(fp: Fingerprint) -> np.ndarray | None:
    """The fingerprint's semantic vector as float32, or None (no model, or a fingerprint stored without one)."""
    v = fp.vector
    if v is None or len(v) != _DIM:
        return None
    # As stored (float16): an engine restored from the database then decides exactly as one that never stopped.
    return np.asarray(v, dtype=np.float16).astype(np.float32)


def _within(story: _Story, ts: float, window: float) -> bool:
    """Whether a story is a candidate for an article published at `ts`: undated, or dated within `window` seconds."""
    if story.first is None or story.last is None:
        return True
    return story.first - window <= ts <= story.last + window


def _remember(story: _Story, v: np.ndarray) -> None:
    """Keep `v` among the story's latest member vectors (the oldest one goes once NEAREST_MEMBERS are kept)."""
    n = story.vec_count
    keep = decision.NEAREST_MEMBERS
    block = story.recent
    if block is None:
        block = story.recent = np.empty((1, _DIM), dtype=np.float16)
    elif n < keep and n == len(block):
        grown = np.empty((min(2 * n, keep), _DIM), dtype=np.float16)
        grown[:n] = block
        block = story.recent = grown
    block[n % keep] = v
    story.vec_count = n + 1


def _choice(p: np.ndarray, need: np.ndarray, key: np.ndarray | None = None) -> int | None:
    """The candidate to join, or None when none passes its threshold: among those that pass, the clearest pass
    (p - threshold) or, with `key`, the highest key; ties to the earlier."""
    ok = p >= need
    if not ok.any():
        return None
    return int(np.argmax(np.where(ok, p - need if key is None else key, -np.inf)))


def _timestamp(published: datetime | None) -> float | None:
    if published is None:
        return None
    if published.tzinfo is None:
        raise EngineError("published must be timezone-aware")
    return published.timestamp()


_M64 = (1 << 64) - 1
_KINDS = {"w:": 0, "e:": 1, "n:": 2}
_DIM = 384  # semantic vector width
_FIB = np.uint64(0x9E3779B97F4A7C15)

# An article's terms in a story's centroid, as _Centroids.values gives them: (keys, slots, values, present).
_Found = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class _CentroidTable:
    """(story index, term id) -> the story's centroid weight for the term, in one numpy array.

    Every story's centroid in one hash table keyed by ``story << 32 | term``: the dot products of an
    article with all its candidate stories are one gather of a few hundred keys, and an article joining
    a story one scatter, with no Python object per entry. The table is far larger than the cache, so what
    a lookup costs is the cache lines it touches: a bucket is one 64-byte line holding four keys and their
    four values, filled in order. A key whose bucket is full goes to a small dict, which a lookup consults
    only for keys that missed in a full bucket; the table doubles when more than LOAD of its slots are
    taken, which keeps that rare. Values are float64 sums in the order the articles came, as a dict of
    Python floats would hold them.
    """

    WIDTH = 4  # keys per bucket; the row is WIDTH keys then WIDTH values
    LOAD = 0.3
    _EMPTY = np.uint64(_M64)  # never a key: story indices stay below 2**31

    def __init__(self, buckets: int = 1 << 12):
        self.size = 0
        self._over: dict[int, float] = {}
        self._alloc(buckets)

    def _alloc(self, buckets: int) -> None:
        w = self.WIDTH
        self._nb = buckets
        self._shift = np.uint64(64 - (buckets.bit_length() - 1))
        # Rows aligned on cache lines.
        raw = np.empty(buckets * 2 * w + 8, dtype=np.uint64)
        skip = (-raw.ctypes.data % 64) // 8
        self._rows = raw[skip : skip + buckets * 2 * w].reshape(buckets, 2 * w)
        self._rows[:, :w] = self._EMPTY
        self._rows[:, w:] = 0  # 0.0
        self._flat = self._rows.reshape(-1)
        self._flat_vals = self._flat.view(np.float64)
        self._fill = np.zeros(buckets, dtype=np.int64)
        self._full = np.zeros(buckets, dtype=bool)  # fill == WIDTH

    def _bucket(self, keys: np.ndarray) -> np.ndarray:
        # Array arithmetic wraps modulo 2**64 without a warning (only numpy scalars check).
        return ((keys * _FIB) >> self._shift).astype(np.intp)

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per key: (index of its value in the flat table, or -1 if absent or in the overflow dict;
        its value, 0.0 if absent; present)."""
        n = len(keys)
        b = self._bucket(keys)
        rows = self._rows.take(b, axis=0)
        # At most one key of a row matches (WIDTH is 4: a row is 8 words, keys in columns 0-3 and their
        # values in 4-7).
        r, col = (rows[:, :4] == keys[:, None]).nonzero()
        col += 4
        hit = np.zeros(n, dtype=bool)
        hit[r] = True
        vals = np.zeros(n, dtype=np.float64)
        vals[r] = rows.reshape(-1).take((r << 3) + col).view(np.float64)
        slot = np.full(n, -1, dtype=np.intp)
        slot[r] = (b.take(r) << 3) + col
        if self._over:
            full = self._full.take(b)
            full[r] = False
            for i in full.nonzero()[0].tolist():
                v = self._over.get(int(keys[i]))
                if v is not None:
                    vals[i] = v
                    hit[i] = True
        return slot, vals, hit

    def add(self, keys: np.ndarray, slot: np.ndarray, hit: np.ndarray, new_vals: np.ndarray) -> None:
        """Store `new_vals` for distinct `keys` (slot and hit from :meth:`find` just before)."""
        if hit.all() and not self._over:
            self._flat_vals[slot] = new_vals
            return
        inplace = slot >= 0
        self._flat_vals[slot[inplace]] = new_vals[inplace]
        over = hit & ~inplace
        if over.any():
            for k, v in zip(keys[over].tolist(), new_vals[over].tolist()):
                self._over[k] = v
        fresh = ~hit
        if fresh.any():
            self._place(keys[fresh], new_vals[fresh])
            self.size += int(np.count_nonzero(fresh))
            if self.size > self.LOAD * self._nb * self.WIDTH:
                self._grow()

    def _place(self, keys: np.ndarray, vals: np.ndarray) -> None:
        w = self.WIDTH
        b = self._bucket(keys)
        col = self._fill[b]
        sb = np.sort(b)
        if len(b) > 1 and (sb[1:] == sb[:-1]).any():
            # Some keys share a bucket: each takes the next free column in turn.
            order = b.argsort(kind="stable")
            b, keys, vals = b[order], keys[order], vals[order]
            head = np.empty(len(b), dtype=bool)
            head[0] = True
            np.not_equal(b[1:], b[:-1], out=head[1:])
            starts = head.nonzero()[0]
            col = self._fill[b] + (np.arange(len(b)) - starts[np.cumsum(head) - 1])
            ub = b[starts]
            self._fill[ub] = np.minimum(self._fill[ub] + np.diff(starts, append=len(b)), w)
        else:
            self._fill[b] = np.minimum(col + 1, w)
        fit = col < w
        if not fit.all():
            for k, v in zip(keys[~fit].tolist(), vals[~fit].tolist()):
                self._over[k] = v
            b, col, keys, vals = b[fit], col[fit], keys[fit], vals[fit]
        self._full[b[col == w - 1]] = True
        at = b * (2 * w) + col
        self._flat[at] = keys
        self._flat_vals[at + w] = vals

    def _grow(self) -> None:
        """Double the buckets. A bucket's keys hash to one of two buckets of the doubled table (one more bit
        of the same product), so each row splits in two in place of order: no sort, no collisions."""
        w = self.WIDTH
        old, over = self._rows, self._over
        self._over = {}
        self._alloc(self._nb * 2)
        keys = old[:, :w]
        used = keys != self._EMPTY
        upper = (self._bucket(keys) & 1).astype(bool)  # new bucket = 2 * old bucket + this bit
        lo, hi = used & ~upper, used & upper
        col = np.where(upper, hi.cumsum(axis=1), lo.cumsum(axis=1)) - 1
        row = 2 * np.arange(len(old))[:, None] + upper
        at = (row * (2 * w) + col)[used]
        self._flat[at] = keys[used]
        self._flat[at + w] = old[:, w:][used]
        self._fill = np.stack([lo.sum(axis=1), hi.sum(axis=1)], axis=1).reshape(-1)
        self._full = self._fill >= w
        if over:
            self._place(
                np.fromiter(over.keys(), dtype=np.uint64, count=len(over)),
                np.fromiter(over.values(), dtype=np.float64, count=len(over)),
            )


class _Centroids:
    """Every story's centroid: term strings numbered once per engine, weights in one _CentroidTable."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self.names: list[str] = []
        self._is_name = np.zeros(1024, dtype=bool)  # per term id: a name ("e:...")
        self._kind = np.zeros(1024, dtype=np.uint8)  # per term id: 0 word, 1 name, 2 number
        self.table = _CentroidTable()

    def term_ids(self, terms: Sequence[str]) -> np.ndarray:
        ids = self._ids
        out = list(map(ids.get, terms))
        if None in out:
            names = self.names
            for i, t in enumerate(terms):
                if out[i] is None:
                    v = ids.get(t)  # an earlier duplicate in this article has just been numbered
                    if v is None:
                        v = ids[t] = len(names)
                        names.append(t)
                        if v >= len(self._is_name):
                            self._is_name = np.concatenate([self._is_name, np.zeros_like(self._is_name)])
                            self._kind = np.concatenate([self._kind, np.zeros_like(self._kind)])
                        self._is_name[v] = t.startswith("e:")
                        self._kind[v] = _KINDS.get(t[:2], 0)
                    out[i] = v
        return np.array(out, dtype=np.uint64)

    def name_mask(self, tids: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._is_name[tids]
        return out

    def kinds(self, tids: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._kind[tids]
        return out

    def keys(self, story: int, tids: np.ndarray) -> np.ndarray:
        return tids | (np.uint64(story) << np.uint64(32))

    def values(self, story: int, tids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(keys, slots, values, present) of the terms `tids` in the centroid of story `story`."""
        keys = self.keys(story, tids)
        return (keys,) + self.table.find(keys)

    def centroid(self, story: _Story) -> dict[str, float]:
        tids = np.array(story.terms, dtype=np.uint64)
        _, _, vals, _ = self.values(story.index, tids)
        names = self.names
        return {names[i]: v for i, v in zip(tids.tolist(), vals.tolist())}


class _StoryPostings:
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

    def __init__(
        self,
        settings: EngineSettings | None = None,
        new_story_id: Callable[[], str] | None = None,
        *,
        lsh_storage: dict[str, Any] | None = None,
        embedder: Any = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        # The semantic model (an .embed.Embedder), or None: fingerprints then carry no vector.
        self.embedder = embedder
        self._term_params = term_params(self.settings)
        self._stories: list[_Story] = []
        self._story_index: dict[str, int] = {}
        self._new_story_id = new_story_id or _DefaultIds(self._story_index)
        # Per article, by insertion index.
        self._ids: list[str] = []
        self._index_of: dict[str, int] = {}
        self._sizes = np.zeros(1024, dtype=np.int64)  # distinct shingles per article
        self._times: list[float | None] = []
        self._story_of: list[int] = []
        self._group_of: list[int] = []  # copy group = insertion index of its founder
        self._sigs = np.zeros((1024, minhash.NUM_PERM), dtype=np.uint32)
        # Semantic vector per article (0: none), as stored: float16 holds them exactly (see fp_vector) in half the
        # memory, and the nearest-member search gathers half the bytes.
        self._vecs = np.zeros((1024, _DIM), dtype=np.float16)
        # Per story: the sum of its members' semantic vectors and that sum normalised (0: none yet).
        self._story_vsum = np.zeros((256, _DIM), dtype=np.float64)
        self._story_unit = np.zeros((256, _DIM), dtype=np.float32)
        # The decision's weights and threshold (the fitted ones unless a fitting run passes its own).
        self._models = dict(decision.MODELS)
        self._choose_by = dict(decision.CHOOSE_BY)
        # Per copy group (keyed by founder): the earliest member so far.
        self._group_first: dict[int, int] = {}
        if lsh_storage is None:
            self._lsh: minhash.BandIndex | minhash.DatasketchBandIndex = minhash.BandIndex(self.settings.lsh_rows)
        else:
            self._lsh = minhash.DatasketchBandIndex(self.settings.lsh_rows, lsh_storage, self._index_of)
        self._pool: FingerprintPool | None = None
        if lsh_storage is not None and lsh_storage.get("type") == "redis":
            from .story_index import DatasketchStoryPostings

            self._postings: DatasketchStoryPostings | _StoryPostings = DatasketchStoryPostings(
                self.settings.posting_limit, lsh_storage, self._story_index, lambda st: self._stories[st].id
            )
        else:
            self._postings = _StoryPostings(self.settings.posting_limit)
        self._book = _Centroids()

    def __len__(self) -> int:
        return len(self._ids)

    # ------------------------------------------------------------------ public

    @property
    def story_index(self) -> DatasketchStoryPostings | _StoryPostings:
        """The story-candidate index (in memory, or in Redis through datasketch's storage with `lsh_storage`)."""
        return self._postings

    def shared_indexes_ahead(self) -> bool:
        """True when the indexes in Redis have seen articles this engine was not given (by add or restore)."""
        applied = getattr(self._postings, "applied", None)
        return applied is not None and applied() > len(self._ids)

    def clear_shared_indexes(self) -> None:
        """Delete every key of the indexes in Redis (this engine is then unusable: make a new one)."""
        self._postings.clear()  # type: ignore[union-attr]  # only the Redis index has one

    @property
    def copy_index(self) -> minhash.BandIndex | minhash.DatasketchBandIndex:
        """The copy-candidate LSH index (in memory, or datasketch's over `lsh_storage`)."""
        return self._lsh

    def fingerprint(self, doc: Document) -> Fingerprint:
        """The fingerprint of a document: a pure function of its title and text, the settings and the
        word-frequency prior, so it may be computed anywhere (see :meth:`fingerprint_many`)."""
        return compute(doc.title or "", doc.text or "", self.settings, self._term_params, self.embedder)

    def fingerprint_many(
        self, docs: Iterable[Document], workers: int = 0, chunksize: int = 32
    ) -> Iterator[Fingerprint]:
        """Fingerprints of `docs`, in order, computed by `workers` worker processes (0: in this one).

        Lazy: documents are read and fingerprints computed a bounded number of chunks ahead of the
        consumer, so a stream can be fed to :meth:`add` as it comes (``add(doc, fingerprint=fp)``).
        The worker processes are started on first use and kept until :meth:`close`.
        """
        if workers <= 0:
            if self.embedder is None:
                return (self.fingerprint(d) for d in docs)
            return self._fingerprint_chunks(docs, chunksize)
        model_dir = None if self.embedder is None else str(self.embedder.model_dir)
        if self._pool is None or self._pool.workers != workers or self._pool.model_dir != model_dir:
            self.close()
            self._pool = FingerprintPool(self.settings, workers, model_dir)
        return self._pool.map(docs, chunksize)

    def _fingerprint_chunks(self, docs: Iterable[Document], chunksize: int) -> Iterator[Fingerprint]:
        # In this process, with the model: lexical fingerprints one by one, vectors a chunk at a time.
        it = iter(docs)
        while chunk := list(islice(it, chunksize)):
            vectors = self.embedder.embed_articles((d.title or "", d.text or "") for d in chunk)
            for d, v in zip(chunk, vectors):
                yield replace(compute(d.title or "", d.text or "", self.settings, self._term_params), vector=v.copy())

    def fingerprints_to_add(self, docs: list[Document], executor: Executor | None = None) -> list[Fingerprint]:
        """The fingerprints of a batch about to be given to :meth:`add` in this order, with the semantic vectors of
        all but the copies computed in one batch: in the processes of `executor` (a ``concurrent.futures``
        process pool, for example the daemon's parse workers) when given, else in this one.

        A copy takes its original's vector in :meth:`add` instead of computing its own; an article that looked like
        a copy here and is not one there (an index shared with other engines moved on) gets its vector there.
        """
        fps = [compute(d.title or "", d.text or "", self.settings, self._term_params) for d in docs]
        if self.embedder is None or not fps:
            return fps
        need = [j for j, copy in enumerate(self._copies_ahead(fps)) if not copy]
        vectors = embed_with(self.embedder, [(docs[j].title or "", docs[j].text or "") for j in need], executor)
        for j, v in zip(need, vectors):
            fps[j] = replace(fps[j], vector=v)
        return fps

    def close(self) -> None:
        """Stop the fingerprint worker processes, if any."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, doc: Document, fingerprint: Fingerprint | None = None) -> Assignment:
        """Decide and index one article. `fingerprint`, when given, must be this document's under the
        same settings (from :meth:`fingerprint` or :meth:`fingerprint_many`)."""
        if doc.id in self._index_of:
            raise EngineError(f"article {doc.id!r} is already indexed")
        ts = _timestamp(doc.published)
        fp = fingerprint if fingerprint is not None else self.fingerprint(doc)
        keys = self._lsh.keys(fp.signature)

        copy = self._find_copy(fp, keys)
        story: int | None
        evidence: dict[str, Any]
        if copy is not None:
            match, jac, cont = copy
            story = self._story_of[match]
            group = self._group_of[match]
            first = self._group_first[group]
            copy_of = self._ids[first]
            evidence = {"copy": {"matched": self._ids[match], "jaccard": round(jac, 4), "containment": round(cont, 4)}}
            score = cont
            tids = found = None
            # The copy's vector is its original's (as stored), so it is never computed twice for one text.
            original = self._vecs[match]
            if original.any():
                fp = replace(fp, vector=original.copy())
        else:
            copy_of = None
            group = None
            if fp.vector is None and self.embedder is not None:
                fp = replace(fp, vector=self.embedder.embed_one(doc.title, doc.text))
            tids = self._book.term_ids(fp.terms) if fp.terms else None
            story, score, evidence, found = self._find_story(fp, tids, ts, doc.source)
        if story is None:
            story = self._create_story(self._new_story_id())
            score = 1.0
            evidence.setdefault("founder", True)
            found = None
            if copy_of is None and fp.terms:
                # A new centroid: none of the terms is there yet.
                m = len(tids)  # type: ignore[arg-type]  # the article has terms: numbered above
                found = (
                    self._book.keys(story, tids),  # type: ignore[arg-type]
                    np.full(m, -1, dtype=np.intp),
                    np.zeros(m),
                    np.zeros(m, dtype=bool),
                )

        self._index(
            doc.id,
            fp,
            keys,
            ts,
            story,
            group,
            is_copy=copy_of is not None,
            tids=None if copy_of is not None else tids,
            found=found,
            source=doc.source,
        )
        return Assignment(
            article_id=doc.id,
            story_id=self._stories[story].id,
            copy_of=copy_of,
            score=round(float(score), 6),
            evidence=evidence,
            fingerprint=fp.to_bytes(),
        )

    def restore(
        self,
        article_id: str,
        fingerprint: bytes,
        story_id: str,
        copy_of: str | None,
        published: datetime | None = None,
        source: str | None = None,
    ) -> None:
        """Re-index a stored decision (call in the original insertion order; `source` as given to add)."""
        if article_id in self._index_of:
            raise EngineError(f"article {article_id!r} is already indexed")
        fp = Fingerprint.from_bytes(fingerprint)
        story = self._story_index.get(story_id)
        if story is None:
            story = self._create_story(story_id)
        group = None
        if copy_of is not None:
            src = self._index_of.get(copy_of)
            if src is not None:
                group = self._group_of[src]
        self._index(
            article_id,
            fp,
            self._lsh.keys(fp.signature),
            _timestamp(published),
            story,
            group,
            is_copy=copy_of is not None,
            restoring=True,
            source=source,
        )

    def observe(
        self, doc: Document, story_id: str | None, fingerprint: Fingerprint | None = None
    ) -> tuple[list[str], np.ndarray, list[str], str]:
        """For fitting the decision: the candidate stories' ids, feature rows and the model that scores each
        (as :meth:`add` would), then index `doc` into story `story_id` (founded if new) whatever the model says,
        or, with `story_id` None, where the models decide. Copies are not looked for. Returns the story id too."""
        if doc.id in self._index_of:
            raise EngineError(f"article {doc.id!r} is already indexed")
        ts = _timestamp(doc.published)
        fp = fingerprint if fingerprint is not None else self.fingerprint(doc)
        tids = self._book.term_ids(fp.terms) if fp.terms else None
        ids: list[str] = []
        x = np.zeros((0, decision.N_FEATURES))
        models: list[str] = []
        if fp.terms:
            cands = self._candidates(fp, ts)
            if cands:
                x, models, allowed, _ = self._features(fp, tids, ts, doc.source, cands)  # type: ignore[arg-type]
                x, models = x[allowed], [m for m, a in zip(models, allowed) if a]
                ids = [self._stories[c].id for c, a in zip(cands, allowed) if a]
                if story_id is None and ids:
                    p, need, _ = self._probabilities(x, models)
                    j = _choice(p, need, self._ranking(x, models, p, need))
                    if j is not None:
                        story_id = ids[j]
        if story_id is None:
            story_id = self._new_story_id()
        story = self._story_index.get(story_id)
        if story is None:
            story = self._create_story(story_id)
        self._index(
            doc.id, fp, self._lsh.keys(fp.signature), ts, story, None, is_copy=False, tids=tids, source=doc.source
        )
        return ids, x, models, story_id

    def set_story_model(self, name: str, weights: np.ndarray, threshold: float, choose_by: str = "probability") -> None:
        """Decide with these weights, threshold and ranking for model `name` (see decision.MODELS and CHOOSE_BY)
        instead of the fitted ones (for the fitting script)."""
        if name not in self._models:
            raise EngineError(f"no story model {name!r}")
        if choose_by != "probability" and choose_by not in decision.INDEX:
            raise EngineError(f"no feature {choose_by!r} to choose by")
        self._models[name] = (np.asarray(weights, dtype=np.float64), float(threshold))
        self._choose_by[name] = choose_by

    def _ranking(self, x: np.ndarray, models: list[str], p: np.ndarray, need: np.ndarray) -> np.ndarray | None:
        """What ranks the passing candidates (decision.CHOOSE_BY): None for the probability, else the feature
        column that every passing candidate's model ranks by (a mix of models falls back to the probability)."""
        by = {self._choose_by[m] for m, ok in zip(models, (p >= need).tolist()) if ok}
        if len(by) != 1 or "probability" in by:
            return None
        return x[:, decision.INDEX[by.pop()]]

    def _probabilities(self, x: np.ndarray, models: list[str]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Per candidate row: P(same story), the threshold it must pass, and the weights that scored it."""
        p = np.zeros(len(x))
        need = np.zeros(len(x))
        used: list[Any] = [None] * len(x)  # every row's is set below
        # The rows of each model (at most two per article) scored together.
        for name in sorted(set(models)):
            rows = [j for j, m in enumerate(models) if m == name]
            w, t = self._models[name]
            p[rows] = decision.probabilities(x[rows], w)
            need[rows] = t
            for j in rows:
                used[j] = w
        return p, need, used

    # ------------------------------------------------------------------ copies

    def _find_copy(self, fp: Fingerprint, keys: list[int]) -> tuple[int, float, float] | None:
        s = self.settings
        if fp.shingles < s.copy_min_shingles:
            return None
        cands = self._lsh.query(keys)
        if not cands:
            return None
        idx = np.array(list(cands), dtype=np.intp)
        return self._best_copy(fp, idx, self._sigs.take(idx, axis=0), self._sizes.take(idx))

    def _best_copy(
        self, fp: Fingerprint, idx: np.ndarray, sigs: np.ndarray, sizes: np.ndarray
    ) -> tuple[int, float, float] | None:
        """Of the articles `idx` (their signatures and shingle counts), the one `fp` copies best: (index, estimated
        Jaccard, containment of the smaller text), or None when none passes both."""
        s = self.settings
        agree = (sigs == fp.signature).sum(axis=1) / minhash.NUM_PERM
        # Most candidates share a band or two and nothing more: drop them before the loop.
        ok = (agree >= s.copy_min_jaccard) & (sizes >= s.copy_min_shingles)
        if not ok.any():
            return None
        best = None
        for i, jac, size in zip(idx[ok].tolist(), agree[ok].tolist(), sizes[ok].tolist()):
            _, cont = minhash.overlap(jac, fp.shingles, size)
            if cont < s.copy_min_containment:
                continue
            key = (cont + jac, -i)
            if best is None or key > best[0]:
                best = (key, i, jac, cont)
        if best is None:
            return None
        return best[1], best[2], best[3]

    def _copies_ahead(self, fps: list[Fingerprint]) -> list[bool]:
        """Which of a batch about to be added in this order look like copies: of an indexed article, or of one
        before them in the batch (compared directly, no LSH). Read-only; :meth:`add` decides."""
        s = self.settings
        sigs = np.array([fp.signature for fp in fps], dtype=np.uint32).reshape(len(fps), minhash.NUM_PERM)
        sizes = np.array([fp.shingles for fp in fps], dtype=np.int64)
        out = []
        for j, fp in enumerate(fps):
            copy = fp.shingles >= s.copy_min_shingles and (
                self._find_copy(fp, self._lsh.keys(fp.signature)) is not None
                or (j > 0 and self._best_copy(fp, np.arange(j), sigs[:j], sizes[:j]) is not None)
            )
            out.append(bool(copy))
        return out

    # ------------------------------------------------------------------ stories

    def _candidates(self, fp: Fingerprint, ts: float | None) -> list[int]:
        """Candidate stories: those most often under the article's heaviest terms, then those nearest by the
        semantic vector among the most recently founded; within the time bound when dates are known."""
        s = self.settings
        ranked = self._postings.top(fp.terms[: s.candidate_terms], s.max_candidates)
        v = fp_vector(fp)
        n = len(self._stories)
        if v is not None and s.semantic_candidates > 0 and n:
            lo = max(0, n - s.semantic_window)
            sims = _matvec(self._story_unit[lo:n], v)
            k = min(s.semantic_candidates, n - lo)
            top = np.argpartition(-sims, k - 1)[:k] if k < n - lo else np.arange(n - lo)
            top = top[np.lexsort((top, -sims[top]))] + lo  # nearest first, ties to the older story
            have = set(ranked)
            ranked = ranked + [st for st in top.tolist() if st not in have and sims[st - lo] > 0.0]
        if ts is not None:
            stories = self._stories
            window = s.time_window_hours * 3600.0
            ranked = [st for st in ranked if _within(stories[st], ts, window)]
        return ranked

    def _features(
        self, fp: Fingerprint, tids: np.ndarray, ts: float | None, source: str | None, cands: list[int]
    ) -> tuple[np.ndarray, list[str], np.ndarray, _Found]:
        """The decision's feature rows (one per candidate story, columns as decision.NAMES) and the article's
        terms in every candidate centroid (keys, slots, values, present) as one gather from the table."""
        stories = self._stories
        m = len(tids)
        c = len(cands)
        keys = ((np.array(cands, dtype=np.uint64) << np.uint64(32))[:, None] | tids[None, :]).reshape(-1)
        slot, vals, hit = self._book.table.find(keys)
        w64 = fp.weights.astype(np.float64)
        prod = vals.reshape(c, m) * w64
        # Each dot product summed in the article's term order (cumsum adds in order), as a loop would.
        dots = prod.cumsum(axis=1)[:, -1]
        kind = self._book.kinds(tids)
        x = np.zeros((c, decision.N_FEATURES))
        col = decision.INDEX
        x[:, col["bias"]] = 1.0
        sts = [stories[st] for st in cands]
        x[:, col["lex"]] = self._scores(dots, sts)
        sq = w64 * w64
        story_kind = np.array([s.kind_norm2 for s in sts])
        for k, name in enumerate(("words", "names", "numbers")):
            mask = kind == k
            a2 = float(sq[mask].sum())
            if a2 <= 0.0:
                continue
            kd = prod[:, mask].sum(axis=1)
            den = np.sqrt(a2 * story_kind[:, k])
            x[:, col[name]] = np.where(den > 0, kd / np.maximum(den, 1e-300), 0.0)
        v = fp_vector(fp)
        short = fp.shingles < decision.SHORT_SHINGLES
        n_vecs = np.fromiter((s.vec_count for s in sts), dtype=np.intp, count=c)
        has_story_vec = n_vecs > 0
        if v is not None:
            x[:, col["sem_mean"]] = self._story_unit[cands] @ v
            # Every candidate's latest members in one product (on one thread: see .blas), then the nearest
            # member per candidate.
            sizes = np.minimum(n_vecs, decision.NEAREST_MEMBERS)
            if sizes.any():
                blocks = [s.recent[:k] for s, k in zip(sts, sizes.tolist()) if k and s.recent is not None]
                sims = _matvec(np.concatenate(blocks, dtype=np.float32), v)
                some = sizes > 0
                starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))[some]
                x[some, col["sem_max"]] = np.maximum.reduceat(sims, starts)
            counts = np.maximum(n_vecs, 1).astype(np.float64)
            x[:, col["sem_avg"]] = (self._story_vsum[cands] @ v.astype(np.float64)) / counts
        models = [decision.model_name(bool(sem), short) for sem in (has_story_vec & (v is not None)).tolist()]
        x[:, col["lex_x_sem"]] = x[:, col["lex"]] * x[:, col["sem_mean"]]
        have = set(fp.terms)
        gate = self.settings.anchor_names and not short
        allowed = np.ones(c, dtype=bool)
        x[:, col["log_size"]] = np.log1p(np.fromiter((s.members for s in sts), dtype=np.float64, count=c))
        for j, story in enumerate(sts):
            if not self._anchored(story, have):
                x[j, col["anchor_miss"]] = 1.0
                # An article with a body that names none of a story's leading names must be very close to join it:
                # two events that share a place and its usual vocabulary are not one story (a visit to Pyongyang
                # vs a delegation there). The learned weights do not find this rule from the development data.
                if (
                    gate
                    and x[j, col["lex"]] < self.settings.anchor_free_similarity
                    and x[j, col["sem_mean"]] < self.settings.anchor_free_semantic
                ):
                    allowed[j] = False
            if source and source in story.outlets:
                x[j, col["same_outlet"]] = 1.0
            if ts is not None and story.first is not None:
                x[j, col["far_newest"]] = decision.far(ts - story.last)  # type: ignore[operator]
                x[j, col["far_oldest"]] = decision.far(ts - story.first)
                x[j, col["far_mean"]] = decision.far(ts - story.time_sum / story.dated)
        return x, models, allowed, (keys, slot, vals, hit)

    def _find_story(
        self, fp: Fingerprint, tids: np.ndarray | None, ts: float | None, source: str | None = None
    ) -> tuple[int | None, float, dict[str, Any], _Found | None]:
        """(story or None, score, evidence, the article's terms in that story's centroid as
        :meth:`_Centroids.values` gives them, or None)."""
        if not fp.terms:
            return None, 1.0, {"reason": "no salient terms (unsupported language or empty text)"}, None
        cands = self._candidates(fp, ts)
        if not cands:
            return None, 1.0, {}, None
        x, models, allowed, (keys, slot, vals, hit) = self._features(fp, tids, ts, source, cands)  # type: ignore[arg-type]
        p, need, used = self._probabilities(x, models)
        p[~allowed] = 0.0
        key = self._ranking(x, models, p, need)
        j = _choice(p, need, key)
        if j is None:
            j = int(np.argmax(p - need))
            return (
                None,
                1.0,
                {"best_probability": round(float(p[j]), 4), "best_story": self._stories[cands[j]].id},
                None,
            )
        st = cands[j]
        story = self._stories[st]
        m = len(tids)  # type: ignore[arg-type]
        row = slice(j * m, (j + 1) * m)
        found = keys[row], slot[row], vals[row], hit[row]
        norm = max(story.norm2, 1e-300) ** 0.5
        shared = [
            (t, w * v / norm)
            for t, w, v, h in zip(fp.terms, fp.weights.tolist(), found[2].tolist(), found[3].tolist())
            if h
        ]
        shared.sort(key=lambda t: -t[1])
        evidence = {
            "probability": round(float(p[j]), 4),
            "similarity": round(float(x[j, decision.INDEX["lex"]]), 4),
            "features": decision.contributions(x[j], used[j]),
            "model": models[j],
            "shared_terms": [[t, round(v, 4)] for t, v in shared[:10]],
            "story_size": story.members,
        }
        passed = int(np.count_nonzero(p >= need))
        if key is not None and passed > 1:
            # Several stories passed: say what picked this one.
            evidence["chosen_by"] = self._choose_by[models[j]]
            evidence["passed"] = passed
        if ts is not None and story.last is not None:
            evidence["hours_from_newest"] = round((ts - story.last) / 3600.0, 2)
        return st, float(p[j]), evidence, found

    def _anchored(self, story: _Story, terms: set[str]) -> bool:
        if story.anchors is None:
            c = story.centroid
            story.anchors = heapq.nlargest(
                self.settings.anchor_names, (t for t in c if t.startswith("e:")), key=lambda t: (c[t], t)
            )
            story.anchor_weights = [c[t] for t in story.anchors]
        return not story.anchors or not terms.isdisjoint(story.anchors)

    def _scores(self, dots: np.ndarray, sts: list[_Story]) -> np.ndarray:
        """Centroid cosine of one article with each story (`dots`: its dot products with their centroids), with a
        prior on how alike a young story's members are.

        dot / |centroid| equals the average similarity to the members divided by the square root of the
        members' average similarity among themselves; for a story of one or two members that average is
        unknown, so a prior (worth one member pair) stands in for it instead of the perfect 1.0 of a
        single article, which would demand too much of the second write-up. 0 for a story with no centroid.
        """
        c = len(sts)
        n = np.fromiter((s.vectors for s in sts), dtype=np.float64, count=c)
        norm2 = np.fromiter((s.norm2 for s in sts), dtype=np.float64, count=c)
        pairs = n * (n - 1) / 2.0
        sum_pairs = (norm2 - n) / 2.0
        cohesion = (sum_pairs + self.settings.cohesion_prior) / (pairs + 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = dots / n / np.sqrt(np.maximum(cohesion, 1e-3))
        return np.where(n > 0, out, 0.0)

    def _create_story(self, story_id: str) -> int:
        if story_id in self._story_index:
            raise EngineError(f"story id {story_id!r} already exists")
        self._stories.append(_Story(story_id, self._book, index=len(self._stories)))
        self._story_index[story_id] = len(self._stories) - 1
        if len(self._stories) > len(self._story_unit):
            self._story_vsum = np.concatenate([self._story_vsum, np.zeros_like(self._story_vsum)])
            self._story_unit = np.concatenate([self._story_unit, np.zeros_like(self._story_unit)])
        return len(self._stories) - 1

    # ------------------------------------------------------------------ indexing

    def _index(
        self,
        article_id: str,
        fp: Fingerprint,
        keys: list[int],
        ts: float | None,
        story: int,
        group: int | None,
        *,
        is_copy: bool,
        restoring: bool = False,
        tids: np.ndarray | None = None,
        found: _Found | None = None,
        source: str | None = None,
    ) -> None:
        i = len(self._ids)
        self._ids.append(article_id)
        self._index_of[article_id] = i
        self._times.append(ts)
        self._story_of.append(story)
        if i >= len(self._sigs):
            self._sigs = np.concatenate([self._sigs, np.zeros_like(self._sigs)])
            self._sizes = np.concatenate([self._sizes, np.zeros_like(self._sizes)])
            self._vecs = np.concatenate([self._vecs, np.zeros_like(self._vecs)])
        self._sigs[i] = fp.signature
        self._sizes[i] = fp.shingles
        if fp.shingles >= self.settings.copy_min_shingles:
            self._lsh.insert(keys, i, article_id, restoring=restoring)

        if group is None:
            group = i
            self._group_first[i] = i
        else:
            first = self._group_first[group]
            if ts is not None and (self._times[first] is None or ts < self._times[first]):  # type: ignore[operator]
                self._group_first[group] = i
        self._group_of.append(group)

        st = self._stories[story]
        st.extend_span(ts)
        if ts is not None:
            st.time_sum += ts
            st.dated += 1
        st.members += 1
        if source:
            st.outlets.add(source)
        v = fp_vector(fp)
        if v is not None:
            self._vecs[i] = v  # a copy's too: the next copy of it takes it from here
        if is_copy or not fp.terms:
            return  # a copy adds no new wording; the centroid describes distinct write-ups
        if v is not None:
            _remember(st, v)
            vs = self._story_vsum[story]
            vs += v
            norm = float(np.sqrt(vs @ vs))
            self._story_unit[story] = vs / norm if norm > 0 else 0.0
        book = self._book
        if tids is None:
            tids = book.term_ids(fp.terms)
        w64 = fp.weights.astype(np.float64)
        m = len(tids)
        if len(set(fp.terms)) == m:
            ckeys, slot, old, hit = found if found is not None else book.values(story, tids)
            new = old + w64
            # Summed in the article's term order (cumsum is sequential), as a loop over the terms would.
            prod = old * w64
            dot = float(np.cumsum(prod)[-1])
            kind = book.kinds(tids)
            sq = w64 * w64
            for k in range(3):
                mask = kind == k
                st.kind_norm2[k] += 2.0 * float(prod[mask].sum()) + float(sq[mask].sum())
            book.table.add(ckeys, slot, hit, new)
            st.terms.extend(tids[~hit].tolist())
            if st.anchors is None and st.vectors == 0:
                # The first vector of the centroid: its leading names are this article's, kept up to date
                # from here on (no pass over the whole centroid later).
                st.anchors, st.anchor_weights = [], []
            if st.anchors is not None:
                if float(fp.weights.min()) >= 0.0:
                    # Only this article's terms changed, and none went down: the new leading names are among
                    # the old ones and this article's (the same list as a pass over the whole centroid, which
                    # costs more than the rest of the decision once a story is large).
                    # Of this article's names only those at least as heavy as its k-th heaviest can be
                    # among the k leading ones; an old leading name that misses that cut drops out under its
                    # old weight as under its new one.
                    at = book.name_mask(tids).nonzero()[0]
                    if len(at):
                        k = self.settings.anchor_names
                        nv = new[at]
                        if len(at) > k:
                            keep = nv >= np.partition(nv, len(nv) - k)[len(nv) - k]
                            at, nv = at[keep], nv[keep]
                        value = dict(zip(st.anchors, st.anchor_weights))
                        terms = fp.terms
                        value.update(zip([terms[j] for j in at.tolist()], nv.tolist()))
                        st.anchors = heapq.nlargest(k, value, key=lambda t: (value[t], t))
                        st.anchor_weights = [value[t] for t in st.anchors]
                else:
                    st.anchors = None
        else:
            # A term twice in one article (never from compute()): one term at a time, in order.
            dot = 0.0
            kind = book.kinds(tids)
            for j in range(m):
                ckeys, slot, old, hit = book.values(story, tids[j : j + 1])
                dot += float(old[0]) * float(w64[j])
                st.kind_norm2[int(kind[j])] += 2.0 * float(old[0]) * float(w64[j]) + float(w64[j]) ** 2
                book.table.add(ckeys, slot, hit, old + w64[j : j + 1])
                if not hit[0]:
                    st.terms.append(int(tids[j]))
            st.anchors = None  # found again from the whole centroid when next needed
        st.vectors += 1
        st.norm2 += 2.0 * dot + float(np.dot(fp.weights, fp.weights))
        self._postings.add(fp.terms[: self.settings.candidate_terms], story, i, restoring=restoring)
