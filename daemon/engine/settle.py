"""Settling: the young stories revisited, so that the stories do not depend on the order the articles came in.

An article is placed at once, on what was known when it came. Two write-ups of one event may have founded two
stories before either had company; an article that joined a story narrowly may fit a story founded after it better.
A settling pass looks again at what changed since the last pass, among the stories active recently
(``settle_hours`` of the stream's clock; without dates, the stories of the latest ``settle_articles`` articles):

1. **merges**: each story that grew or was founded since the last pass is scored against the young stories nearest
   to it (the story model's features between the two stories' means and term sums, against MERGE_THRESHOLD); the
   best pair that passes becomes one story, and the survivor is looked at again. The story with more members
   survives (ties: the older); the other's id becomes an alias of it.
2. **moves**: each article that joined its story narrowly (within DOUBT of the threshold) and whose story is still
   young is scored again as if it came now, against its own story without it and the young stories near it; it
   moves, with its wire copies, when another story passes the threshold and beats its own by MOVE_MARGIN. A story
   left empty is reported as merged into the story its last article went to, so its id redirects too.

A pass costs what changed since the last one, not the size of the young set. Every change is applied to the engine
and returned as a record (:class:`.types.Merge`, :class:`.types.Move`) with its evidence, for the caller to store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import story_model
from .types import Change, Merge, Move

if TYPE_CHECKING:
    from .core import Engine

DOUBT = 0.15  # an article that joined with less margin than this over the threshold is looked at again
MOVE_MARGIN = 0.05  # a move needs the other story to score this much above the article's own
CHANGED_NEAR = 0.3  # a changed story this near in meaning to a narrow member makes the member looked at again
NEAREST = 8  # young stories scored against a story or an article: the nearest by meaning, and by shared terms


def young_stories(engine: Engine, now: float | None) -> set[int]:
    """The stories a pass may touch: alive, and active within settle_hours of `now` (dated) or holding one of the
    latest settle_articles articles (undated). Without `now` (a corpus replayed after the fact, whose stories were
    all young once) every dated story may be touched; what a pass looks at is still only what changed since the
    last one."""
    s = engine.settings
    first_recent = max(0, len(engine._ids) - s.settle_articles)
    since = None if now is None else now - s.settle_hours * 3600.0
    out = set()
    for st in engine._stories[engine._settle_from :]:
        if st.merged_into is not None or not st.members:
            continue
        if st.last is not None:
            if since is None or st.last >= since:
                out.add(st.index)
        elif st.members[-1] >= first_recent:
            out.add(st.index)
    # Stories older than every young one are never young again: later passes start after them.
    engine._settle_from = min(out) if out else len(engine._stories)
    return out


def settle(engine: Engine, now: float | None) -> list[Change]:
    young = young_stories(engine, now)
    changes: list[Change] = []
    changes += _merges(engine, young)
    changes += _moves(engine, young)
    engine._touched.clear()
    forget_old(engine, now)
    return changes


def _near(engine: Engine, young: list[int], unit: np.ndarray | None, terms: list[str], exclude: int) -> list[int]:
    """Of the young stories, those nearest to a story or an article: by its mean vector `unit`, and under its
    heaviest `terms` in the candidate lists."""
    out: list[int] = []
    if unit is not None and young:
        sims = engine._story_unit[young] @ unit
        for j in np.argsort(-sims, kind="stable")[: NEAREST + 1].tolist():
            if young[j] != exclude and sims[j] > 0.0:
                out.append(young[j])
    ys = set(young)
    for st in engine._postings.top(terms[: engine.settings.candidate_terms], NEAREST + 1):
        st = engine._resolve(st)
        if st in ys and st != exclude and st not in out:
            out.append(st)
    return out


def _story_terms(engine: Engine, st: int) -> np.ndarray:
    return np.array(engine._stories[st].terms, dtype=np.uint64)


def _is_short(engine: Engine, st: int) -> bool:
    members = [i for i in engine._stories[st].members if engine._group_of[i] == i]
    if not members:
        return False
    return float(np.mean(engine._sizes[members])) < story_model.SHORT_SHINGLES


# ---------------------------------------------------------------------------------------------------- merges


def _pair_model(engine: Engine, a: int, b: int) -> str:
    semantic = engine._stories[a].vec_count > 0 and engine._stories[b].vec_count > 0
    return story_model.model_name(semantic, _is_short(engine, a) or _is_short(engine, b))


def _pair(engine: Engine, a: int, b: int, a_tids: np.ndarray) -> np.ndarray:
    """The story model's features between stories `a` (its term ids `a_tids`) and `b`."""
    sa, sb = engine._stories[a], engine._stories[b]
    col = story_model.INDEX
    x = np.zeros(story_model.N_FEATURES)
    den = np.sqrt(sa.norm2 * sb.norm2)
    x[col["lex"]] = engine._book.dot(a, a_tids, b) / den if den > 0 else 0.0
    if sa.vec_count > 0 and sb.vec_count > 0:
        x[col["sem"]] = float(engine._story_unit[a] @ engine._story_unit[b])
    if sa.first is not None and sb.first is not None and sa.last is not None and sb.last is not None:
        gap = max(sa.first - sb.last, sb.first - sa.last, 0.0)
        reach = max(story_model.reach_seconds(sa.pace()), story_model.reach_seconds(sb.pace()))
        x[col["quiet"]] = story_model.quiet(gap, reach)
    # Each story's leading names looked for among the other's terms, the two shares missed averaged.
    b_tids = _story_terms(engine, b)
    missed = [engine._names_missed(a, b_tids), engine._names_missed(b, a_tids)]
    x[col["names_missed"]] = sum(missed) / 2.0
    return x


