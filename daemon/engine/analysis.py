"""Vectorised article analysis: tokens, shingles and salient terms in a handful of numpy passes.

The text is handled as a byte array: a lookup table classifies bytes, token boundaries fall out of shifted
comparisons, and every token's hash is a polynomial rolling hash read off one cumulative sum. Only the
few terms finally kept are ever turned back into Python strings. This keeps the per-article cost close to
that of the regular-expression scan alone.

Tokens: runs of ASCII letters/digits and non-ASCII characters; an apostrophe, period, comma or hyphen
between two such characters stays inside ("U.S", "1,000", "o'brien"); a possessive "'s" is dropped.
Ideographic scripts (no spaces between words) take the slower per-character path in `text.tokens`.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .minhash import distinct
from .terms import ENGLISH_FUNCTION_WORDS, STOPWORDS, prior_idf_table

_M64 = (1 << 64) - 1
_BASE = 0x100000001B3 * 2 + 1  # odd, so it has an inverse modulo 2**64
_BASE_INV = pow(_BASE, -1, 1 << 64)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S27, _S29, _S30, _S31 = np.uint64(27), np.uint64(29), np.uint64(30), np.uint64(31)
_SHINGLE_MULT = [
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xC2B2AE3D27D4EB4F),
    np.uint64(0x165667B19E3779F9),
    np.uint64(0xD6E8FEB86659FD93),
    np.uint64(0xFF51AFD7ED558CCD),
    np.uint64(0xC4CEB9FE1A85EC53),
]

_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Typographic punctuation to ASCII, so that the byte classes below see it as punctuation.
_PUNCT = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2039": '"',
        "\u203a": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2026": ".",
        "\u00a0": " ",
        "\u200b": " ",
        "\u2022": " ",
        "\u00b7": " ",
        "\u3000": " ",
        "\u00a9": " ",
        "\u00ae": " ",
        "\u2122": " ",
        "\r": "\n",
    }
)

_WORD, _CONNECT = 1, 2
_CLASS = np.zeros(256, dtype=np.uint8)
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
    _CLASS[_c] = _WORD
_CLASS[0x80:] = _WORD
for _c in b"'.,-":
    _CLASS[_c] = _CONNECT
_IS_TOKEN_CHAR = _CLASS == _WORD
_IS_CONNECT = _CLASS == _CONNECT
_IS_BLANK = np.zeros(256, dtype=bool)
_IS_BLANK[[ord(" "), ord("\t")]] = True
# A token right after one of these (or a line break) starts a sentence; its capital says nothing.
_STARTS_SENTENCE = np.zeros(256, dtype=bool)
for _c in b".!?:;\"'()[]|-\n":
    _STARTS_SENTENCE[_c] = True
_IS_UPPER = np.zeros(256, dtype=bool)
_IS_UPPER[ord("A") : ord("Z") + 1] = True
_IS_DIGIT = np.zeros(256, dtype=bool)
_IS_DIGIT[ord("0") : ord("9") + 1] = True
_ASCII_LOWER = np.arange(256, dtype=np.uint8)
_ASCII_LOWER[ord("A") : ord("Z") + 1] += 32

_pow = np.ones(1, dtype=np.uint64)
_inv_pow = np.ones(1, dtype=np.uint64)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**i and BASE**-i modulo 2**64 for i < n (grown on demand, kept for the process)."""
    global _pow, _inv_pow
    if len(_pow) < n:
        size = max(n, 2 * len(_pow), 4096)
        pw, iv = _pow, _inv_pow
        with np.errstate(over="ignore"):
            while len(pw) < size:
                k = len(pw)  # doubling: B**(k+i) = B**k * B**i
                pw = np.concatenate([pw, pw * np.uint64(pow(_BASE, k, 1 << 64))])
                iv = np.concatenate([iv, iv * np.uint64(pow(_BASE_INV, k, 1 << 64))])
        _pow, _inv_pow = pw, iv
    return _pow, _inv_pow


_arange = np.arange(4096, dtype=np.int64)


def _positions(n: int) -> np.ndarray:
    """0, 1, ... n - 1 (a view of an array grown on demand)."""
    global _arange
    if len(_arange) < n:
        _arange = np.arange(max(n, 2 * len(_arange)), dtype=np.int64)
    return _arange[:n]


def _mix(h: np.ndarray) -> np.ndarray:
    # Array arithmetic wraps modulo 2**64 without a warning (only numpy scalars check), so no errstate.
    h = h ^ (h >> _S30)
    h *= _MIX1
    h ^= h >> _S27
    h *= _MIX2
    h ^= h >> _S31
    return h


