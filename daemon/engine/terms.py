"""Word lists and the IDF prior of the story tier.

The IDF prior comes from a general word-frequency table (wordfreq), so the first articles are judged
against ordinary English rather than against a corpus of five.
"""

from __future__ import annotations

import math
import threading

import numpy as np

STOPWORDS = frozenset(
    """a about above after again against all almost along already also although always am among an and another
    any anyone anything are around as at away back be became because become been before being below between
    both but by came can cannot could did do does doing done down during each either else enough even ever
    every few for from further get gets getting give given go goes going gone got had has have having he her
    here hers herself him himself his how however i if in including into is it its itself just keep know last
    later least less let like likely made make makes many may me might more most much must my myself near need
    never new news next no nor not now of off often on once one only onto or other others otherwise our ours
    ourselves out over own part per perhaps put rather really said same say saying says see seen several she
    should since so some someone something still such take taken than that the their theirs them themselves
    then there these they thing things this those though three through thus till to today together told too
    took toward towards two under until up upon us use used very via was way we well went were what whatever
    when where whether which while who whom whose why will with within without would yet you your yours
    yourself also mr mrs ms dr according reported reports report statement monday tuesday wednesday thursday
    friday saturday sunday week weeks day days time times year years yesterday tonight morning afternoon
    evening night ago told asked added called around people percent cent s t don didn doesn isn wasn won""".split()
)

# Frequent English function words: their share of tokens is a cheap, robust language check.
ENGLISH_FUNCTION_WORDS = frozenset(
    """the of and to in a is was that for on with as by at from it his her he she are were has have had be been
    this an which who will not but their they its would said says after or also than more about into over
    could when there what we our you your i all one new two up out can been first last year years""".split()
)

TYPICAL_LENGTH = 400.0  # tokens in an article: turns a word frequency into a document frequency
MIN_ZIPF = 1.0  # words rarer than this (or unknown: names) all count as this rare


def idf_from_frequency(freq: float) -> float:
    """-log P(an article contains the word), for a word of this frequency in general English."""
    freq = max(freq, 10.0 ** (MIN_ZIPF - 9.0))
    return -math.log(max(-math.expm1(-freq * TYPICAL_LENGTH), 1e-12))


UNKNOWN_IDF = idf_from_frequency(0.0)

_table: tuple[np.ndarray, np.ndarray, float] | None = None
_lock = threading.Lock()


def prior_idf_table() -> tuple[np.ndarray, np.ndarray, float]:
    """(sorted token hashes, IDF per hash, IDF of an unknown word), built once from wordfreq's English list."""
    global _table
    if _table is None:
        with _lock:
            if _table is None:
                _table = _build_table()
    return _table


def _build_table() -> tuple[np.ndarray, np.ndarray, float]:
    from wordfreq import get_frequency_dict

    from .analysis import scan

    freqs = get_frequency_dict("en")
    words = [w for w in freqs if w.isprintable() and " " not in w and "\n" not in w and not any(c.isdigit() for c in w)]
    toks = scan(["\n".join(words)])
    # Keep words that are exactly one token of ours, so that the hash means the same word.
    offsets = np.zeros(len(words), dtype=np.int64)
    lengths = np.fromiter((len(w.encode("utf-8")) for w in words), dtype=np.int64, count=len(words))
    offsets[1:] = np.cumsum(lengths + 1)[:-1]
    w_idx = np.searchsorted(offsets, toks.start, side="right") - 1
    whole = (toks.start == offsets[w_idx]) & (toks.end - toks.start == lengths[w_idx])
    hashes = toks.hashes[whole]
    f = np.fromiter((freqs[w] for w in words), dtype=np.float64, count=len(words))[w_idx[whole]]
    f = np.maximum(f, 10.0 ** (MIN_ZIPF - 9.0))
    idf = -np.log(np.maximum(-np.expm1(-f * TYPICAL_LENGTH), 1e-12))
    order = np.argsort(hashes, kind="stable")
    hashes, idf = hashes[order], idf[order]
    # Two spellings may share a hash after our normalisation: keep the first (the more frequent is fine).
    keep = np.ones(len(hashes), dtype=bool)
    keep[1:] = hashes[1:] != hashes[:-1]
    return hashes[keep], idf[keep].astype(np.float32), UNKNOWN_IDF


def content_terms(text: str) -> list[str]:
    """Lower-cased non-stopword tokens (for simple baselines)."""
    from .text import tokens

    return [t for t in tokens(text) if len(t) >= 2 and t not in STOPWORDS]
