"""The `wiredesk` command line (``main``), feed management and OPML (``feeds``), the engine over a JSONL corpus
(``cluster``), progress bars (``progress``).

Its command names and outputs are a public interface (README, "Commands")."""

from daemon.cli.main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