@dataclass(frozen=True, eq=False)
class Tokens:
    """Token spans of one text with their hashes and the facts the term weighting needs."""

    data: bytes  # the text, lower-cased, UTF-8
    start: np.ndarray  # byte offsets
    end: np.ndarray
    hashes: np.ndarray  # uint64 per token (lower-cased bytes)
    upper: np.ndarray  # bool: written with an initial capital
    digit: np.ndarray  # bool: starts with a digit
    sentence_start: np.ndarray
    paragraph: np.ndarray  # index of the paragraph (segment) the token belongs to

    @cached_property
    def lexicon(self) -> tuple[np.ndarray, np.ndarray]:
        """Per token: its IDF prior (float32) and stop/function-word flags, from one probe of the word table."""
        return _lexicon().lookup(self.hashes)


def scan(segments: list[str]) -> Tokens:
    """Tokenise segments (title, paragraphs...) joined by blank lines; paragraph index per token."""
    text = "\n\n".join(segments)
    raw = text.encode("utf-8")
    lowered = text.lower().encode("utf-8")
    b = np.frombuffer(raw, dtype=np.uint8)
    if len(lowered) == len(raw):
        low = np.frombuffer(lowered, dtype=np.uint8)
    else:  # a rare character changes length when lower-cased: fall back to ASCII lower-casing
        low = _ASCII_LOWER.take(b)
        lowered = low.tobytes()
    n = len(b)
    empty = np.zeros(0, dtype=np.int64)
    if n == 0:
        return Tokens(
            lowered,
            empty,
            empty,
            np.zeros(0, dtype=np.uint64),
            empty.astype(bool),
            empty.astype(bool),
            empty.astype(bool),
            empty,
        )
    tok = _IS_TOKEN_CHAR.take(b)
    if n > 2:
        mid = b[1:-1]
        inner = _IS_CONNECT.take(mid) & tok[:-2] & tok[2:]
        # A possessive 's ends the token: "Lohan's" is "lohan".
        poss = (mid == 39) & (low[2:] == 115)
        if poss.any():
            after = np.ones(n - 2, dtype=bool)
            after[:-1] = ~tok[3:]
            poss &= after & tok[:-2]
            idx = poss.nonzero()[0] + 1
            tok[idx + 1] = False
            inner[idx - 1] = False
        tok[1:-1] |= inner
    # Token edges: where the class changes, with a non-token byte before and after the text.
    padded = np.zeros(n + 2, dtype=bool)
    padded[1:-1] = tok
    edges = (padded[1:] != padded[:-1]).nonzero()[0]
    start, end = edges[0::2], edges[1::2]

    pw, iv = _powers(n + 1)
    acc = np.empty(n + 1, dtype=np.uint64)
    acc[0] = 0
    np.cumsum(low * iv[:n], out=acc[1:])
    length = end - start
    h = acc[end]
    h -= acc[start]
    h *= pw[end - 1]
    h += length.astype(np.uint64)
    hashes = _mix(h)

    first = b[start]
    upper = _IS_UPPER.take(first)
    if not raw.isascii():
        multibyte = first >= 0x80
        # A capital differs from its lower case in the first or, for multi-byte letters, the second byte.
        nxt = np.minimum(start + 1, n - 1)
        upper |= multibyte & ((first != low[start]) | (b[nxt] != low[nxt]))
    digit = _IS_DIGIT.take(first)

    # The byte before each token, stepping back over blanks: the last non-blank byte before its start.
    last = np.maximum.accumulate(np.where(_IS_BLANK.take(b), -1, _positions(n)))
    if len(start) == 0 or start[0] > 0:
        prev = last[start - 1]
    else:
        prev = last[np.maximum(start - 1, 0)]
        prev[0] = -1
    sentence_start = (prev < 0) | _STARTS_SENTENCE.take(b[np.maximum(prev, 0)])

    if len(segments) > 1:
        seg_starts = []
        off = 0
        for seg in segments:
            seg_starts.append(off)
            off += (len(seg) if seg.isascii() else len(seg.encode("utf-8"))) + 2
        paragraph = np.array(seg_starts).searchsorted(start, side="right") - 1
    else:
        paragraph = np.zeros(len(start), dtype=np.int64)
    return Tokens(lowered, start, end, hashes, upper, digit, sentence_start, paragraph)


def _sorted_hashes(words: Iterable[str]) -> np.ndarray:
    toks = scan(["\n".join(sorted(words))])
    return distinct(toks.hashes)


_STOP_H = _sorted_hashes(STOPWORDS)
_FUNCTION_H = _sorted_hashes(ENGLISH_FUNCTION_WORDS)
STOP, FUNCTION = 1, 2  # lexicon flags


