"""An article's fingerprint: everything the engine keeps of it, computed once and stored by the caller.

The engine decides from the fingerprint alone, so restoring fingerprints from storage rebuilds exactly the
state an engine that never restarted would have.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass

import numpy as np

from . import minhash
from .terms import content_terms, names, prior_idf
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


def compute(title: str, text: str, *, shingle_size: int, title_weight: float, lead_paragraphs: int,
            lead_weight: float, name_weight: float, max_terms: int) -> Fingerprint:
    paras = body_paragraphs(text)
    body = "\n\n".join(paras)
    body_tokens = tokens(body)
    english = is_english(tokens(title) + body_tokens)

    shingles = minhash.shingle_hashes(body_tokens, shingle_size)
    sig = minhash.signature(shingles)

    if not english:
        # No salient terms: a language the story tier cannot read joins a story only as a copy.
        return Fingerprint(False, len(shingles), sig, (), np.zeros(0, dtype=np.float32))

    tf: Counter[str] = Counter()
    for t in content_terms(body):
        tf[t] += 1.0
    lead = " ".join(paras[:lead_paragraphs])
    if lead_weight:
        for t in content_terms(lead):
            tf[t] += lead_weight
    for t in content_terms(title):
        tf[t] += title_weight
    if name_weight:
        for n in names(title + ".\n" + body):
            tf[n] += name_weight

    scored = [(t, (1.0 + math.log(c)) * prior_idf(t)) for t, c in tf.items() if c > 0]
    scored.sort(key=lambda x: (-x[1], x[0]))
    scored = scored[:max_terms]
    if not scored:
        return Fingerprint(True, len(shingles), sig, (), np.zeros(0, dtype=np.float32))
    w = np.array([s for _, s in scored], dtype=np.float32)
    w /= np.float32(np.linalg.norm(w)) or np.float32(1.0)
    return Fingerprint(True, len(shingles), sig, tuple(t for t, _ in scored), w)
