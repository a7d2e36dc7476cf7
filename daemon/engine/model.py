"""Data passed into and out of the engine."""

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
    # Story tier
    cohesion_prior: float = 0.35  # assumed similarity between members of a story too young to tell
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
    candidate_terms: int = 15  # an article's heaviest terms used to look up candidate stories
    max_candidates: int = 8  # candidate stories verified against their centroid
    posting_limit: int = 200  # stories remembered per term for candidate lookup (most recent)
    time_window_hours: float = 48.0  # a story is a candidate only for articles published this close to its span
    # (the time features of the decision weigh the gap within it)
    semantic_candidates: int = 8  # stories nearest by the semantic vector, verified beside the term candidates
    semantic_window: int = 4096  # ... looked for among this many most recently founded stories
    anchor_names: int = 2  # a story's leading names (heaviest in its centroid) ...
    anchor_free_similarity: float = 0.45  # ... one of which an article must name, unless it is this similar
    anchor_free_semantic: float = 0.6  # ... or its semantic cosine to the story's mean is this high
