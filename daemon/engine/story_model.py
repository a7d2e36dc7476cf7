"""The story model: whether an article belongs to a story, and whether two stories are one event.

Everything the decision weighs is here, read top to bottom: the features, the weights keyed by feature name, the
thresholds, the data they were fitted on (named with hashes), and the decision rule.

The features describe the story as a whole, never one of its members (a member-by-member match chains one event
into the next through whichever article happens to be worded like the newcomer):

- ``sem``: the cosine between the article's sentence embedding and the story's mean embedding (the same event in
  other words);
- ``lex``: the cosine between the article's salient terms (words, names, numbers, weighted by rarity) and the sum
  of the story's (names and numbers tell similar events apart);
- ``quiet``: how long the story had been quiet when the article came, against the story's own pace: 0 for an
  article within the story's bursts, towards 1 for one many of its usual gaps later. Its weight is never positive:
  being far apart in time is evidence against one story, never for it;
- ``names_missed``: the share of the story's two leading names (its heaviest in the term sum) that the article does
  not name. Also never positive: two events in one place with one cast (a visit to Pyongyang, a delegation received
  there two days later) share most of their words and differ in who the story is about.

Plain cosines, not scaled by how alike a story's members are among themselves: a large, diffuse story (a topic
rather than an event) is harder to join than a tight one, not easier.

A story's pace is the mean gap between its dated members; its reach is ``max(REACH_MIN_HOURS, REACH_GAPS x
pace)``, so a story that comes in one burst stops reaching out a day or two after it, and a story that has been
coming in every few hours for weeks keeps reaching as far as its pace. Undated articles and stories have no
``quiet``.

The score is a weighted sum; an article joins the highest-scoring candidate story whose score passes its model's
threshold, else it founds a new story. Four models share the features: ``semantic`` for an article with a body,
``semantic_short`` for a headline or a one-line summary (a body under SHORT_SHINGLES shingles), ``lexical`` and
``lexical_short`` without ``sem`` (no sentence model installed, or a story stored before it was). Settling
(:mod:`.settle`) scores two stories with the same features, between their means and their term sums, against
MERGE_THRESHOLD.

The weights and thresholds are chosen on streams of the development sets (never a file's own grouped order):

    .venv/bin/python benchmarks/fit_story_model.py

prints this block, with the SHA-256 of each set it was fitted on; tests/test_story_model.py checks those hashes and
the rules the values must keep (never a positive weight for time or missing names).
"""

from __future__ import annotations

import math

import numpy as np

# name, what it says to a reader when it counts for (+) or against (-) a story (used by `wiredesk story`)
FEATURES: tuple[tuple[str, str], ...] = (
    ("sem", "the same event in other words"),
    ("lex", "the same words, names and numbers"),
    ("quiet", "the story had gone quiet"),
    ("names_missed", "names none of the story's leading names"),
)
NAMES = tuple(n for n, _ in FEATURES)
INDEX = {n: i for i, n in enumerate(NAMES)}
N_FEATURES = len(FEATURES)
MEANING = dict(FEATURES)

SHORT_SHINGLES = 12  # a body with fewer distinct shingles (a one-line summary, or none) is short
LEADING_NAMES = 2  # a story's leading names, for names_missed

# ---- fitted by benchmarks/fit_story_model.py; do not edit by hand -------------------------------------------------
FITTED_ON = {
    "allsides-dev.jsonl": "sha256:cfb44cd158ab6d2270cb46a2fd6e173ebb652f28e54d239ea63e4c61365b12a6",
    "ecbplus-dev.jsonl": "sha256:1332f150bd42045bcfefc07e2c680072ecf722b92cfbeaeb2a786321158c3ed3",
    "headlines-dev.jsonl": "sha256:a08bfb15ac6623d372b5f052174cc8e750c383398bccd9524b5c6f1e6cab4aae",
}
REACH_MIN_HOURS = 24.0
REACH_GAPS = 3.0
# model: (weights in the order of FEATURES, threshold)
MODELS: dict[str, tuple[tuple[float, ...], float]] = {
    "semantic": ((1.0, 1.3, -1.0, -0.5), 0.6),
    "semantic_short": ((1.0, 0.7, -0.5, 0.0), 0.4),
    "lexical": ((0.0, 1.0, -0.5, -0.3), 0.05),
    "lexical_short": ((0.0, 1.0, -0.5, 0.0), 0.35),
}
MERGE_THRESHOLD: dict[str, float] = {
    "semantic": 1.2,
    "semantic_short": 0.7,
    "lexical": 0.9,
    "lexical_short": 0.7,
}
# ---- end of the fitted block ------------------------------------------------------------------------------------


def model_name(semantic: bool, short: bool) -> str:
    return ("semantic" if semantic else "lexical") + ("_short" if short else "")


def reach_seconds(pace_seconds: float | None) -> float:
    """How far in time a story reaches, from the mean gap between its dated members (None: fewer than two)."""
    hours = REACH_MIN_HOURS if pace_seconds is None else max(REACH_MIN_HOURS, REACH_GAPS * pace_seconds / 3600.0)
    return hours * 3600.0


def quiet(gap_seconds: float, reach: float) -> float:
    """0 within a story's reach, rising to 1 several reaches away (1 - a Gaussian of gap / reach)."""
    if gap_seconds <= 0.0:
        return 0.0
    return -math.expm1(-0.5 * (gap_seconds / reach) ** 2)


def scores(x: np.ndarray, weights: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """The score of each row of the feature matrix `x`."""
    out: np.ndarray = x @ np.asarray(weights, dtype=np.float64)
    return out


def contributions(row: np.ndarray, weights: tuple[float, ...] | np.ndarray) -> dict[str, list[float]]:
    """Every feature's value and its share of the score (weight x value), for the evidence; features that weigh
    nothing in this model are left out."""
    return {n: [round(float(v), 4), round(float(v * c), 4)] for n, v, c in zip(NAMES, row, weights) if c}


def explain(features: dict[str, list[float]], score: float, threshold: float) -> str:
    """One line in plain words: which features decided, with their shares, e.g. "joined: the same event in other
    words +0.62, the same words, names and numbers +0.31, the story had gone quiet -0.05 (0.88, needs 0.80)"."""
    parts = [
        f"{MEANING.get(name, name)} {share:+.2f}"
        for name, (_value, share) in sorted(features.items(), key=lambda kv: -abs(kv[1][1]))
        if abs(share) >= 0.005
    ]
    verdict = "joined" if score >= threshold else "kept apart"
    return f"{verdict}: {', '.join(parts) or 'no shared evidence'} ({score:.2f}, needs {threshold:.2f})"