class _WordTable:
    """Token hash -> (IDF prior, flags) for the word-frequency list and the stop and function words.

    A read-only hash table rather than a binary search of the sorted list: a lookup reads the keys of
    one bucket per token instead of walking ~18 levels of a 300k-entry array, all tokens at once.
    Buckets of 16 slots hold 3 to 6 keys on average; a key whose bucket is full sits in the next
    bucket with room, which a lookup then has to follow (with this sizing, practically never).
    An absent token gets the IDF of an unknown word and no flags.
    """

    WIDTH = 16

    def __init__(self, keys: np.ndarray, idf: np.ndarray, flags: np.ndarray, absent_idf: float | np.float32):
        w = self.WIDTH
        nb = 16
        while 6 * nb < len(keys):
            nb *= 2
        self._mask = nb - 1
        # The empty-slot key: any value that is not a key (a lookup of it finds an empty slot: absent).
        empty = 0
        while np.any(keys == empty):
            empty += 1
        self._empty = np.uint64(empty)
        self._keys = np.full((nb, w), self._empty, dtype=np.uint64)
        # One extra cell past the table answers for every absent key.
        self._absent = nb * w
        self._idf = np.full(nb * w + 1, absent_idf, dtype=np.float32)
        self._flags = np.zeros(nb * w + 1, dtype=np.uint8)
        bucket = (keys & np.uint64(self._mask)).astype(np.intp)  # hashes are mixed: low bits will do
        order = np.argsort(bucket, kind="stable")
        keys, idf, flags, bucket = keys[order], idf[order], flags[order], bucket[order]
        head = np.ones(len(keys), dtype=bool)
        head[1:] = bucket[1:] != bucket[:-1]
        rank = np.arange(len(keys)) - head.nonzero()[0][np.cumsum(head) - 1]
        fit = rank < w
        slot = bucket[fit] * w + rank[fit]
        self._keys.reshape(-1)[slot] = keys[fit]
        self._idf[slot] = idf[fit]
        self._flags[slot] = flags[fit]
        self._overflow = not fit.all()
        for k, v, f, b in zip(keys[~fit], idf[~fit], flags[~fit], bucket[~fit].tolist()):
            while True:
                b = (b + 1) & self._mask
                free = (self._keys[b] == self._empty).nonzero()[0]
                if len(free):
                    self._keys[b, free[0]] = k
                    self._idf[b * w + free[0]] = v
                    self._flags[b * w + free[0]] = f
                    break

    def lookup(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bucket = (h & np.uint64(self._mask)).astype(np.intp)
        rows = self._keys.take(bucket, axis=0)
        # Keys are distinct: at most one match per row.
        r, c = (rows == h[:, None]).nonzero()
        slot = np.full(len(h), self._absent, dtype=np.intp)
        slot[r] = bucket.take(r) * self.WIDTH + c
        if self._overflow:
            hit = slot != self._absent
            # Not in its bucket: only a full bucket can have sent it on.
            for i in (~hit & (rows[:, -1] != self._empty)).nonzero()[0].tolist():
                slot[i] = self._probe_on(int(h[i]), int(bucket[i]))
        return self._idf.take(slot), self._flags.take(slot)

    def _probe_on(self, key: int, b: int) -> int:
        while True:
            b = (b + 1) & self._mask
            row = self._keys[b]
            at = (row == np.uint64(key)).nonzero()[0]
            if len(at):
                return b * self.WIDTH + int(at[0])
            if row[-1] == self._empty:
                return self._absent


_word_table: _WordTable | None = None
_word_table_lock = threading.Lock()


def warm_up() -> None:
    """Build the word tables now rather than on the first English article."""
    _lexicon()


def _lexicon() -> _WordTable:
    global _word_table
    if _word_table is None:
        with _word_table_lock:
            if _word_table is None:
                table_h, table_idf, unknown_idf = prior_idf_table()
                keys = distinct(np.concatenate([table_h, _STOP_H, _FUNCTION_H]))
                pos = np.minimum(np.searchsorted(table_h, keys), len(table_h) - 1)
                absent = np.float32(unknown_idf)
                idf = np.where(table_h[pos] == keys, table_idf[pos], absent).astype(np.float32)
                flags = (np.isin(keys, _STOP_H) * STOP | np.isin(keys, _FUNCTION_H) * FUNCTION).astype(np.uint8)
                _word_table = _WordTable(keys, idf, flags, absent)
    return _word_table


def mostly_ideographic(text: str) -> bool:
    """Chinese or Japanese text (no spaces between words), not English quoting a name in characters."""
    if text.isascii() or _CJK_RE.search(text) is None:
        return False
    return len(_CJK_RE.findall(text)) * 5 >= len(text.strip()) > 0


# The same mapping as a regular expression: str.translate looks up every character of a non-ASCII
# text in the table, ten times slower than finding the few that are there.
_PUNCT_RE = re.compile("[" + "".join(re.escape(chr(k)) for k in _PUNCT) + "]")
_PUNCT_MAP = {chr(k): v for k, v in _PUNCT.items()}


def normalise_punctuation(text: str) -> str:
    return _PUNCT_RE.sub(lambda m: _PUNCT_MAP[m.group()], text)


SHORT_TOKENS = 20  # fewer tokens: a headline or a one-line summary
COMMON_IDF = 8.0  # prior IDF below this: a common English word


def is_english(toks: Tokens) -> bool:
    """English news runs at 35-50 % function words from a short list; other languages far below 15 %.

    A headline has too few words for that count and drops most function words ("Fed official says weak
    data caused by weather"), so a short text is English when at least half its tokens are common English
    words (on the development headlines 99 % pass; headlines in German, Spanish, Polish, Turkish or Russian
    stay under it, Romance languages close to it)."""
    n = len(toks.hashes)
    if n == 0:
        return False
    idf, flags = toks.lexicon
    if n < SHORT_TOKENS:
        return int(np.count_nonzero(idf < COMMON_IDF)) / n >= 0.5
    return int(np.count_nonzero(flags & FUNCTION)) / n >= 0.15


def shingles(toks: Tokens, first_body: int, k: int) -> np.ndarray:
    """Distinct hashes of the word k-shingles of the tokens from paragraph `first_body` on."""
    h = toks.hashes[toks.paragraph >= first_body] if first_body else toks.hashes
    return shingle_hashes(h, k)


def shingle_hashes(h: np.ndarray, k: int) -> np.ndarray:
    n = len(h)
    if n == 0:
        return h
    k = min(k, n)
    m = n - k + 1
    out = h[:m] * _SHINGLE_MULT[0]
    for i in range(1, k):
        out += h[i : i + m] * _SHINGLE_MULT[i]
    return distinct(_mix(out))


@dataclass(frozen=True)
class TermParams:
    segment_weights: tuple[float, ...]  # extra count per segment index (title, lead paragraphs...), rest 1.0
    caps_segments: tuple[bool, ...]  # segments written in capitals: their capitals say nothing
    phrase_weight: float
    year_idf: float
    number_idf: float
    groups: tuple[float, float, float]  # word, name, number
    caps: tuple[int, int, int]


_KIND_PREFIX = (b"w:", b"e:", b"n:")


def _unique_first_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.unique(x, return_index=True, return_inverse=True), without its fixed overhead."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    head = np.empty(len(xs), dtype=bool)
    head[0] = True
    np.not_equal(xs[1:], xs[:-1], out=head[1:])
    inv = np.empty(len(x), dtype=np.intp)
    inv[order] = np.cumsum(head) - 1
    return xs[head], order[head], inv


def salient_terms(toks: Tokens, p: TermParams) -> tuple[list[str], np.ndarray]:
    """Kept terms ("w:word", "e:name", "n:number") and their weights, heaviest first, unit L2 norm."""
    h = toks.hashes
    if len(h) == 0:
        return [], np.zeros(0, dtype=np.float32)
    seg_w = np.ones(max(len(p.segment_weights), int(toks.paragraph[-1]) + 1))  # paragraphs ascend
    seg_w[: len(p.segment_weights)] = p.segment_weights
    caps_seg = np.zeros(len(seg_w), dtype=bool)
    # Trailing segments without tokens (a closing "* * *") have no index here.
    caps = p.caps_segments[: len(caps_seg)]
    caps_seg[: len(caps)] = caps
    length = toks.end - toks.start
    tok_idf, flags = toks.lexicon
    content = (length >= 2) & ((flags & STOP) == 0)
    weight = seg_w[toks.paragraph]
    upper = toks.upper
    mid_capital = upper & ~toks.sentence_start & ~caps_seg[toks.paragraph]
    lower = ~upper & ~toks.digit

    idx = content.nonzero()[0]
    if len(idx) == 0:
        return [], np.zeros(0, dtype=np.float32)
    u, first, inv = _unique_first_inverse(h[idx])
    tf = np.bincount(inv, weights=weight[idx])
    votes = np.bincount(inv, weights=mid_capital[idx]) - np.bincount(inv, weights=lower[idx])
    occ = idx[first]  # first occurrence of each distinct term
    is_num = toks.digit[occ]
    kind = np.where(is_num, 2, np.where(votes > 0, 1, 0))
    idf = tok_idf[occ]
    if is_num.any():
        idf = np.where(is_num, p.number_idf, idf)
        years = is_num & (length[occ] == 4)
        if years.any():
            for j in years.nonzero()[0].tolist():
                s = int(toks.start[occ[j]])
                word = toks.data[s : s + 4]
                if word.isdigit() and 1800 <= int(word) <= 2039:
                    idf[j] = p.year_idf
    starts, ends = toks.start[occ], toks.end[occ]
    phrase = _phrases(toks, content, upper, weight, p) if p.phrase_weight else None
    score = (1.0 + np.log(tf)) * idf
    n_single = len(score)
    names: list[bytes] = []
    if phrase is not None and len(phrase[0]):
        names = phrase[0]
        score = np.concatenate([score, phrase[1]])
        kind = np.concatenate([kind, np.ones(len(names), dtype=kind.dtype)])
    # Per kind, the `cap` heaviest (ties in index order: single terms, then phrases); kinds without a share
    # or a cap keep none. One stable sort by (kind, -score) for the three kinds at once.
    factor = np.array(p.groups, dtype=np.float64)
    cap = np.where(factor > 0, np.maximum(np.array(p.caps, dtype=np.int64), 0), 0)
    order = np.lexsort((-score, kind))
    ks = kind[order]
    rank = np.arange(len(ks)) - ks.searchsorted(ks)
    sel = order[rank < cap[ks]]
    if len(sel) == 0:
        return [], np.zeros(0, dtype=np.float32)
    w = score[sel] * factor[kind[sel]]
    # Heaviest first over all kinds; ties keep kind order, then the order above.
    fin = (-w).argsort(kind="stable")
    sel, w = sel[fin], w[fin]
    single = np.minimum(sel, n_single - 1)
    st, en = starts[single].tolist(), ends[single].tolist()
    data = toks.data
    pieces = [
        _KIND_PREFIX[k] + (data[a:z] if i < n_single else names[i - n_single])
        for i, k, a, z in zip(sel.tolist(), kind[sel].tolist(), st, en)
    ]
    # One decode for all: token bytes never hold the separator.
    terms = b"\x1f".join(pieces).decode("utf-8", "replace").split("\x1f")
    norm = float(np.sqrt(np.dot(w, w))) or 1.0
    return terms, (w / norm).astype(np.float32)


def _phrases(
    toks: Tokens, content: np.ndarray, upper: np.ndarray, weight: np.ndarray, p: TermParams
) -> tuple[list[bytes], np.ndarray] | None:
    """Multiword capitalised names ("Zhao Leji", "Betty Ford Center"): runs of capitalised content tokens
    separated by single spaces. Scored like a name as rare as its rarest word, plus one."""
    cap = content & upper & ~toks.digit
    n = len(cap)
    if n < 2:
        return None
    link = cap[:-1] & cap[1:] & (toks.start[1:] == toks.end[:-1] + 1)
    if not link.any():
        return None
    data = toks.data
    spaced = np.frombuffer(data, dtype=np.uint8)[toks.end[:-1][link]] == 32
    li = link.nonzero()[0][spaced]
    if len(li) == 0:
        return None
    # Runs of consecutive links: the links i..j join the tokens i..j+1 into one phrase.
    m = len(li)
    head = np.empty(m, dtype=bool)
    head[0] = True
    np.not_equal(li[1:], li[:-1] + 1, out=head[1:])
    at = head.nonzero()[0]
    run_first = li[at]
    tail = np.empty(m, dtype=bool)
    tail[-1] = True
    tail[:-1] = head[1:]
    run_last = li[tail] + 1
    # The rarest word of a run: of its linking tokens (contiguous in `li`, one reduceat) and its last.
    tok_idf = toks.lexicon[0]
    rarest = np.minimum(np.minimum.reduceat(tok_idf[li], at), tok_idf[run_last]).tolist()
    groups: dict[bytes, list[float]] = {}
    starts = toks.start[run_first].tolist()
    ends = toks.end[run_last].tolist()
    wts = weight[run_first].tolist()
    for a, z, w, r in zip(starts, ends, wts, rarest):
        key = data[a:z]
        entry = groups.get(key)
        if entry is None:
            groups[key] = [p.phrase_weight * w, r + 1.0]
        else:
            entry[0] += p.phrase_weight * w
    names = list(groups)
    scores = np.array([(1.0 + math.log(c)) * idf for c, idf in groups.values()])
    return names, scores
