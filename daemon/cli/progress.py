"""Progress for long work: a live bar on a terminal, a line per stage in logs otherwise."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from daemon.pipeline import Progress

log = logging.getLogger("wiredesk")

STAGES = {"feeds": "fetching feeds", "articles": "finding article texts", "stories": "deciding stories"}


class RichProgress(Progress):
    def __init__(self, bar):
        self.bar = bar
        self.tasks: dict[str, int] = {}

    def start(self, stage: str, total: int) -> None:
        self.tasks[stage] = self.bar.add_task(STAGES.get(stage, stage), total=total)

    def advance(self, stage: str, detail: str = "") -> None:
        if stage in self.tasks:
            self.bar.advance(self.tasks[stage])

    def done(self, stage: str) -> None:
        if stage in self.tasks:
            task = self.tasks[stage]
            self.bar.update(task, completed=self.bar.tasks[task].total)


class LogProgress(Progress):
    """Not a terminal: one line when a stage starts and one when it ends."""

    def __init__(self):
        self.totals: dict[str, int] = {}

    def start(self, stage: str, total: int) -> None:
        self.totals[stage] = total
        log.info("%s: %d to do", STAGES.get(stage, stage), total)

    def done(self, stage: str) -> None:
        log.info("%s: done (%d)", STAGES.get(stage, stage), self.totals.get(stage, 0))


@contextmanager
def console_progress() -> Iterator[Progress]:
    if not sys.stderr.isatty():
        yield LogProgress()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        yield RichProgress(bar)
