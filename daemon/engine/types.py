"""The records passed into and out of the engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str  # body, paragraphs separated by blank lines
    published: datetime | None = None  # tz-aware when known
    source: str | None = None  # outlet name or feed URL
    url: str | None = None


@dataclass(frozen=True)
class Assignment:
    article_id: str
    story_id: str
    copy_of: str | None  # id of the earliest article of its copy group, or None
    score: float  # similarity that decided the story membership (1.0 for a story's founder)
    evidence: dict[str, Any]  # JSON-serialisable explanation of the decision
    fingerprint: bytes  # serialised Fingerprint: restore() rebuilds state from it without the text


@dataclass(frozen=True)
class EngineSettings:
    """Every threshold of the engine. These defaults are the defaults used everywhere."""

    # Copy tier
    shingle_size: int = 3  # words per shingle
    lsh_rows: int = 2  # MinHash slots per LSH band (128 / rows bands)
    copy_min_jaccard: float = 0.25  # estimated Jaccard of the body shingle sets ...
    copy_min_containment: float = 0.6  # ... and containment of the smaller set (truncated copies)
    copy_min_shingles: int = 5  # shorter bodies are never called copies
    # Story tier: how an article's salient terms are weighted (the story model's weights are in .story_model)
    title_weight: float = 2.0  # extra term count for each title occurrence
    lead_paragraphs: int = 2
    lead_weight: float = 1.0  # extra term count for each occurrence in the lead
    phrase_weight: float = 1.0  # count for a multiword capitalised name ("Zhao Leji")
    word_group: float = 1.0  # share of the similarity carried by content words ...
    name_group: float = 1.0  # ... by proper names ...
    number_group: float = 1.0  # ... and by numbers and years
    max_words: int = 60  # salient terms kept per kind and article
    max_names: int = 30
    max_numbers: int = 15
    year_idf: float = 12.0  # weight of a year: it pins an event in time like a rare name
    number_idf: float = 6.0  # weight of any other number (a toll, a score, an amount)
    # Story tier: which stories are scored
    candidate_terms: int = 15  # an article's heaviest terms used to look up candidate stories
    max_candidates: int = 8  # candidate stories found through shared terms
    posting_limit: int = 200  # stories remembered per term for candidate lookup (most recent)
    semantic_candidates: int = 8  # stories nearest by the semantic vector, scored beside the term candidates
    semantic_window: int = 4096  # ... looked for among this many most recently founded stories
    max_quiet_days: float = 30.0  # a story quiet this long before (or after) an article is not a candidate at all
    # Story tier: settling (Engine.settle)
    settle_hours: float = 72.0  # stories active this recently (by the newest publication time seen) are revisited
    settle_articles: int = 400  # without dates: the stories of this many latest articles are revisited


@dataclass(frozen=True)
class Merge:
    """Settling found two stories to be one event: `absorbed` joined `survivor` (the one with more members, ties
    to the older), and its id now stands for the survivor's."""

    survivor: str
    absorbed: str
    score: float
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Move:
    """Settling moved an article, with its wire copies (which follow their original), to a story whose evidence
    now points to it more clearly than its own."""

    article_ids: tuple[str, ...]  # the article first, then its copies
    from_story: str
    to_story: str
    score: float
    evidence: dict[str, Any]


Change = Merge | Move
