"""One BLAS thread for the simulator's small linear algebra.

The banded Cholesky of a film (half bandwidth ~N) works on blocks of a few dozen rows; on
OpenBLAS's thread pool those small calls spend their time waiting for each other, and on a
loaded machine a 15 ms factorization then takes 50–100 ms (measured on 2 shared cores). The
circuit's solves are the same kind of work: GEMVs and GEMMs on an (N, N) conductance block of
N ≤ 256 and dense solves of a few hundred nodes, thousands of times per read (a full guarded
read of the N = 128 crossbar: 32.7 s with the default threads, 28.3 s with one, on 2 cores).
Both therefore ask for one thread while they factor and solve, for the calling thread only
(``openblas_set_num_threads_local``, OpenBLAS ≥ 0.3.27, in the OpenBLAS copies that NumPy and
SciPy ship).
Where that symbol is not found (another BLAS, an older OpenBLAS) nothing is changed: the
results are the same, only the speed differs. threadpoolctl does this for every BLAS; it is
used instead when it is installed (its limit holds for the whole process while it lasts: the
simulator's solves run one at a time, under the simulated bench's lock).
"""
from __future__ import annotations

import ctypes
import glob
import os
import threading
from typing import Any

import scipy


def _openblas_local_setters() -> list:
    """openblas_set_num_threads_local of the OpenBLAS copies NumPy and SciPy ship (each wheel
    bundles its own; both are already loaded, so dlopen returns the loaded copy)."""
    site = os.path.dirname(os.path.dirname(scipy.__file__))
    found = []
    for libs in ("scipy.libs", "numpy.libs"):
        for path in sorted(glob.glob(os.path.join(site, libs, "libscipy_openblas*.so*"))):
            try:
                fn = ctypes.CDLL(path).openblas_set_num_threads_local
            except (OSError, AttributeError):
                continue
            fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
            found.append(fn)
    return found


try:
    from threadpoolctl import ThreadpoolController  # type: ignore[import-not-found]
except ImportError:
    _controller = None
    _setters = _openblas_local_setters()
else:
    _controller = ThreadpoolController()
    _setters = []


class _SingleThread(threading.local):
    """The context of :func:`single_thread`: only the outermost of nested uses (a solve inside a
    step inside a reading) sets and restores the thread count."""

    depth = 0
    previous: list = []
    limit: Any = None

    def __enter__(self) -> None:
        if self.depth == 0:  # (counted once set: a failure here leaves nothing to undo)
            if _controller is not None:
                limit = _controller.limit(limits=1, user_api="blas")
                limit.__enter__()
                self.limit = limit
            else:
                self.previous = [set_local(1) for set_local in _setters]
        self.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth:
            return
        if self.limit is not None:
            limit, self.limit = self.limit, None
            limit.__exit__(None, None, None)
        else:
            for set_local, n in zip(_setters, self.previous):
                set_local(n)


_single = _SingleThread()


def single_thread() -> _SingleThread:
    """``with single_thread():`` one BLAS thread for the calling thread while the block runs."""
    return _single


# Below this many devices the circuit's products and solves are small enough that OpenBLAS
# runs them on one thread anyway (measured here: a 42-node solve 46 µs with the default
# threads, 42 µs with one; a 128² GEMV 6.2 µs and 5.2 µs), and setting the count twice per
# call (~6 µs) would be most of what a read-level step of a small array costs.
THREADED_DEVICES = 4096


class _NoLimit:
    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass


_no_limit = _NoLimit()


def single_thread_for(n_devices: int) -> "_SingleThread | _NoLimit":
    """:func:`single_thread` for the linear algebra of an array of ``n_devices``, or nothing
    where that is below ``THREADED_DEVICES``."""
    return _single if n_devices >= THREADED_DEVICES else _no_limit
