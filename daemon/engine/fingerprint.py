"""An article's fingerprint: everything the engine keeps of it, computed once and stored by the caller.

The engine decides from the fingerprint alone, so restoring fingerprints from storage rebuilds exactly the
state an engine that never restarted would have.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np

from ..errors import EngineError
from ..procs import die_with_parent
from . import analysis, minhash
from .analysis import TermParams, mostly_ideographic, normalise_punctuation, salient_terms, scan
from .text import body_paragraphs, normalise, tokens
from .types import Document, EngineSettings

if TYPE_CHECKING:
    from .embed import Embedder

_MAGIC = b"WDF1"  # without a semantic vector (still written then: older versions read it)
_MAGIC_VECTOR = b"WDF2"  # WDF1 and, after the weights, the vector's dimension count and float16 values
_HEAD = struct.Struct("<4sBIH")  # magic, flags, shingle count, term count
_DIMS = struct.Struct("<H")
_SEP = "\x1f"


class FingerprintError(EngineError):
    """A stored fingerprint that this version cannot read."""


@dataclass(frozen=True, eq=False)
class Fingerprint:
    english: bool
    shingles: int  # distinct body shingles (set size behind the signature)
    signature: np.ndarray  # MinHash, uint32[NUM_PERM]
    terms: tuple[str, ...]  # salient terms, heaviest first
    weights: np.ndarray  # float32, unit L2 norm, aligned with terms
    # The semantic vector of title and lead (float32, unit norm, see .embed), None without the model. Stored as
    # float16, so a restored vector differs from the computed one by at most about 5e-4 per dimension.
    vector: np.ndarray | None = None

    def __reduce__(self) -> tuple[Callable[[bytes], Fingerprint], tuple[bytes]]:
        # Between processes (fingerprints computed in a pool) the stored form is also the compact one.
        return Fingerprint.from_bytes, (self.to_bytes(),)

    def to_bytes(self) -> bytes:
        text = _SEP.join(self.terms).encode("utf-8")
        magic = _MAGIC if self.vector is None else _MAGIC_VECTOR
        parts = [
            _HEAD.pack(magic, 1 if self.english else 0, self.shingles, len(self.terms)),
            self.signature.astype("<u4").tobytes(),
            self.weights.astype("<f4").tobytes(),
        ]
        if self.vector is not None:
            parts += [_DIMS.pack(len(self.vector)), self.vector.astype("<f2").tobytes()]
        parts.append(text)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        try:
            magic, flags, shingles, n = _HEAD.unpack_from(data, 0)
            if magic not in (_MAGIC, _MAGIC_VECTOR):
                raise FingerprintError("not a wiredesk fingerprint (bad magic)")
            off = _HEAD.size
            sig = np.frombuffer(data, dtype="<u4", count=minhash.NUM_PERM, offset=off).astype(np.uint32)
            off += 4 * minhash.NUM_PERM
            weights = np.frombuffer(data, dtype="<f4", count=n, offset=off).astype(np.float32)
            off += 4 * n
            vector = None
            if magic == _MAGIC_VECTOR:
                (dims,) = _DIMS.unpack_from(data, off)
                off += _DIMS.size
                vector = np.frombuffer(data, dtype="<f2", count=dims, offset=off).astype(np.float32)
                off += 2 * dims
            terms = tuple(data[off:].decode("utf-8").split(_SEP)) if n else ()
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, FingerprintError):
                raise
            raise FingerprintError(f"corrupt fingerprint: {exc}") from exc
        if len(terms) != n:
            raise FingerprintError("corrupt fingerprint: term count mismatch")
        return cls(bool(flags & 1), shingles, sig, terms, weights, vector)


def term_params(s: EngineSettings) -> TermParams:
    """The story-tier weighting of EngineSettings `s`, in the form the analysis takes."""
    return TermParams(
        segment_weights=(1.0 + s.title_weight,) + (1.0 + s.lead_weight,) * s.lead_paragraphs,
        caps_segments=(),
        phrase_weight=s.phrase_weight,
        year_idf=s.year_idf,
        number_idf=s.number_idf,
        groups=(s.word_group, s.name_group, s.number_group),
        caps=(s.max_words, s.max_names, s.max_numbers),
    )


def compute(
    title: str, text: str, settings: EngineSettings, params: TermParams | None = None, embedder: Embedder | None = None
) -> Fingerprint:
    """The fingerprint of one article; with an `embedder` (see .embed) it carries the semantic vector too."""
    fp = _lexical(title, text, settings, params)
    if embedder is not None:
        fp = replace(fp, vector=embedder.embed_one(title, text))
    return fp


def _lexical(title: str, text: str, settings: EngineSettings, params: TermParams | None = None) -> Fingerprint:
    s = settings
    title = normalise_punctuation(normalise(title)).strip()
    paras = body_paragraphs(normalise_punctuation(text))
    if mostly_ideographic(title + "\n" + text):
        # Scripts written without spaces: per-character shingles, and no story terms.
        chars = tokens("\n\n".join(paras))
        sh = minhash.shingle_hashes(chars, s.shingle_size)
        return Fingerprint(False, len(sh), minhash.signature(sh), (), np.zeros(0, dtype=np.float32))

    toks = scan([title] + paras)
    sh = analysis.shingles(toks, 1, s.shingle_size)
    sig = minhash.signature(sh)
    if not analysis.is_english(toks):
        # No salient terms: a language the story tier cannot read joins a story only as a copy.
        return Fingerprint(False, len(sh), sig, (), np.zeros(0, dtype=np.float32))
    params = params or term_params(s)
    caps = tuple(p.isupper() for p in [title] + paras)
    if not caps[0] and title_case(title):
        # "Apple Unveils New iPhone": a title in title case says nothing with its capitals.
        caps = (True,) + caps[1:]
    params = replace(params, caps_segments=caps) if any(caps) else params
    terms, weights = salient_terms(toks, params)
    return Fingerprint(True, len(sh), sig, tuple(terms), weights)


def title_case(title: str) -> bool:
    """Most words of the title (of three or more) start with a capital."""
    words = [w for w in title.split() if w[:1].isalpha()]
    return len(words) >= 3 and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


class FingerprintPool:
    """Worker processes that compute fingerprints, for throughput on several cores.

    A fingerprint depends on the title, the text, the settings and the word-frequency prior only, so
    any process computes the same bytes. Workers are fresh interpreters ("spawn"), which is safe in a
    threaded daemon; each loads the word tables once when it starts. As with any spawned pool, a script
    that uses one must guard its entry point (``if __name__ == "__main__":``).
    """

    def __init__(self, settings: EngineSettings, workers: int, model_dir: str | None = None) -> None:
        """`model_dir`: the folder of the semantic model (an embedder's ``model_dir``); each worker loads it
        when it starts and embeds every chunk it is given in one batched call. None: no vectors."""
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self.model_dir = model_dir
        # The cores are shared among the workers: each embeds with its share of them.
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        # Each worker loads the model as this process did (precision, and the cache of the built int8 graph).
        options: tuple[str, str | None] | None = None
        if model_dir is not None:
            from .embed import loaded_options

            options = loaded_options(model_dir)
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(settings, model_dir, threads, options),
        )

    def map(self, docs: Iterable[Document], chunksize: int = 32) -> Iterator[Fingerprint]:
        """Fingerprints of `docs` in order, at most a few chunks per worker ahead of the consumer."""
        it = iter(docs)
        window: deque[Future[list[Fingerprint]]] = deque()

        def submit() -> bool:
            chunk = [(d.title or "", d.text or "") for d in islice(it, chunksize)]
            if chunk:
                window.append(self._executor.submit(_worker_compute, chunk))
            return bool(chunk)

        try:
            while len(window) < 4 * self.workers and submit():
                pass
            while window:
                done = window.popleft().result()
                submit()
                yield from done
        finally:
            for f in window:
                f.cancel()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


_worker_settings: EngineSettings | None = None
_worker_params: TermParams | None = None
_worker_embedder: Embedder | None = None


def _worker_start(
    settings: EngineSettings,
    model_dir: str | None = None,
    threads: int = 1,
    options: tuple[str, str | None] | None = None,
) -> None:
    die_with_parent()  # a worker never outlives the process that started it (see daemon/procs.py)
    global _worker_settings, _worker_params, _worker_embedder
    _worker_settings, _worker_params = settings, term_params(settings)
    analysis.warm_up()
    if model_dir is not None:
        from .embed import ModelError, limit_blas_threads, load_embedder

        limit_blas_threads(threads)
        try:
            precision, cache_dir = options or ("float32", None)
            _worker_embedder = load_embedder(model_dir, threads=threads, precision=precision, cache_dir=cache_dir)
        except ModelError as exc:
            # The parent loaded the same folder a moment ago; should it have changed since, this worker's
            # fingerprints go without vectors (as an article stored before the model was installed does).
            import logging

            logging.getLogger(__name__).warning("%s: fingerprints from this worker carry no semantic vector", exc)


def _worker_compute(chunk: list[tuple[str, str]]) -> list[Fingerprint]:
    settings = _worker_settings
    assert settings is not None, "set by _worker_start"
    fps = [_lexical(title, text, settings, _worker_params) for title, text in chunk]
    if _worker_embedder is not None:
        vectors = _worker_embedder.embed_articles(chunk)
        fps = [replace(fp, vector=v.copy()) for fp, v in zip(fps, vectors)]
    return fps


def embed_with(
    embedder: Embedder, articles: list[tuple[str, str]], executor: Executor | None = None
) -> list[np.ndarray]:
    """The semantic vectors of (title, text) pairs: split among the processes of `executor` (a process pool whose
    workers load `embedder`'s model once each, see :func:`embed_in_worker`) when given, else in this process.

    A pool that cannot do it (a worker died, the model folder changed under it) costs nothing but time: the
    vectors are then computed here."""
    if not articles:
        return []
    if executor is not None:
        workers = max(1, getattr(executor, "_max_workers", 1))
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        step = -(-len(articles) // workers)
        parts = [articles[i : i + step] for i in range(0, len(articles), step)]
        try:
            # (an embedder that wraps another may lack the load options: float32 then, as before they existed)
            cache_dir = getattr(embedder, "cache_dir", None)
            options = (getattr(embedder, "precision", "float32"), None if cache_dir is None else str(cache_dir))
            futures = [
                executor.submit(embed_in_worker, str(embedder.model_dir), threads, part, options) for part in parts
            ]
            return [v for f in futures for v in f.result()]
        except Exception as exc:  # BrokenProcessPool, a shut-down pool, a model the worker could not load
            import logging

            logging.getLogger(__name__).debug("embedding in the worker processes failed (%s); embedding here", exc)
    return list(embedder.embed_articles(articles))


_embedders: dict[tuple[str, str, str | None], Embedder] = {}


def embed_in_worker(
    model_dir: str,
    threads: int,
    articles: list[tuple[str, str]],
    options: tuple[str, str | None] = ("float32", None),
) -> list[np.ndarray]:
    """Run in a worker process: the vectors of `articles` by the model in `model_dir` loaded with `options`
    (precision, cache folder of the int8 graph), loaded (and its weights checked) on the first call of this
    process and kept for the next ones."""
    key = (model_dir, *options)
    embedder = _embedders.get(key)
    if embedder is None:
        from .embed import limit_blas_threads, load_embedder

        limit_blas_threads(threads)
        embedder = _embedders[key] = load_embedder(
            model_dir, threads=threads, precision=options[0], cache_dir=options[1]
        )
    return list(embedder.embed_articles(articles))
