"""Were the stored story decisions taken on up-to-date state? Compare them with one fresh engine fed the same stream.

Several workers decide one article at a time, in one sequence (memberships.seq). If every worker caught up with the
others' decisions before taking its own, the stored stories and copies are exactly those of a single engine that
receives the articles in that sequence. Used by tests/test_workers.py and benchmarks/workers.py.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from daemon.engine import Document, Engine


def stored_and_replayed(database_url: str, embedder=None) -> tuple[list, list]:
    """(stored, replayed): each a sorted list of stories, a story being the sorted (article id, copy_of) pairs.
    `embedder`: the semantic model the deciding processes used (None: they decided on the lexical signals)."""
    engine = sa.create_engine(database_url)
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "select a.id, a.title, a.text, a.published, a.source, m.story_id, m.copy_of from memberships m "
                "join articles a on a.id = m.article_id order by m.seq"
            )
        ).all()
    engine.dispose()
    fresh = Engine(embedder=embedder)
    stored: dict[str, list] = {}
    replayed: dict[str, list] = {}
    for art, title, text, published, source, story, copy_of in rows:
        if isinstance(published, str):  # SQLite hands back the stored text
            published = datetime.fromisoformat(published)
        if published is not None and published.tzinfo is None:
            published = published.replace(tzinfo=timezone.utc)
        a = fresh.add(Document(id=str(art), title=title, text=text, published=published, source=source))
        stored.setdefault(story, []).append((str(art), str(copy_of) if copy_of else None))
        replayed.setdefault(a.story_id, []).append((a.article_id, a.copy_of))
    norm = lambda groups: sorted(sorted(g) for g in groups.values())  # noqa: E731
    return norm(stored), norm(replayed)
