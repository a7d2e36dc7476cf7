"""An article's fingerprint: everything the engine keeps of it, computed once and stored by the caller.

The engine decides from the fingerprint alone, so restoring fingerprints from storage rebuilds exactly the
state an engine that never restarted would have.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from . import minhash
from .terms import NAME, NUMBER, WORD, extract, term_idf
from .text import body_paragraphs, is_english, tokens

_MAGIC = b"WDF1"
_HEAD = struct.Struct("<4sBIH")  # magic, flags, shingle count, term count
_SEP = "\x1f"


class FingerprintError(ValueError):
    """A stored fingerprint that this version cannot read."""


@dataclass(frozen=True, eq=False)
class Fingerprint:
    english: bool
    shingles: int                       # distinct body shingles (set size behind the signature)
    signature: np.ndarray               # MinHash, uint32[NUM_PERM]
    terms: tuple[str, ...]              # salient terms, heaviest first
    weights: np.ndarray                 # float32, unit L2 norm, aligned with terms

    def to_bytes(self) -> bytes:
        text = _SEP.join(self.terms).encode("utf-8")
        head = _HEAD.pack(_MAGIC, 1 if self.english else 0, self.shingles, len(self.terms))
        return b"".join((head, self.signature.astype("<u4").tobytes(),
                         self.weights.astype("<f4").tobytes(), text))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Fingerprint":
        try:
            magic, flags, shingles, n = _HEAD.unpack_from(data, 0)
            if magic != _MAGIC:
                raise FingerprintError("not a wiredesk fingerprint (bad magic)")
            off = _HEAD.size
            sig = np.frombuffer(data, dtype="<u4", count=minhash.NUM_PERM, offset=off).astype(np.uint32)
            off += 4 * minhash.NUM_PERM
            weights = np.frombuffer(data, dtype="<f4", count=n, offset=off).astype(np.float32)
            off += 4 * n
            terms = tuple(data[off:].decode("utf-8").split(_SEP)) if n else ()
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, FingerprintError):
                raise
            raise FingerprintError(f"corrupt fingerprint: {exc}") from exc
        if len(terms) != n:
            raise FingerprintError("corrupt fingerprint: term count mismatch")
        return cls(bool(flags & 1), shingles, sig, terms, weights)


def compute(title: str, text: str, settings) -> Fingerprint:
    s = settings
    paras = body_paragraphs(text)
    body_tokens = tokens("\n\n".join(paras))
    english = is_english(tokens(title) + body_tokens)

    shingles = minhash.shingle_hashes(body_tokens, s.shingle_size)
    sig = minhash.signature(shingles)

    if not english:
        # No salient terms: a language the story tier cannot read joins a story only as a copy.
        return Fingerprint(False, len(shingles), sig, (), np.zeros(0, dtype=np.float32))

    tf = extract(title, paras, title_weight=s.title_weight, lead_paragraphs=s.lead_paragraphs,
                 lead_weight=s.lead_weight, name_weight=s.phrase_weight)
    groups = {WORD: (s.word_group, s.max_words), NAME: (s.name_group, s.max_names),
              NUMBER: (s.number_group, s.max_numbers)}
    by_kind: dict[str, list[tuple[str, float]]] = {WORD: [], NAME: [], NUMBER: []}
    for t, c in tf.items():
        by_kind[t[0]].append((t, (1.0 + math.log(c)) * term_idf(t, s.year_idf)))
    scored: list[tuple[str, float]] = []
    for kind, items in by_kind.items():
        factor, cap = groups[kind]
        if not items or factor <= 0:
            continue
        items.sort(key=lambda x: (-x[1], x[0]))
        items = items[:cap]
        scored.extend((t, factor * w) for t, w in items)
    if not scored:
        return Fingerprint(True, len(shingles), sig, (), np.zeros(0, dtype=np.float32))
    scored.sort(key=lambda x: (-x[1], x[0]))
    w = np.array([x for _, x in scored], dtype=np.float32)
    w /= np.float32(np.linalg.norm(w)) or np.float32(1.0)
    return Fingerprint(True, len(shingles), sig, tuple(t for t, _ in scored), w)
