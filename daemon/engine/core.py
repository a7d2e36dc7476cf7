"""The incremental engine: decide an article's copy group and story, index it, and revise young stories.

One article at a time (:meth:`Engine.add`):

1. fingerprint it (or take the fingerprint computed ahead, in worker processes);
2. look for the article it copies (:meth:`Engine._find_copy`: MinHash LSH, then Jaccard and containment); a copy
   joins its original's story;
3. otherwise find candidate stories (:meth:`Engine._candidates`: shared heavy terms, nearest mean embeddings,
   within reach in time), describe each as a whole (:meth:`Engine._features`: the cosines to its mean embedding and
   to its term sum, how long it had been quiet) and let the story model (:mod:`.story_model`) pick one or none;
4. index it: its story's sums, the candidate lists, the copy index.

Now and then (:meth:`Engine.settle`, policy in :mod:`.settle`) the young stories are revisited: two stories that are
one event merge, an article whose evidence now points to another story moves there. Both are returned as records
for the caller to store, and :meth:`Engine.apply` replays one decided elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EngineError
from . import minhash, story_model
from . import settle as settle_rules
from .blas import matvec as _matvec
from .candidates import StoryPostings
from .centroids import Centroids, Found
from .fingerprint import Fingerprint, FingerprintPool, compute, embed_with, term_params
from .types import Assignment, Change, Document, EngineSettings, Merge

if TYPE_CHECKING:
    from .story_index import DatasketchStoryPostings

_DIM = 384  # semantic vector width


@dataclass
class _Story:
    id: str
    index: int
    terms: list[int] = field(default_factory=list)  # ids of the terms of its centroid
    norm2: float = 0.0  # |centroid|^2
    vec_count: int = 0  # members whose semantic vector is in the story's mean
    dated: int = 0  # dated members that count for its time (copies do not)
    first: float | None = None  # publication span of those members, POSIX seconds
    last: float | None = None
    members: list[int] = field(default_factory=list)  # article indices, copies included
    vectors: int = 0  # members that contributed to the centroid (copies do not)
    merged_into: int | None = None  # set when settling merged it into another story
    leading: np.ndarray | None = None  # its leading names (term ids), found again after its sums change

    def extend_span(self, ts: float | None) -> None:
        if ts is None:
            return
        self.dated += 1
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)

    def pace(self) -> float | None:
        """Mean gap between its dated members, seconds (None with fewer than two)."""
        if self.dated < 2 or self.first is None or self.last is None:
            return None
        return (self.last - self.first) / (self.dated - 1)

    def gap(self, ts: float) -> float:
        """Seconds from its publication span to `ts` (0 inside it or when it has no dates)."""
        if self.first is None or self.last is None:
            return 0.0
        return max(self.first - ts, ts - self.last, 0.0)


def fp_vector(fp: Fingerprint) -> np.ndarray | None:
    """The fingerprint's semantic vector as float32, or None (no model, or a fingerprint stored without one)."""
    v = fp.vector
    if v is None or len(v) != _DIM:
        return None
    # As stored (float16): an engine restored from the database then decides exactly as one that never stopped.
    return np.asarray(v, dtype=np.float16).astype(np.float32)


