"""The story decision: a small logistic model over several similarities between an article and a story.

After Miranda et al. (EMNLP 2018, "Multilingual clustering of streaming news"): each candidate story is scored
from lexical cosines per kind of term, the semantic (sentence-embedding) cosines to the story's mean and to its
nearest member, shared leading names, Gaussian time features on the gaps to the story's newest, oldest and mean
publication times, the story's size and whether it already has this outlet. A candidate may be joined when its
probability passes its model's threshold; when none does, the article founds a new story. Which of several passing
candidates is joined is each model's CHOOSE_BY: the most likely one, or the nearest by one feature. The
probability says whether an article belongs to a story; for headlines it is a poor guide to which of two
passing stories it belongs to. A young fragment of a large story wins on its nearest member (a headline
worded like one of its few members), so the story splits in two and both halves keep growing; the story
nearest in meaning to its whole (the semantic cosine to its mean) does not split it.

Four models share these features, with weights and a threshold each (MODELS): "semantic" for an article with a
body, "semantic_short" for a headline or a one-line summary (a body under SHORT_SHINGLES shingles: a few words
carry all its evidence, so they weigh differently), and "lexical" and "lexical_short", without the semantic
features, where the article or the story has no semantic vector (no model installed, or stories stored before
it was).

The weights are fitted, not set by hand:

    .venv/bin/python benchmarks/fit_story_model.py

reads the development sets in ../shared/datasets, fits the weights deterministically, chooses the thresholds and
rankings, and prints this module's MODELS and CHOOSE_BY; tests/test_story_model.py checks that it reproduces them.
"""

from __future__ import annotations

import math

import numpy as np

# name, what it means to a reader (used by `wiredesk story`)
FEATURES: tuple[tuple[str, str], ...] = (
    ("bias", "prior"),
    ("lex", "same wording (all terms)"),
    ("words", "same words"),
    ("names", "same names"),
    ("numbers", "same numbers"),
    ("sem_mean", "same event wording"),
    ("sem_max", "closest member's wording"),
    ("sem_avg", "wording of the average member"),
    ("lex_x_sem", "wording and terms together"),
    ("anchor_miss", "misses the story's leading names"),
    ("log_size", "story size"),
    ("same_outlet", "outlet already in the story"),
    ("far_newest", "far in time from the newest member"),
    ("far_oldest", "far in time from the oldest member"),
    ("far_mean", "far in time from the story's mean time"),
)
NAMES = tuple(n for n, _ in FEATURES)
INDEX = {n: i for i, n in enumerate(NAMES)}
N_FEATURES = len(FEATURES)

TIME_SIGMA = 3 * 86400.0  # Gaussian time features, seconds (Miranda et al.: 3 days)
SHORT_SHINGLES = 12  # a body with fewer distinct shingles (a one-line summary, or none) is short
NEAREST_MEMBERS = 64  # the nearest member is looked for among a story's latest members

# Fitted by benchmarks/fit_story_model.py (see the module documentation); do not edit by hand.
MODELS: dict[str, tuple[np.ndarray, float]] = {
    "lexical_short": (
        np.array(
            [
                -1.5700807495535078,  # bias
                -2.246370995673063,  # lex
                6.889545220924352,  # words
                4.741836983963397,  # names
                1.1519992692679573,  # numbers
                0.0,  # sem_mean
                0.0,  # sem_max
                0.0,  # sem_avg
                0.0,  # lex_x_sem
                1.5106669928414274,  # anchor_miss
                -0.4590594090185329,  # log_size
                0.4224224877846534,  # same_outlet
                6.968205465547343,  # far_newest
                99.88243318160288,  # far_oldest
                28.087363615148917,  # far_mean
            ]
        ),
        0.3,
    ),
    "lexical": (
        np.array(
            [
                -5.360815955783575,  # bias
                18.570731103822748,  # lex
                -11.287470679772728,  # words
                1.202785442110461,  # names
                1.9550828627480694,  # numbers
                0.0,  # sem_mean
                0.0,  # sem_max
                0.0,  # sem_avg
                0.0,  # lex_x_sem
                4.0953590640814665,  # anchor_miss
                0.28682810182215807,  # log_size
                0.0,  # same_outlet
                1.902693796703571,  # far_newest
                37.855988218831364,  # far_oldest
                12.415321886390403,  # far_mean
            ]
        ),
        0.2,
    ),
    "semantic_short": (
        np.array(
            [
                -7.320637222809805,  # bias
                5.73798623517831,  # lex
                1.8876737930858525,  # words
                1.0570841177927393,  # names
                1.064273756911556,  # numbers
                10.375685138595125,  # sem_mean
                6.078597408198593,  # sem_max
                -5.48466279413321,  # sem_avg
                -7.988760476182029,  # lex_x_sem
                0.6962853387732741,  # anchor_miss
                -0.6114201579544921,  # log_size
                0.41834771010189786,  # same_outlet
                8.417882856402738,  # far_newest
                75.48007828314246,  # far_oldest
                25.867492134253258,  # far_mean
            ]
        ),
        0.05,
    ),
    "semantic": (
        np.array(
            [
                -2.5503526758420954,  # bias
                8.393411794784733,  # lex
                -12.962653298478699,  # words
                -0.5212107348082242,  # names
                1.7013071081410696,  # numbers
                6.4395724100061615,  # sem_mean
                4.049161587976995,  # sem_max
                -10.580469535019517,  # sem_avg
                13.29074968165378,  # lex_x_sem
                2.145996676297499,  # anchor_miss
                -0.8713981884916392,  # log_size
                0.0,  # same_outlet
                2.1852058339030607,  # far_newest
                39.61711385263203,  # far_oldest
                13.130688712668185,  # far_mean
            ]
        ),
        0.2,
    ),
}

# Which passing candidate each model joins: the most likely ("probability"), or the nearest by one feature (a
# column of FEATURES). Chosen by benchmarks/fit_story_model.py with the thresholds; do not edit by hand.
CHOOSE_BY: dict[str, str] = {
    "lexical_short": "lex",
    "lexical": "lex",
    "semantic_short": "sem_mean",
    "semantic": "probability",
}


def model_name(semantic: bool, short: bool) -> str:
    return ("semantic" if semantic else "lexical") + ("_short" if short else "")


def far(gap_seconds: float) -> float:
    """1 - a Gaussian of the gap (sigma TIME_SIGMA): 0 for articles published together, towards 1 days apart.

    Measured from 0 rather than as closeness, so that a dated article close to a story weighs like an undated
    one: being published on the same day is no evidence of being the same event, being far apart is evidence
    against it."""
    return -math.expm1(-0.5 * (gap_seconds / TIME_SIGMA) ** 2)


def probabilities(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """P(same story) for each row of the feature matrix `x`."""
    z = x @ weights
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))
    return out


def contributions(row: np.ndarray, weights: np.ndarray) -> dict[str, list[float]]:
    """Every feature's value and its share of the score (weight x value), for the evidence; features that
    weigh nothing in this model are left out."""
    return {n: [round(float(v), 4), round(float(v * c), 4)] for n, v, c in zip(NAMES, row, weights) if c}
