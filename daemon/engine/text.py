"""Text normalisation shared by the copy and story tiers: NFKC, datelines, boilerplate, tokens, language."""

from __future__ import annotations

import re
import unicodedata

# Ideographs and kana are written without spaces, so each character is its own token; Hangul and
# alphabetic scripts keep whole words.
_TOKEN_RE = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
    r"|[^\W_]+(?:['’.\-][^\W_]+)*"
)

# "SEOUL, April 14 (Yonhap) -- ", "WASHINGTON (AP) — ", "BEIJING, April 12 (Reuters) - ", "LONDON — ":
# a short run of capitalised words / dates, optionally an agency in parentheses, then a dash.
_DATELINE_RE = re.compile(
    r"^\s*(?:[A-Z][\w.'’]*\.?,?\s+){0,4}?"
    r"(?:[A-Z][A-Za-z.'’]*|[A-Z]{2,}[\w.'’ ]*)"
    r"(?:,\s*(?:[A-Z][a-z]{2,8}\.?\s+\d{1,2}|\d{1,2}\s+[A-Z][a-z]{2,8}\.?)(?:,?\s*\d{4})?)?"
    r"\s*(?:\([^()]{1,40}\))?\s*(?:--|—|–|-)\s+"
)

_BOILERPLATE_RE = re.compile(
    r"\(end\)|copyright|all rights reserved|©|\(c\)\s*\d{4}|reproduction|redistribution|"
    r"reporting by|editing by|writing by|additional reporting|contact us|subscribe|newsletter|"
    r"follow us|click here|read more|related articles?|this article (?:was|is|has)|"
    r"[\w.+-]+@[\w-]+\.[\w.]+",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """Unicode NFKC (full-width letters, ligatures and compatibility forms fold to their plain form)."""
    if text.isascii():  # constant time, and ASCII is already in every normal form
        return text
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text


_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t\u00a0]*(?:\r?\n)+\s*|\r\n(?:[ \t]*\r\n)+\s*")


def paragraphs(text: str) -> list[str]:
    """Paragraphs separated by blank lines, stripped, empty ones dropped."""
    return [p for p in (part.strip() for part in _PARAGRAPH_BREAK_RE.split(text)) if p]


def strip_dateline(paragraph: str) -> str:
    """Remove a wire dateline in front of the first paragraph; copies add or drop them freely."""
    m = _DATELINE_RE.match(paragraph[:90])
    if m and m.end() < len(paragraph):
        return paragraph[m.end() :]
    return paragraph


# Every ASCII text that _BOILERPLATE_RE matches holds one of these once lower-cased (an e-mail address
# holds "@"): most paragraphs are cleared by a few substring searches instead of the expression.
_BOILERPLATE_CUES = (
    "(end)",
    "copyright",
    "all rights reserved",
    "(c)",
    "reproduction",
    "redistribution",
    "reporting by",
    "editing by",
    "writing by",
    "additional reporting",
    "contact us",
    "subscribe",
    "newsletter",
    "follow us",
    "click here",
    "read more",
    "related article",
    "this article ",
    "@",
)


def is_boilerplate(paragraph: str) -> bool:
    """A short paragraph that speaks about the publication rather than the event."""
    if len(paragraph) > 300:
        return False
    if paragraph.isascii():
        low = paragraph.lower()
        if not any(cue in low for cue in _BOILERPLATE_CUES):
            return False
    return bool(_BOILERPLATE_RE.search(paragraph))


def body_paragraphs(text: str) -> list[str]:
    """Body paragraphs with the dateline and trailing boilerplate removed (the part wire copies share)."""
    paras = paragraphs(normalise(text))
    while paras and is_boilerplate(paras[-1]):
        paras.pop()
    if paras:
        paras[0] = strip_dateline(paras[0])
    return paras


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (single characters for ideographic scripts)."""
    return _TOKEN_RE.findall(text.lower())