def _merges(engine: Engine, young: set[int]) -> list[Change]:
    changes: list[Change] = []
    stories = engine._stories
    queue = sorted(st for st in engine._touched if st in young)
    while queue:
        a = queue.pop(0)
        if stories[a].merged_into is not None or not stories[a].members or a not in young:
            continue
        tids = _story_terms(engine, a)
        names = engine._book.names
        heavy = []
        if len(tids):
            vals = engine._book.values(a, tids)[2]
            heavy = [names[t] for t in tids[np.argsort(-vals, kind="stable")].tolist()]
        unit = engine._story_unit[a] if stories[a].vec_count else None
        best: tuple[float, float, int, np.ndarray, str, float] | None = None  # margin, score, story, x, model, need
        for b in _near(engine, sorted(young), unit, heavy, a):
            name = _pair_model(engine, a, b)
            w = engine._models[name][0]
            need = engine._merge_threshold[name]
            if unit is not None and stories[b].vec_count:
                # The lexical cosine is at most 1: skip the pairs that could not pass even with it.
                sem = float(engine._story_unit[b] @ unit)
                if w[story_model.INDEX["sem"]] * sem + max(w[story_model.INDEX["lex"]], 0.0) < need:
                    continue
            x = _pair(engine, a, b, tids)
            score = float(story_model.scores(x[None, :], w)[0])
            if score >= need and (best is None or score - need > best[0]):
                best = (score - need, score, b, x, name, need)
        if best is None:
            continue
        _, score, b, x, name, need = best
        sa, sb = stories[a], stories[b]
        survivor, absorbed = (a, b) if (len(sa.members), -a) >= (len(sb.members), -b) else (b, a)
        features = story_model.contributions(x, engine._models[name][0])
        evidence: dict[str, Any] = {
            "score": round(score, 4),
            "threshold": need,
            "model": name,
            "features": features,
            "explanation": "merged: " + story_model.explain(features, score, need).split(": ", 1)[1],
            "sizes": [len(stories[survivor].members), len(stories[absorbed].members)],
        }
        changes.append(Merge(stories[survivor].id, stories[absorbed].id, round(score, 6), evidence))
        engine._merge(survivor, absorbed)
        young.discard(absorbed)
        queue.append(survivor)  # it has grown: it may now be one event with another young story
    return changes


# ----------------------------------------------------------------------------------------------------- moves


