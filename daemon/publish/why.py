"""Why an article is in its story, in words: a membership's stored evidence as `wiredesk story` and the story pages
say it."""

from __future__ import annotations


def explain(evidence: dict, copy_of: str | None) -> str:
    """A person-readable line or two from the stored evidence (whatever keys the engine recorded)."""
    parts: list[str] = []
    if copy_of:
        copy = evidence.get("copy") or {}
        j = copy.get("jaccard")
        c = copy.get("containment")
        bits = [f"copy of {copy_of}"]
        if j is not None:
            bits.append(f"Jaccard {j:.2f}")
        if c is not None:
            bits.append(f"containment {c:.2f}")
        parts.append(", ".join(bits))
    reason = evidence.get("reason")
    if reason:
        parts.append(str(reason))
    features = evidence.get("features")
    if isinstance(features, dict):
        parts.append(_decision_words(evidence, features))
    else:
        terms = evidence.get("shared_terms") or evidence.get("terms")
        if terms:
            if isinstance(terms, dict):
                weights = terms
                terms = sorted(weights, key=lambda t: -float(weights[t]))
            names = [t[0] if isinstance(t, (list, tuple)) else str(t) for t in terms][:10]
            parts.append("shared: " + ", ".join(names))
        for key in ("similarity", "centroid_similarity", "title_similarity", "entity_overlap"):
            if key in evidence and isinstance(evidence[key], (int, float)):
                parts.append(f"{key.replace('_', ' ')} {evidence[key]:.2f}")
    if evidence.get("founder") and isinstance(evidence.get("explanation"), str):
        parts.append(f"founded the story; nearest story {evidence.get('nearest_story')}: {evidence['explanation']}")
    elif evidence.get("founder") and "best_probability" in evidence:
        parts.append(f"founded the story (nearest story {float(evidence['best_probability']):.0%} likely the same)")
    return "\n".join(p for p in parts if p) or "founded the story"


def _term_label(term: str) -> str:
    return term.split(":", 1)[-1].title() if term.startswith("e:") else term.split(":", 1)[-1]


def _hours(h: float) -> str:
    h = abs(h)
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.0f} h" if h < 48 else f"{h / 24:.0f} days"


def _decision_words(evidence: dict, features: dict) -> str:
    """ "joined: the same event in other words +0.71, the same words, names and numbers +0.35 (1.06, needs 0.80);
    shared names Zhao Leji, Pyongyang; 2 h from the story's newest article" from a story decision's evidence (an
    older decision's evidence, stored before the story model read this way, is shown by its feature shares)."""
    from daemon.engine.story_model import MEANING

    terms = evidence.get("shared_terms") or []
    names = [_term_label(t[0]) for t in terms if isinstance(t, (list, tuple)) and str(t[0]).startswith("e:")][:4]
    words = [_term_label(t[0]) for t in terms if isinstance(t, (list, tuple)) and not str(t[0]).startswith("e:")][:4]
    explanation = evidence.get("explanation")
    if isinstance(explanation, str):
        line = explanation
    else:
        shares = sorted(
            (
                (v[1], k)
                for k, v in features.items()
                if k != "bias" and isinstance(v, (list, tuple)) and len(v) == 2 and abs(v[1]) >= 0.05
            ),
            key=lambda x: -abs(x[0]),
        )[:4]
        line = "weighed most: " + ", ".join(f"{MEANING.get(k, k.replace('_', ' '))} {c:+.1f}" for c, k in shares)
        p = evidence.get("probability")
        if isinstance(p, (int, float)):
            line += f"; {p:.0%} likely the same story ({evidence.get('model', 'story')} model)"
    extra = []
    if names:
        extra.append("shared names " + ", ".join(names))
    if words:
        extra.append("shared words " + ", ".join(words))
    if isinstance(evidence.get("hours_from_newest"), (int, float)):
        extra.append(f"{_hours(evidence['hours_from_newest'])} from the story's newest article")
    return line + ("\n" + "; ".join(extra) if extra else "")
