"""Vectorised MinHash over word shingles and the banded LSH indexes for wire-copy candidates.

Same scheme as datasketch (one affine permutation per slot over a 64-bit shingle hash), computed for all
shingles and slots in one numpy expression instead of hashing each shingle with SHA-1 in Python. Shingle
hashes come from token hashes that are pure functions of the token's bytes (the rolling hash of
`analysis.scan`; CRC-32 for the per-character scripts here), never Python's per-process `hash()`, so stored
signatures stay comparable across processes and restarts.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import EngineError, StorageError

NUM_PERM = 128
_EMPTY = np.uint32(0xFFFFFFFF)
_S32 = np.uint64(32)

_rng = np.random.Generator(np.random.PCG64(20240414))
# Odd multipliers make x -> a*x + b a bijection on 64-bit integers; the top 32 bits are the permuted value.
_A = (_rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
_B = _rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)
# Position multipliers that turn k token hashes into one shingle hash.
_POS = (_rng.integers(1, 2**63, size=8, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)

_token_cache: dict[str, int] = {}
_CACHE_LIMIT = 500_000


def distinct(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values: np.unique without its fixed overhead (it dominates on a few hundred values)."""
    if len(x) < 2:
        return x.copy()
    x = np.sort(x)
    keep = np.empty(len(x), dtype=bool)
    keep[0] = True
    np.not_equal(x[1:], x[:-1], out=keep[1:])
    return x[keep]


def token_hashes(toks: list[str]) -> np.ndarray:
    """Stable 32-bit hash per token (cached: news vocabulary repeats)."""
    cache = _token_cache
    out: list[int] = []
    append = out.append
    for t in toks:
        h = cache.get(t)
        if h is None:
            h = zlib.crc32(t.encode("utf-8"))
            if len(cache) < _CACHE_LIMIT:
                cache[t] = h
        append(h)
    return np.fromiter(out, dtype=np.uint64, count=len(out))


def shingle_hashes(toks: list[str], k: int) -> np.ndarray:
    """Distinct 64-bit hashes of the word k-shingles (fewer tokens than k: one shingle of all of them)."""
    th = token_hashes(toks)
    n = len(th)
    if n == 0:
        return th
    if n < k:
        k = n
    m = n - k + 1
    with np.errstate(over="ignore"):
        h = th[:m] * _POS[0]
        for i in range(1, k):
            h = h + th[i : i + m] * _POS[i]
        h ^= h >> np.uint64(29)
    return distinct(h)


def signature(shingles: np.ndarray) -> np.ndarray:
    """MinHash signature (NUM_PERM uint32); all slots 0xFFFFFFFF for an empty set."""
    if len(shingles) == 0:
        return np.full(NUM_PERM, _EMPTY, dtype=np.uint32)
    # Array arithmetic wraps modulo 2**64 without a warning, so no errstate.
    perm = shingles[:, None] * _A
    perm += _B
    # The permuted value is the top half; taking it after the minimum is the same (shifting is monotone).
    sig: np.ndarray = (perm.min(axis=0) >> _S32).astype(np.uint32)
    return sig


def jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.count_nonzero(sig_a == sig_b)) / NUM_PERM


def overlap(jac: float, size_a: int, size_b: int) -> tuple[float, float]:
    """Estimated (intersection size, containment of the smaller set) from a Jaccard estimate and set sizes."""
    inter = jac * (size_a + size_b) / (1.0 + jac)
    smaller = max(1, min(size_a, size_b))
    return inter, min(1.0, inter / smaller)


class BandIndex:
    """LSH over `bands` bands of `rows` slots: two signatures that agree on a whole band are candidates.

    The engine's default copy index, in process memory: a band is one 64-bit key (a hash of its slots),
    a bucket one article index, so a query is 128 / rows dict lookups and nothing is serialised.
    """

    def __init__(self, rows: int):
        if NUM_PERM % rows:
            raise EngineError(f"rows must divide {NUM_PERM}")
        self.rows = rows
        self.bands = NUM_PERM // rows
        self._mult = np.array(
            [((0x9E3779B97F4A7C15 ^ (i * 0x632BE59BD9B4E019)) & 0xFFFFFFFFFFFFFFFF) | 1 for i in range(rows)],
            dtype=np.uint64,
        )
        self._tag = np.arange(self.bands, dtype=np.uint64) * np.uint64(0xD6E8FEB86659FD93)
        # Most buckets hold one article: store it bare and switch to a list on the first collision.
        self._buckets: dict[int, int | list[int]] = {}

    def keys(self, sig: np.ndarray) -> list[int]:
        s = sig.astype(np.uint64).reshape(self.bands, self.rows)
        # The sum over each band's slots, a column at a time (a reduction over a short axis costs more);
        # array arithmetic wraps modulo 2**64 without a warning.
        k = s[:, 0] * self._mult[0]
        for j in range(1, self.rows):
            k += s[:, j] * self._mult[j]
        k ^= self._tag
        keys: list[int] = k.tolist()
        return keys

    def query(self, keys: list[int]) -> set[int]:
        found: set[int] = set()
        buckets = self._buckets
        for key in buckets.keys() & keys:  # the few occupied ones, found without a Python loop
            hit = buckets[key]
            if isinstance(hit, int):
                found.add(hit)
            else:
                found.update(hit)
        return found

    def insert(self, keys: list[int], item: int, article_id: str | None = None, *, restoring: bool = False) -> None:
        buckets = self._buckets
        for key in keys:
            hit = buckets.get(key)
            if hit is None:
                buckets[key] = item
            elif isinstance(hit, int):
                buckets[key] = [hit, item]
            else:
                hit.append(item)


