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
    if evidence.get("founder") and "best_probability" in evidence:
        parts.append(f"founded the story (nearest story {float(evidence['best_probability']):.0%} likely the same)")
    return "\n".join(p for p in parts if p) or "founded the story"


def _term_label(term: str) -> str:
    return term.split(":", 1)[-1].title() if term.startswith("e:") else term.split(":", 1)[-1]


def _hours(h: float) -> str:
    h = abs(h)
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.0f} h" if h < 48 else f"{h / 24:.0f} days"


def _decision_words(evidence: dict, features: dict) -> str:
    """ "same event wording 0.71, shared names Zhao Leji, Pyongyang; 2 h apart; 98 % likely (semantic model);
    most weight: same wording +4.5, ..." from a learned decision's evidence."""
    from daemon.engine.decision import FEATURES

    said = dict(FEATURES)
    value = {k: v[0] for k, v in features.items() if isinstance(v, (list, tuple)) and len(v) == 2}
    first: list[str] = []
    if "sem_mean" in value:
        first.append(f"same event wording {value['sem_mean']:.2f}")
    if "lex" in value:
        first.append(f"same terms {value['lex']:.2f}")
    terms = evidence.get("shared_terms") or []
    names = [_term_label(t[0]) for t in terms if isinstance(t, (list, tuple)) and str(t[0]).startswith("e:")][:4]
    words = [_term_label(t[0]) for t in terms if isinstance(t, (list, tuple)) and not str(t[0]).startswith("e:")][:4]
    if names:
        first.append("shared names " + ", ".join(names))
    if words:
        first.append("shared words " + ", ".join(words))
    line = ", ".join(first)
    if isinstance(evidence.get("hours_from_newest"), (int, float)):
        line += f"; {_hours(evidence['hours_from_newest'])} from the story's newest article"
    p = evidence.get("probability")
    if isinstance(p, (int, float)):
        line += f"; {p:.0%} likely the same story ({evidence.get('model', 'story')} model)"
    by = evidence.get("chosen_by")
    if isinstance(by, str) and isinstance(evidence.get("passed"), int):
        line += f"; of {evidence['passed']} stories that passed, the nearest by {said.get(by, by)}"
    shares = sorted(
        (
            (v[1], k)
            for k, v in features.items()
            if k != "bias" and isinstance(v, (list, tuple)) and len(v) == 2 and abs(v[1]) >= 0.05
        ),
        key=lambda x: -abs(x[0]),
    )[:4]
    if shares:
        line += "\nweighed most: " + ", ".join(f"{said.get(k, k)} {c:+.1f}" for c, k in shares)
    return line
