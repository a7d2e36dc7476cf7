"""numpy's OpenBLAS thread count: limited for a worker process, and kept to one thread for the decision's small
matrix-vector products.

A product of a few thousand rows by one vector takes a fraction of a millisecond on one core; handed to every BLAS
thread it costs more in waking them (milliseconds on a busy machine) than in arithmetic, and numpy's own loop
(einsum) is about twice as slow as single-threaded BLAS. The thread count is process-wide, so :func:`matvec` sets it
to one for the product and puts it back.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable

import numpy as np

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_found: tuple[Callable[[int], None], Callable[[], int]] | None | bool = False  # False: not looked for yet


def _openblas() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    """(set threads, get threads) of the OpenBLAS numpy uses, or None (another BLAS, or not found)."""
    global _found
    if _found is not False:
        return _found  # type: ignore[return-value]
    _found = None
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as fh:
            libs = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", fh.read())))
    except OSError:
        return None
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(lib, name, None)
            getter = getattr(lib, name.replace("_set_", "_get_"), None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                _found = (lambda n, f=setter: f(ctypes.c_int(n))), getter
                return _found
    return None


def limit_threads(threads: int) -> bool:
    """Best effort: numpy's OpenBLAS uses at most `threads` threads in this process (True when it could be set)."""
    fns = _openblas()
    if fns is None:
        return False
    fns[0](threads)
    return True


def matvec(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """a @ v for a float32 matrix of up to a few thousand rows, on one thread."""
    fns = _openblas()
    out: np.ndarray
    if fns is None:
        out = np.einsum("ij,j->i", a, v)
        return out
    set_threads, get_threads = fns
    n = get_threads()
    if n == 1:
        out = a @ v
        return out
    set_threads(1)
    try:
        out = a @ v
    finally:
        set_threads(n)
    return out