def _timestamp(published: datetime | None) -> float | None:
    if published is None:
        return None
    if published.tzinfo is None:
        raise EngineError("published must be timezone-aware")
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
        self._story_index: dict[str, int] = {}  # an absorbed story's id maps to its survivor's index
        self._new_story_id = new_story_id or _DefaultIds(self._story_index)
        # Per article, by insertion index.
        self._ids: list[str] = []
        self._index_of: dict[str, int] = {}
        self._sizes = np.zeros(1024, dtype=np.int64)  # distinct shingles per article
        self._times: list[float | None] = []
        self._story_of: list[int] = []
        self._group_of: list[int] = []  # copy group = insertion index of its founder
        self._sigs = np.zeros((1024, minhash.NUM_PERM), dtype=np.uint32)
        # Semantic vector per article (0: none), as stored: float16 holds them exactly (see fp_vector).
        self._vecs = np.zeros((1024, _DIM), dtype=np.float16)
        # The terms and weights of the articles settling may still move (not copies): (term ids, weights).
        self._young: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._newest: float | None = None  # the newest publication time seen, the stream's clock for settling
        # For the next settling pass: stories founded or changed since the last one, articles that joined narrowly,
        # and the first story that can still be young.
        self._touched: set[int] = set()
        self._doubtful: set[int] = set()
        self._settle_from = 0
        # Per story: the sum of its members' semantic vectors and that sum normalised (0: none yet).
        self._story_vsum = np.zeros((256, _DIM), dtype=np.float64)
        self._story_unit = np.zeros((256, _DIM), dtype=np.float32)
        # The story model's weights and thresholds (the fitted ones unless a fitting run passes its own).
        self._models = {k: (np.asarray(w, dtype=np.float64), t) for k, (w, t) in story_model.MODELS.items()}
        self._merge_threshold = dict(story_model.MERGE_THRESHOLD)
        # Per copy group (keyed by founder): the earliest member so far.
        self._group_first: dict[int, int] = {}
        if lsh_storage is None:
            self._lsh: minhash.BandIndex | minhash.DatasketchBandIndex = minhash.BandIndex(self.settings.lsh_rows)
        else:
            self._lsh = minhash.DatasketchBandIndex(self.settings.lsh_rows, lsh_storage, self._index_of)
        self._pool: FingerprintPool | None = None
        if lsh_storage is not None and lsh_storage.get("type") == "redis":
            from .story_index import DatasketchStoryPostings

            self._postings: DatasketchStoryPostings | StoryPostings = DatasketchStoryPostings(
                self.settings.posting_limit, lsh_storage, self._story_index, lambda st: self._stories[st].id
            )
        else:
            self._postings = StoryPostings(self.settings.posting_limit)
        self._book = Centroids()

    def __len__(self) -> int:
        return len(self._ids)

    # ------------------------------------------------------------------ public

    @property
    def story_index(self) -> DatasketchStoryPostings | StoryPostings:
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
        tids: np.ndarray | None = None
        found: Found | None = None
        if copy is not None:
            match, jac, cont = copy
            story = self._story_of[match]
            group = self._group_of[match]
            copy_of: str | None = self._ids[self._group_first[group]]
            evidence = {"copy": {"matched": self._ids[match], "jaccard": round(jac, 4), "containment": round(cont, 4)}}
            score = cont
            # The copy's vector is its original's (as stored), so it is never computed twice for one text.
            original = self._vecs[match]
            if original.any():
                fp = replace(fp, vector=original.copy())
        else:
            copy_of = None
            group = None
            if fp.vector is None and self.embedder is not None:
                fp = replace(fp, vector=self.embedder.embed_one(doc.title, doc.text))
            if fp.terms:
                tids = self._book.term_ids(fp.terms)
            story, score, evidence, found = self._find_story(fp, tids, ts)
        if story is None:
            story = self._create_story(self._new_story_id())
            score = 1.0
            evidence.setdefault("founder", True)
            found = None
        self._index(doc.id, fp, keys, ts, story, group, is_copy=copy_of is not None, tids=tids, found=found)
        if (
            "threshold" in evidence
            and not evidence.get("founder")
            and score - evidence["threshold"] < settle_rules.DOUBT
        ):
            self._doubtful.add(len(self._ids) - 1)  # settling looks at it again: it joined narrowly
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
        """Re-index a stored decision (call in the original insertion order, with the story it is in now)."""
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
        tids = self._book.term_ids(fp.terms) if fp.terms and copy_of is None else None
        self._index(
            article_id,
            fp,
            self._lsh.keys(fp.signature),
            _timestamp(published),
            self._resolve(story),
            group,
            is_copy=copy_of is not None,
            restoring=True,
            tids=tids,
        )

    def story_of(self, article_id: str) -> str:
        """The id of the story an article is in now (after any settling)."""
        i = self._index_of.get(article_id)
        if i is None:
            raise EngineError(f"article {article_id!r} is not indexed")
        return self._stories[self._story_of[i]].id

    def settle(self, now: datetime | None = None) -> list[Change]:
        """Revisit the young stories (active within settle_hours of `now`; without `now`, every dated story, as for a
        corpus replayed after the fact; undated ones: those of the latest settle_articles articles) for what changed
        since the last pass: merge two that are one event, move an article whose evidence now points to another
        story. Applied here, and returned in the order applied for
        the caller to store (and for other engines to :meth:`apply`)."""
        return settle_rules.settle(self, _timestamp(now) if now is not None else None)

    def apply(self, change: Change) -> None:
        """Replay a merge or move decided by another engine. Idempotent: a change this engine's state already
        reflects (the absorbed story unknown or merged already, the article in its new story) does nothing."""
        if isinstance(change, Merge):
            a = self._story_index.get(change.absorbed)
            s = self._story_index.get(change.survivor)
            if a is None or s is None:
                return
            a, s = self._resolve(a), self._resolve(s)
            if a != s:
                self._merge(s, a)
            self._story_index[change.absorbed] = s
            return
        to = self._story_index.get(change.to_story)
        if to is None:
            to = self._create_story(change.to_story)
        to = self._resolve(to)
        moved = [self._index_of[a] for a in change.article_ids if a in self._index_of]
        if moved and self._story_of[moved[0]] != to:
            self._move(moved, to)

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

    def _resolve(self, st: int) -> int:
        """The story that story index `st` is now (itself, or the survivor of the merges it went into)."""
        while True:
            nxt = self._stories[st].merged_into
            if nxt is None:
                return st
            st = nxt

    def _candidates(self, fp: Fingerprint, ts: float | None) -> list[int]:
        """Candidate stories: those most often under the article's heaviest terms, then those nearest by the
        semantic vector among the most recently founded; merged stories answer as their survivor; with dates,
        none quiet for longer than max_quiet_days before or after the article."""
        s = self.settings
        ranked: list[int] = []
        seen: set[int] = set()
        for st in self._postings.top(fp.terms[: s.candidate_terms], s.max_candidates):
            st = self._resolve(st)
            if st not in seen:
                seen.add(st)
                ranked.append(st)
        v = fp_vector(fp)
        n = len(self._stories)
        if v is not None and s.semantic_candidates > 0 and n:
            lo = max(0, n - s.semantic_window)
            sims = _matvec(self._story_unit[lo:n], v)
            k = min(s.semantic_candidates, n - lo)
            top = np.argpartition(-sims, k - 1)[:k] if k < n - lo else np.arange(n - lo)
            top = top[np.lexsort((top, -sims[top]))] + lo  # nearest first, ties to the older story
            for st in top.tolist():
                if st not in seen and sims[st - lo] > 0.0:  # merged stories' means are zero
                    seen.add(st)
                    ranked.append(st)
        stories = self._stories
        ranked = [st for st in ranked if stories[st].members]
        if ts is not None:
            limit = s.max_quiet_days * 86400.0
            ranked = [st for st in ranked if stories[st].gap(ts) <= limit]
        return ranked

    def _features(
        self, fp: Fingerprint, tids: np.ndarray, ts: float | None, cands: list[int]
    ) -> tuple[np.ndarray, list[str], Found]:
        """The story model's feature rows (one per candidate story, columns as story_model.NAMES), the model that
        scores each, and the article's terms in every candidate centroid (keys, slots, values, present) as one
        gather from the table."""
        stories = self._stories
        m = len(tids)
        c = len(cands)
        keys = ((np.array(cands, dtype=np.uint64) << np.uint64(32))[:, None] | tids[None, :]).reshape(-1)
        slot, vals, hit = self._book.table.find(keys)
        w64 = fp.weights.astype(np.float64)
        # Each dot product summed in the article's term order (cumsum adds in order), as a loop would.
        dots = (vals.reshape(c, m) * w64).cumsum(axis=1)[:, -1]
        sts = [stories[st] for st in cands]
        norm2 = np.fromiter((st.norm2 for st in sts), dtype=np.float64, count=c)
        a = float(np.sqrt(w64 @ w64))
        x = np.zeros((c, story_model.N_FEATURES))
        col = story_model.INDEX
        x[:, col["lex"]] = np.where(norm2 > 0, dots / np.maximum(np.sqrt(norm2) * a, 1e-300), 0.0)
        v = fp_vector(fp)
        if v is not None:
            x[:, col["sem"]] = self._story_unit[cands] @ v
        if ts is not None:
            for j, st in enumerate(sts):
                x[j, col["quiet"]] = story_model.quiet(st.gap(ts), story_model.reach_seconds(st.pace()))
        x[:, col["names_missed"]] = [self._names_missed(st, tids) for st in cands]
        short = fp.shingles < story_model.SHORT_SHINGLES
        models = [story_model.model_name(v is not None and st.vec_count > 0, short) for st in sts]
        return x, models, (keys, slot, vals, hit)

    def _leading(self, story: int) -> np.ndarray:
        """The story's leading names: its heaviest name terms (story_model.LEADING_NAMES, ties to the earlier)."""
        st = self._stories[story]
        if st.leading is None:
            tids = np.array(st.terms, dtype=np.uint64)
            if len(tids):
                tids = tids[self._book.name_mask(tids)]
            if len(tids) > story_model.LEADING_NAMES:
                vals = self._book.values(story, tids)[2]
                tids = tids[np.argsort(-vals, kind="stable")[: story_model.LEADING_NAMES]]
            st.leading = tids
        return st.leading

    def _names_missed(self, story: int, tids: np.ndarray) -> float:
        """The share of the story's leading names missing from the terms `tids` (0 when it has no names)."""
        lead = self._leading(story)
        if not len(lead):
            return 0.0
        # At most LEADING_NAMES names against the terms: compared directly (np.isin sorts both, far slower here).
        found = sum(bool((tids == t).any()) for t in lead.tolist())
        return 1.0 - found / len(lead)

    def _scores(self, x: np.ndarray, models: list[str]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Per candidate row: its score, the threshold it must pass, and the weights that scored it."""
        score = np.zeros(len(x))
        need = np.zeros(len(x))
        used: list[Any] = [None] * len(x)  # every row's is set below
        for name in sorted(set(models)):
            rows = [j for j, mo in enumerate(models) if mo == name]
            w, t = self._models[name]
            score[rows] = story_model.scores(x[rows], w)
            need[rows] = t
            for j in rows:
                used[j] = w
        return score, need, used

    def _find_story(
        self, fp: Fingerprint, tids: np.ndarray | None, ts: float | None
    ) -> tuple[int | None, float, dict[str, Any], Found | None]:
        """(story or None, score, evidence, the article's terms in that story's centroid as
        :meth:`Centroids.values` gives them, or None)."""
        if not fp.terms or tids is None:
            return None, 1.0, {"reason": "no salient terms (unsupported language or empty text)"}, None
        cands = self._candidates(fp, ts)
        if not cands:
            return None, 1.0, {}, None
        x, models, (keys, slot, vals, hit) = self._features(fp, tids, ts, cands)
        score, need, used = self._scores(x, models)
        margin = score - need
        j = int(np.argmax(margin))  # the clearest pass; ties to the earlier candidate
        best = self._stories[cands[j]]
        features = story_model.contributions(x[j], used[j])
        if margin[j] < 0:
            return (
                None,
                1.0,
                {
                    "nearest_story": best.id,
                    "nearest_score": round(float(score[j]), 4),
                    "threshold": need[j],
                    "explanation": story_model.explain(features, float(score[j]), float(need[j])),
                },
                None,
            )
        m = len(tids)
        row = slice(j * m, (j + 1) * m)
        found = keys[row], slot[row], vals[row], hit[row]
        norm = max(best.norm2, 1e-300) ** 0.5
        shared = [
            (t, w * v / norm)
            for t, w, v, h in zip(fp.terms, fp.weights.tolist(), found[2].tolist(), found[3].tolist())
            if h
        ]
        shared.sort(key=lambda t: -t[1])
        evidence: dict[str, Any] = {
            "score": round(float(score[j]), 4),
            "threshold": need[j],
            "model": models[j],
            "features": features,
            "explanation": story_model.explain(features, float(score[j]), float(need[j])),
            "shared_terms": [[t, round(v, 4)] for t, v in shared[:10]],
            "story_size": len(best.members),
        }
        if ts is not None and best.last is not None:
            evidence["hours_from_newest"] = round((ts - best.last) / 3600.0, 2)
        return cands[j], float(score[j]), evidence, found

    def _create_story(self, story_id: str) -> int:
        if story_id in self._story_index:
            raise EngineError(f"story id {story_id!r} already exists")
        self._stories.append(_Story(story_id, index=len(self._stories)))
        self._story_index[story_id] = len(self._stories) - 1
        if len(self._stories) > len(self._story_unit):
            self._story_vsum = np.concatenate([self._story_vsum, np.zeros_like(self._story_vsum)])
            self._story_unit = np.concatenate([self._story_unit, np.zeros_like(self._story_unit)])
        return len(self._stories) - 1

    def set_story_model(
        self, name: str, weights: Iterable[float], threshold: float, merge: float | None = None
    ) -> None:
        """Decide with these weights and threshold (and merge threshold) for model `name` instead of the fitted ones
        (for the fitting script)."""
        if name not in self._models:
            raise EngineError(f"no story model {name!r}")
        self._models[name] = (np.asarray(list(weights), dtype=np.float64), float(threshold))
        if merge is not None:
            self._merge_threshold[name] = float(merge)

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
        found: Found | None = None,
    ) -> None:
        i = len(self._ids)
        self._ids.append(article_id)
        self._index_of[article_id] = i
        self._times.append(ts)
        self._story_of.append(story)
        if ts is not None and (self._newest is None or ts > self._newest):
            self._newest = ts
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
        st.members.append(i)
        v = fp_vector(fp)
        if v is not None:
            self._vecs[i] = v  # a copy's too: the next copy of it takes it from here
        if is_copy or not fp.terms:
            return  # a copy adds no new wording; the centroid describes distinct write-ups
        st.extend_span(ts)
        if tids is None:
            tids = self._book.term_ids(fp.terms)
        w64 = fp.weights.astype(np.float64)
        self._young[i] = (tids, w64)
        self._touched.add(story)
        self._add_to(story, tids, w64, v, found)
        self._postings.add(fp.terms[: self.settings.candidate_terms], story, i, restoring=restoring)
        if i % 4096 == 4095:
            settle_rules.forget_old(self, self._newest)

    def _add_to(
        self, story: int, tids: np.ndarray, w64: np.ndarray, v: np.ndarray | None, found: Found | None = None
    ) -> None:
        """Add one write-up (its terms, weights and vector) to a story's sums."""
        st = self._stories[story]
        st.leading = None
        book = self._book
        if v is not None:
            self._story_vsum[story] += v
            st.vec_count += 1
            self._renorm(story)
        if len(set(tids.tolist())) == len(tids):
            ckeys, slot, old, hit = found if found is not None else book.values(story, tids)
            # Summed in the article's term order (cumsum is sequential), as a loop over the terms would.
            dot = float(np.cumsum(old * w64)[-1]) if len(tids) else 0.0
            book.table.add(ckeys, slot, hit, old + w64)
            st.terms.extend(tids[~hit].tolist())
        else:
            # A term twice in one article (never from compute()): one term at a time, in order.
            dot = 0.0
            for j in range(len(tids)):
                ckeys, slot, old, hit = book.values(story, tids[j : j + 1])
                dot += float(old[0]) * float(w64[j])
                book.table.add(ckeys, slot, hit, old + w64[j : j + 1])
                if not hit[0]:
                    st.terms.append(int(tids[j]))
        st.vectors += 1
        st.norm2 += 2.0 * dot + float(w64 @ w64)

    def _renorm(self, story: int) -> None:
        vs = self._story_vsum[story]
        norm = float(np.sqrt(vs @ vs))
        self._story_unit[story] = vs / norm if norm > 1e-9 else 0.0

    def _recount(self, story: int) -> None:
        """Recompute a story's |centroid|^2 and time span from its members (after a move or a merge)."""
        st = self._stories[story]
        st.leading = None
        tids = np.array(st.terms, dtype=np.uint64)
        vals = self._book.values(story, tids)[2] if len(tids) else np.zeros(0)
        st.norm2 = float(vals @ vals)
        st.first = st.last = None
        st.dated = 0
        for i in st.members:
            if self._group_of[i] == i:  # copies do not count for a story's time
                st.extend_span(self._times[i])

    def _merge(self, survivor: int, absorbed: int) -> None:
        """Story `absorbed` joins story `survivor`: its sums, members and time; its id then stands for the
        survivor's."""
        s, a = self._stories[survivor], self._stories[absorbed]
        book = self._book
        if a.terms:
            tids = np.array(a.terms, dtype=np.uint64)
            _, _, add, _ = book.values(absorbed, tids)
            keys, slot, old, hit = book.values(survivor, tids)
            book.table.add(keys, slot, hit, old + add)
            s.terms.extend(tids[~hit].tolist())
            # The absorbed story's own entries stay in the table; nothing reads them again.
        self._story_vsum[survivor] += self._story_vsum[absorbed]
        self._story_vsum[absorbed] = 0.0
        self._story_unit[absorbed] = 0.0
        self._renorm(survivor)
        s.vec_count += a.vec_count
        s.vectors += a.vectors
        for i in a.members:
            self._story_of[i] = survivor
        s.members.extend(a.members)
        a.members = []
        a.terms = []
        a.vec_count = a.vectors = a.dated = 0
        a.norm2 = 0.0
        a.first = a.last = None
        a.merged_into = survivor
        self._story_index[a.id] = survivor
        self._touched.add(survivor)
        self._touched.discard(absorbed)
        self._recount(survivor)

    def _move(self, articles: list[int], to: int) -> None:
        """Move an article (the first of `articles`) and its copies (the rest) to story `to`."""
        i = articles[0]
        frm = self._story_of[i]
        src, dst = self._stories[frm], self._stories[to]
        young = self._young.get(i)
        if young is None:
            raise EngineError(f"article {self._ids[i]!r} is too old to move")
        tids, w64 = young
        v = self._vecs[i].astype(np.float32) if self._vecs[i].any() else None
        book = self._book
        keys, slot, old, hit = book.values(frm, tids)
        book.table.add(keys, slot, hit, old - w64)
        if v is not None:
            self._story_vsum[frm] -= v
            src.vec_count -= 1
            self._renorm(frm)
        src.vectors -= 1
        self._add_to(to, tids, w64, v)
        self._postings.add(self._book_terms(tids), to, i)
        gone = set(articles)
        src.members = [k for k in src.members if k not in gone]
        for k in articles:
            self._story_of[k] = to
        dst.members.extend(articles)
        self._recount(frm)
        self._recount(to)
        self._touched.update((frm, to))

    def _book_terms(self, tids: np.ndarray) -> list[str]:
        names = self._book.names
        return [names[t] for t in tids[: self.settings.candidate_terms].tolist()]
