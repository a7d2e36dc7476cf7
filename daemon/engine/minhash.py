"""Vectorised MinHash over word shingles and a banded LSH index for wire-copy candidates.

Same scheme as datasketch (one affine permutation per slot over a 64-bit shingle hash), computed for all
shingles and slots in one numpy expression instead of hashing each shingle with SHA-1 in Python.
Token hashes are CRC-32 (stable across processes, so stored signatures stay comparable after a restart).
"""

from __future__ import annotations

import zlib

import numpy as np

NUM_PERM = 128
_EMPTY = np.uint32(0xFFFFFFFF)

_rng = np.random.Generator(np.random.PCG64(20240414))
# Odd multipliers make x -> a*x + b a bijection on 64-bit integers; the top 32 bits are the permuted value.
_A = (_rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
_B = _rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)
# Position multipliers that turn k token hashes into one shingle hash.
_POS = (_rng.integers(1, 2**63, size=8, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)

_token_cache: dict[str, int] = {}
_CACHE_LIMIT = 500_000


def token_hashes(toks: list[str]) -> np.ndarray:
    """Stable 32-bit hash per token (cached: news vocabulary repeats)."""
    cache = _token_cache
    out = []
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
    return np.unique(h)


def signature(shingles: np.ndarray) -> np.ndarray:
    """MinHash signature (NUM_PERM uint32); all slots 0xFFFFFFFF for an empty set."""
    if len(shingles) == 0:
        return np.full(NUM_PERM, _EMPTY, dtype=np.uint32)
    with np.errstate(over="ignore"):
        perm = (shingles[:, None] * _A[None, :] + _B[None, :]) >> np.uint64(32)
    return perm.min(axis=0).astype(np.uint32)


def jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.count_nonzero(sig_a == sig_b)) / NUM_PERM


def overlap(jac: float, size_a: int, size_b: int) -> tuple[float, float]:
    """Estimated (intersection size, containment of the smaller set) from a Jaccard estimate and set sizes."""
    inter = jac * (size_a + size_b) / (1.0 + jac)
    smaller = max(1, min(size_a, size_b))
    return inter, min(1.0, inter / smaller)


class BandIndex:
    """LSH over `bands` bands of `rows` slots: two signatures that agree on a whole band are candidates."""

    def __init__(self, rows: int):
        if NUM_PERM % rows:
            raise ValueError(f"rows must divide {NUM_PERM}")
        self.rows = rows
        self.bands = NUM_PERM // rows
        self._mult = np.array([0x9E3779B97F4A7C15 ^ (i * 0x632BE59BD9B4E019) | 1 for i in range(rows)],
                              dtype=np.uint64)
        self._tag = (np.arange(self.bands, dtype=np.uint64) * np.uint64(0xD6E8FEB86659FD93))
        # Most buckets hold one article: store it bare and switch to a list on the first collision.
        self._buckets: dict[int, int | list[int]] = {}

    def keys(self, sig: np.ndarray) -> list[int]:
        s = sig.astype(np.uint64).reshape(self.bands, self.rows)
        with np.errstate(over="ignore"):
            k = (s * self._mult[None, :]).sum(axis=1, dtype=np.uint64) ^ self._tag
        return k.tolist()

    def query(self, keys: list[int]) -> set[int]:
        found: set[int] = set()
        buckets = self._buckets
        for key in keys:
            hit = buckets.get(key)
            if hit is not None:
                if type(hit) is int:
                    found.add(hit)
                else:
                    found.update(hit)
        return found

    def insert(self, keys: list[int], item: int) -> None:
        buckets = self._buckets
        for key in keys:
            hit = buckets.get(key)
            if hit is None:
                buckets[key] = item
            elif type(hit) is int:
                buckets[key] = [hit, item]
            else:
                hit.append(item)
