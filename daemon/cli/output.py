"""Writing a command's document (a digest, an OPML export) to a file or to standard output."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from daemon.errors import InputError


def check_output_path(output: str) -> Path:
    """Refuse an output path that cannot be written before any work is done: a folder, a missing folder."""
    path = Path(output)
    if path.is_dir():
        raise InputError(f"cannot write {output}: it is a folder (give a file name, e.g. {path / 'feeds.opml'})")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {output}: the folder {parent} does not exist")
    return path


def write_output(body: bytes, output: str | None) -> None:
    """``body`` to the file ``output`` (whole or not at all: written aside, then renamed), else to standard output."""
    if not output:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return
    path = check_output_path(output)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # beside it, so that the rename stays on one disk
    try:
        tmp.write_bytes(body)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from exc
