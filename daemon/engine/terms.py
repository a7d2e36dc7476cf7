"""Salient terms of an article: IDF-weighted words and names, the signal the story tier compares.

The IDF prior comes from a general word-frequency table (wordfreq), so the first articles are judged
against ordinary English rather than against a corpus of five.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from wordfreq import zipf_frequency

from .text import tokens

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

_PREFIX = 400.0  # typical article length in tokens: turns a word frequency into a document frequency
_MIN_ZIPF = 1.0

_idf_cache: dict[str, float] = {}


def prior_idf(term: str) -> float:
    """-log P(an article contains term), from the word's frequency in general English text."""
    v = _idf_cache.get(term)
    if v is None:
        parts = term.split(" ")
        # A multiword name is as rare as its rarest word (and then some); single words look up directly.
        z = min(zipf_frequency(p, "en") for p in parts)
        z = max(z, _MIN_ZIPF)
        freq = 10.0 ** (z - 9.0)
        p_doc = -math.expm1(-freq * _PREFIX)
        v = -math.log(max(p_doc, 1e-12))
        if len(parts) > 1:
            v += 1.0
        if len(_idf_cache) < 1_000_000:
            _idf_cache[term] = v
    return v


# Capitalised word sequences ("Lindsay Lohan", "Betty Ford Center", "Zhao Leji"); connectors allowed inside.
_NAME_RE = re.compile(
    r"(?<![\w’'])([A-Z][\w’'\-]*[A-Za-z0-9](?:\s+(?:(?:of|de|del|la|al|bin|van|von|der)\s+)?[A-Z][\w’'\-]*[A-Za-z0-9])+)"
)


def _clean(tok: str) -> str:
    if tok.endswith("'s") or tok.endswith("’s"):
        tok = tok[:-2]
    return tok.strip(".,'’-")


_WORD_RE = re.compile(r"[^\W_]+(?:['’.,\-][^\W_]+)*")
_SENTENCE_END_RE = re.compile(r"[.!?:;\"“”'‘’()\[\]|\-–—]\s*$")
_YEAR_RE = re.compile(r"^(?:1[89]\d|20[0-3])\d$")

# Term kinds: a content word, a proper name (capitalised inside sentences), a number or date part.
WORD, NAME, NUMBER = "w", "e", "n"


def extract(title: str, paras: list[str], *, title_weight: float, lead_paragraphs: int, lead_weight: float,
            name_weight: float) -> Counter:
    """Weighted term counts keyed "kind:term"; title and lead occurrences count extra.

    A word is a name when the article writes it capitalised inside sentences more often than in lower
    case, so sentence-initial capitals and all-caps headlines do not turn common words into names.
    """
    segments = [(title, 1.0 + title_weight)]
    segments += [(p, 1.0 + lead_weight if i < lead_paragraphs else 1.0) for i, p in enumerate(paras)]
    occurrences: list[tuple[str, int, float]] = []   # term, case class (1 capital inside, 0 lower, -1 unknown)
    votes: dict[str, int] = {}
    for seg, weight in segments:
        if not seg:
            continue
        caps_line = seg.upper() == seg
        for m in _WORD_RE.finditer(seg):
            tok = m.group(0)
            low = _clean(tok.lower())
            if len(low) < 2 or low in STOPWORDS:
                continue
            if low[0].isdigit():
                occurrences.append((low, 2, weight))
                continue
            start = m.start()
            if caps_line or start == 0 or _SENTENCE_END_RE.search(seg[max(0, start - 3):start]):
                cls = -1
            elif tok[0].isupper():
                cls = 1
            else:
                cls = 0
            if cls >= 0:
                votes[low] = votes.get(low, 0) + (1 if cls else -1)
            occurrences.append((low, cls, weight))
    tf: Counter = Counter()
    for low, cls, weight in occurrences:
        if cls == 2:
            tf[NUMBER + ":" + low] += weight
        elif votes.get(low, 0) > 0:
            tf[NAME + ":" + low] += weight
        else:
            tf[WORD + ":" + low] += weight
    if name_weight:
        for seg, weight in segments:
            for n in names(seg):
                tf[NAME + ":" + n] += name_weight * weight
    return tf


def term_idf(term: str, year_idf: float) -> float:
    """IDF of a "kind:term" key; years get a fixed weight as they pin an event in time."""
    body = term[2:]
    if term[0] == NUMBER and _YEAR_RE.match(body):
        return year_idf
    return prior_idf(body)


def content_terms(text: str) -> list[str]:
    out = []
    for t in tokens(text):
        t = _clean(t)
        if len(t) < 2 or t in STOPWORDS:
            continue
        out.append(t)
    return out


def names(text: str) -> list[str]:
    """Multiword capitalised names, lower-cased, function words at the edges trimmed."""
    out = []
    for m in _NAME_RE.finditer(text):
        words = [_clean(w.lower()) for w in m.group(1).split()]
        while words and words[0] in STOPWORDS:
            words.pop(0)
        while words and words[-1] in STOPWORDS:
            words.pop()
        if len(words) >= 2:
            out.append(" ".join(words))
    return out
