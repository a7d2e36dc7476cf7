"""Writing a command's document (a digest, an OPML export) to a file or to standard output."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path

from daemon.errors import InputError

_NOT_REGULAR = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def check_output_path(output: str) -> Path:
    """Refuse an output path that cannot be written before any work is done: a folder, a missing folder, and anything
    that is not a regular file (a symbolic link, a device, a FIFO, a socket), which `-o` would replace."""
    path = Path(output)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from exc
    if mode is not None and stat.S_ISDIR(mode):
        raise InputError(f"cannot write {output}: it is a folder (give a file name, e.g. {path / 'feeds.opml'})")
    for test, kind in _NOT_REGULAR:
        if mode is not None and test(mode):
            raise InputError(
                f"cannot write {output}: it is {kind}, not a regular file; give the path of a file to create or replace"
            )
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {output}: the folder {parent} does not exist")
    return path


def _file_mode(path: Path) -> int:
    """The replaced file's permissions, else those a new file gets (0666 less the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_output(body: bytes, output: str | None) -> None:
    """``body`` to the file ``output`` (whole or not at all: written to a new file beside it, then renamed over it,
    only over a regular file or onto a new path), else to standard output."""
    if not output:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return
    path = check_output_path(output)
    tmp: str | None = None
    try:
        # a new file of its own (O_EXCL, a random name), beside the target so that the rename stays on one disk
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
            os.fchmod(fh.fileno(), _file_mode(path))
        check_output_path(output)  # still a regular file or nothing: not swapped for a device or a link meanwhile
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
