"""Tables for people at a terminal (rich); the --json options give the same data to scripts."""

from __future__ import annotations

import sys
from datetime import datetime

from rich.console import Console
from rich.table import Table

from daemon.publish.select import attribution, outlet_name, story_outlets, to_digest_story
from daemon.publish.why import explain
from storage.records import StoryView


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
