"""Helper processes end with the wiredesk process that started them, however it ends (SIGKILL included).

Why helpers would otherwise outlive a killed `poll --once` or `run`: multiprocessing's fork server exits when every
holder of its "alive" pipe has closed it, and its resource tracker when every holder of the tracker's pipe has; but
each worker holds both pipes (so that it could start processes of its own), and a worker waits on its call queue,
whose writing end it also holds, so nothing ever reaches end-of-file. Ending the workers when the main process dies
is enough: the fork server and the resource tracker then see their pipes close and exit on their own, the tracker
after cleaning up what the workers left.

A worker calls :func:`die_with_parent` first thing, from its pool's initializer. It watches the pipe multiprocessing
gives every child to see its parent (``multiprocessing.parent_process().sentinel``: readable once the parent process
is gone) and, on Linux, also asks the kernel for SIGKILL when its operating-system parent ends (``PR_SET_PDEATHSIG``)
where that parent is a fork server. Not for a child the main process started directly: the kernel sends that signal
when the *thread* that started the child ends, and the pool may be started from a short-lived thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent (thread) ends; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(sentinel: int) -> None:
    from multiprocessing.connection import wait

    try:
        wait([sentinel])
    except (OSError, ValueError):
        pass  # the descriptor is unusable: the parent is unknowable, so treat it as gone
    os._exit(1)  # at once: the work in hand belongs to a process that no longer exists


def die_with_parent() -> None:
    """End this worker process as soon as the process that started it ends."""
    parent = multiprocessing.parent_process()
    if parent is None:  # not a multiprocessing child: nothing to follow
        return
    os_parent = os.getppid()
    # forked by a fork server (single-threaded, alive as long as it serves): die with it too; if it already ended
    # before the request took effect, this process has been handed to another parent
    if os_parent != parent.pid and _parent_death_signal(signal.SIGKILL) and os.getppid() != os_parent:
        os._exit(1)
    sentinel = getattr(parent, "sentinel", None)
    if sentinel is not None:
        threading.Thread(target=_watch, args=(sentinel,), name="wiredesk-parent-watch", daemon=True).start()
