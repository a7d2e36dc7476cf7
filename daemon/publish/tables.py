"""Tables for people at a terminal (rich); the --json options give the same data to scripts."""

from __future__ import annotations

import sys
from datetime import datetime

from rich.console import Console
from rich.table import Table

from daemon.publish.select import attribution, outlet_name, story_outlets, to_digest_story
from daemon.publish.why import explain
from storage.records import StoredChange, StoryView


def console() -> Console:
    """The terminal's width on a terminal; wide enough not to squash columns when piped to a file or a pager."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def stories_table(
    stories: list[StoryView],
    title: str,
    show_members: bool = False,
    *,
    preferred: tuple[str, ...] = (),
    outlets: dict[str, str] | None = None,
) -> None:
    """Stories as rows: articles, copies and outlets counted as the digest counts them (one outlet per publisher,
    named by ``outlets`` ([outlets]) else by its feed's title; ``preferred`` puts the preferred one first)."""
    out = console()
    table = Table(title=title, show_lines=show_members)
    table.add_column("story", style="cyan", no_wrap=True)
    table.add_column("headline")
    table.add_column("articles", justify="right")
    table.add_column("copies", justify="right")
    table.add_column("outlets")
    if show_members:
        table.add_column("members (copy of)")
    table.add_column("updated", no_wrap=True)
    for s in stories:
        digest = to_digest_story(s, preferred, outlets=outlets) if s.members else None
        row = [
            s.id[:12],
            s.title,
            str(len(digest.sources) if digest else 0),
            str(digest.copies if digest else 0),
            ", ".join(story_outlets(s, preferred, outlets)),
        ]
        if show_members:
            row.append(
                "\n".join(f"{m.key}" + (f" (copy of {m.copy_of_key})" if m.copy_of_key else "") for m in s.members)
            )
        row.append(_when(s.updated))
        table.add_row(*row)
    out.print(table)


def story_detail(story: StoryView, *, preferred: tuple[str, ...] = (), outlets: dict[str, str] | None = None) -> None:
    out = console()
    if story.alias is not None:
        out.print(merged_line(story), markup=False)
    out.print(f"[bold]{story.title}[/bold]")
    names = story_outlets(story, preferred, outlets)
    out.print(
        f"story {story.id}  ({story.uuid})  published {_when(story.published)}  updated {_when(story.updated)}  outlets: {', '.join(names)}"
    )
    table = Table(show_lines=True)
    table.add_column("article", style="cyan")
    table.add_column("outlet / headline")
    table.add_column("published", no_wrap=True)
    table.add_column("score", justify="right")
    table.add_column("why it joined")
    for m in story.members:
        outlet = outlet_name(m, attribution(m)[0], outlets)
        feeds = f" (feeds {', '.join(m.feeds)})" if len(m.feeds) > 1 else ""
        table.add_row(
            m.key,
            f"{outlet}{feeds}\n{m.title}",
            _when(m.published),
            f"{m.score:.3f}",
            explain(m.evidence, m.copy_of_key),
        )
    out.print(table)
    if story.changes:
        history = Table(title="settled: merges and moves", show_lines=True)
        history.add_column("when", no_wrap=True)
        history.add_column("what")
        history.add_column("score", justify="right")
        history.add_column("why")
        for change in story.changes:
            history.add_row(
                _when(change.at), change_words(change, story.id), f"{change.score:.3f}", why_changed(change)
            )
        out.print(history)


def merged_line(story: StoryView) -> str:
    """The one line that says a story asked for by an old id was merged into this one."""
    when = next((c.at for c in reversed(story.changes) if c.kind == "merge" and c.from_story == story.alias), None)
    at = f" on {_when(when)}" if when else ""
    return f"story {story.alias} was merged into story {story.id}{at}; showing {story.id}"


def _articles(change: StoredChange) -> str:
    keys = change.article_keys or tuple(str(a) for a in change.article_ids)
    titles = change.article_titles or ("",) * len(keys)
    if not keys:
        return "no article"
    first = f"article {keys[0]}" + (f" ({titles[0]!r})" if titles[0] else "")
    if change.kind == "move":
        more = len(keys) - 1
        return first + (f" with its {more} {'copy' if more == 1 else 'copies'}" if more else "")
    return (
        f"{len(keys)} {'article' if len(keys) == 1 else 'articles'}: "
        + ", ".join(keys[:8])
        + (", ..." if len(keys) > 8 else "")
    )


def change_words(change: StoredChange, story_id: str) -> str:
    """What a merge or a move did, told from the story ``story_id`` (or a story merged into it)."""
    if change.kind == "merge":
        if change.to_story == story_id:
            return f"story {change.from_story} merged into this one ({_articles(change)})"
        return f"story {change.from_story} merged into story {change.to_story} ({_articles(change)})"
    if change.to_story == story_id:
        return f"{_articles(change)} moved here from story {change.from_story}"
    if change.from_story == story_id:
        return f"{_articles(change)} moved out to story {change.to_story}"
    return f"{_articles(change)} moved from story {change.from_story} to story {change.to_story}"


def why_changed(change: StoredChange) -> str:
    """The evidence of a merge or a move in words (whatever keys the engine recorded)."""
    evidence = change.evidence
    for key in ("explanation", "reason", "why"):
        if isinstance(evidence.get(key), str) and evidence[key]:
            return str(evidence[key])
    if isinstance(evidence.get("features"), dict) and evidence["features"]:
        return explain(evidence, None)
    numbers = [
        f"{k.replace('_', ' ')} {v:.2f}"
        for k, v in evidence.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    return ", ".join(numbers) or "no evidence recorded"