class DatasketchBandIndex:
    """The copy-candidate LSH as a datasketch ``MinHashLSH`` with ``params=(bands, rows)``, over any
    datasketch storage (``storage_config``), typically Redis: the index then outlives the process and
    is shared by every engine configured with the same basename.

    Same candidates as :class:`BandIndex` (articles agreeing on a whole band of the engine's own
    signature), so the same decisions; it stores article ids, and a query answers with the insertion
    indices of the articles this engine knows (restored or added), ignoring the others. Each query and
    insert through datasketch's API is a round trip per band; on Redis the index sends the same commands to the same
    keys of datasketch's storage objects in one pipeline instead (one round trip per query, one per insert), and the
    in-process index stays the default. Restores are
    buffered and written in bulk before the next query; an article already in storage is not written
    again, so a restart over a filled Redis writes nothing and an emptied one is refilled by the restores.
    """

    def __init__(self, rows: int, storage_config: dict[str, Any], index_of: Mapping[str, int]):
        from datasketch import MinHashLSH

        if NUM_PERM % rows:
            raise EngineError(f"rows must divide {NUM_PERM}")
        config = dict(storage_config)
        if isinstance(config.get("basename"), str):
            config["basename"] = config["basename"].encode("utf-8")
        if config.get("type") == "redis":
            if not config.get("basename"):
                # datasketch would pick a random one: nothing shared, nothing found again after a restart.
                raise EngineError("a Redis copy index needs a 'basename' (the prefix of its keys)")
            _check_redis(config)
        self.rows = rows
        self.bands = NUM_PERM // rows
        self.lsh = MinHashLSH(num_perm=NUM_PERM, params=(self.bands, rows), storage_config=config)
        self._index_of = index_of
        self._stored: set[str] | None = None  # ids in storage when the first restore came
        self._session: Any = None
        # Redis: datasketch's storage objects, driven through one pipeline per call
        self._redis = getattr(self.lsh.keys, "_redis", None) if config.get("type") == "redis" else None

    def keys(self, sig: np.ndarray) -> Any:
        from datasketch import LeanMinHash

        # The values are the engine's 32-bit affine permutations; the scheme name only has to be the same
        # for every signature of the index.
        return LeanMinHash(seed=1, hashvalues=sig, scheme="affine32")

    def _bands(self, keys: Any) -> list[Any]:
        lsh = self.lsh
        return [lsh._H(keys.hashvalues[start:end]) for start, end in lsh.hashranges]

    def query(self, keys: Any) -> set[int]:
        self.flush()
        index_of = self._index_of
        if self._redis is None:
            return {index_of[k] for k in self.lsh.query(keys) if k in index_of}
        pipe = self._redis.pipeline(transaction=False)
        for band, table in zip(self._bands(keys), self.lsh.hashtables):
            table._get_items(pipe, table.redis_key(band))  # SMEMBERS of the band's bucket, as lsh.query does
        found = set().union(*pipe.execute())
        if self.lsh.prepickle:
            found = {pickle.loads(k) for k in found}
        return {index_of[k] for k in found if k in index_of}

    def insert(self, keys: Any, item: int, article_id: str, *, restoring: bool = False) -> None:
        if not restoring:
            self.flush()
            if self._redis is None:
                self.lsh.insert(article_id, keys, check_duplication=False)
                return
            lsh = self.lsh
            key = pickle.dumps(article_id) if lsh.prepickle else article_id
            bands = self._bands(keys)
            pipe = self._redis.pipeline(transaction=True)
            lsh.keys._insert(pipe, key, *bands)  # the commands of lsh.insert, in one MULTI/EXEC
            for band, table in zip(bands, lsh.hashtables):
                table._insert(pipe, band, key)
            pipe.execute()
            return
        if self._stored is None:
            self._stored = set(self.stored_ids())
        # Not in the snapshot: another engine may have stored it since (one lookup, no flush).
        if article_id in self._stored or self.lsh.__contains__(article_id):
            return
        if self._session is None:
            self._session = self.lsh.insertion_session()
        self._session.insert(article_id, keys, check_duplication=False)

    def flush(self) -> None:
        """Write buffered restores."""
        if self._session is not None:
            session, self._session = self._session, None
            session.close()

    def stored_ids(self) -> list[str]:
        """Ids of every article in the index's storage (whichever engine put them there)."""
        self.flush()
        keys = self.lsh.keys.keys()
        return [pickle.loads(k) for k in keys] if self.lsh.prepickle else list(keys)

    def __contains__(self, article_id: str) -> bool:
        self.flush()
        return article_id in self.lsh


def _check_redis(config: dict[str, Any]) -> None:
    """Fail at construction, with the address, rather than at the first query."""
    import redis

    params = {k: v for k, v in config.get("redis", {}).items() if not isinstance(v, dict)}
    try:
        redis.Redis(**{"socket_connect_timeout": 5, **params}).ping()
    except redis.exceptions.RedisError as exc:
        where = f"{params.get('host', 'localhost')}:{params.get('port', 6379)}"
        raise StorageError(f"cannot reach Redis at {where} for the copy and story indexes: {exc}") from exc