def _moves(engine: Engine, young: set[int]) -> list[Change]:
    changes: list[Change] = []
    stories = engine._stories
    col = story_model.INDEX
    ys = sorted(young)
    # Only a story that changed since the last pass can have become a better home: an article is looked at again
    # when one of those is near it in meaning (or, without vectors, at every pass).
    changed = [st for st in engine._touched if st in young]
    changed_units = engine._story_unit[changed] if changed else np.zeros((0, engine._story_unit.shape[1]))
    for i in sorted(engine._doubtful):
        own = engine._story_of[i]
        kept = engine._young.get(i)
        if own not in young or kept is None or engine._group_of[i] != i:
            if own not in young:
                engine._doubtful.discard(i)
            continue
        story = stories[own]
        if story.vectors < 2:
            continue  # a story of this article alone: merges, not moves, decide whether it joins another
        tids, w = kept
        names = engine._book.names
        terms = [names[t] for t in tids.tolist()]
        v = engine._vecs[i].astype(np.float32) if engine._vecs[i].any() else None
        if v is not None:
            near_change = changed_units @ v
            if not any(st != own and sim > CHANGED_NEAR for st, sim in zip(changed, near_change.tolist())):
                continue
        others = _near(engine, ys, v, terms, own)
        if not others:
            continue
        cands = [own, *others]
        c = len(cands)
        an = float(np.sqrt(w @ w))
        x = np.zeros((c, story_model.N_FEATURES))
        for r, st in enumerate(cands):
            vals = engine._book.values(st, tids)[2]
            dot = float(vals @ w)
            n2 = stories[st].norm2
            if r == 0:  # its own story without it
                dot, n2 = dot - an * an, n2 - 2 * dot + an * an
            x[r, col["lex"]] = dot / (np.sqrt(n2) * an) if n2 > 1e-12 and an > 0 else 0.0
        if v is not None:
            x[:, col["sem"]] = engine._story_unit[cands] @ v
            rest = engine._story_vsum[own] - v
            rn = float(np.sqrt(rest @ rest))
            x[0, col["sem"]] = float(rest @ v) / rn if rn > 1e-9 else 0.0
        x[:, col["names_missed"]] = [engine._names_missed(st, tids) for st in cands]
        ts = engine._times[i]
        if ts is not None:
            for r, st in enumerate(cands[1:], 1):
                o = stories[st]
                x[r, col["quiet"]] = story_model.quiet(o.gap(ts), story_model.reach_seconds(o.pace()))
        short = engine._sizes[i] < story_model.SHORT_SHINGLES
        models = [
            story_model.model_name(v is not None and stories[st].vec_count > (1 if r == 0 else 0), short)
            for r, st in enumerate(cands)
        ]
        score, need, used = engine._scores(x, models)
        margin = score - need
        r = 1 + int(np.argmax(margin[1:]))
        if margin[r] < 0 or score[r] < score[0] + MOVE_MARGIN:
            continue
        to = cands[r]
        group = [i] + [k for k in story.members if k != i and engine._group_of[k] == i]
        features = story_model.contributions(x[r], used[r])
        evidence: dict[str, Any] = {
            "score": round(float(score[r]), 4),
            "threshold": float(need[r]),
            "own_score": round(float(score[0]), 4),
            "model": models[r],
            "features": features,
            "own_features": story_model.contributions(x[0], used[0]),
            "explanation": (
                "moved: now "
                + story_model.explain(features, float(score[r]), float(need[r])).split(": ", 1)[1]
                + f"; its first story without it scores {float(score[0]):.2f}"
            ),
        }
        changes.append(
            Move(tuple(engine._ids[k] for k in group), story.id, stories[to].id, round(float(score[r]), 6), evidence)
        )
        engine._move(group, to)
        engine._doubtful.discard(i)
        if not story.members:
            changes.append(
                Merge(
                    stories[to].id,
                    story.id,
                    round(float(score[r]), 6),
                    {"explanation": "merged: its last article moved to this story", "emptied": True},
                )
            )
            engine._merge(to, own)
            young.discard(own)
            ys = sorted(young)
    return changes


def forget_old(engine: Engine, now: float | None) -> None:
    """Drop the kept terms of articles no pass will revisit (their stories are old), to bound memory."""
    s = engine.settings
    keep_from = len(engine._ids) - 2 * s.settle_articles
    since = None if now is None else now - 2 * s.settle_hours * 3600.0
    kept = engine._young
    for i in [k for k in kept if k < keep_from]:
        st = engine._stories[engine._story_of[i]]
        if st.last is None or since is None or st.last < since:
            del kept[i]
            engine._doubtful.discard(i)
