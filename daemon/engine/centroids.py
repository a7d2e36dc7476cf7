"""Every story's term centroid in one hash table, for the story decision's lexical cosines.

A story's centroid is the sum of its members' salient-term weights (term -> weight). Keeping all of them in one
numpy hash table keyed by ``story << 32 | term`` makes the dot products of an article with all its candidate
stories one gather of a few hundred keys, and an article joining a story one scatter, with no Python object per
entry.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_M64 = (1 << 64) - 1
_KINDS = {"w:": 0, "e:": 1, "n:": 2}
_FIB = np.uint64(0x9E3779B97F4A7C15)

# An article's terms in a story's centroid, as Centroids.values gives them: (keys, slots, values, present).
Found = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class CentroidTable:
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


class Centroids:
    """Every story's centroid: term strings numbered once per engine, weights in one CentroidTable."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self.names: list[str] = []
        self._is_name = np.zeros(1024, dtype=bool)  # per term id: a name ("e:...")
        self._kind = np.zeros(1024, dtype=np.uint8)  # per term id: 0 word, 1 name, 2 number
        self.table = CentroidTable()

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

    def centroid(self, story: int, tids: np.ndarray) -> dict[str, float]:
        """The centroid of story `story` whose terms are `tids`, term -> weight."""
        _, _, vals, _ = self.values(story, tids)
        names = self.names
        return {names[i]: v for i, v in zip(tids.tolist(), vals.tolist())}

    def dot(self, a: int, a_tids: np.ndarray, b: int) -> float:
        """The dot product of the centroids of stories `a` (its terms `a_tids`) and `b`."""
        if not len(a_tids):
            return 0.0
        _, _, va, _ = self.values(a, a_tids)
        _, _, vb, _ = self.values(b, a_tids)
        return float(va @ vb)
