"""Which device-array kernel runs: numpy (the reference, and the fallback without numba) or
numba (``kernels.py``, the ``fast`` extra), chosen by argument or ``HOPBENCH_KERNEL``."""
from __future__ import annotations

import os
from typing import Any

KERNELS = ("auto", "numpy", "numba")
# auto takes numba from this many devices on (a crossbar of N = 128): importing numba costs
# ~0.5 s a process, which the faster steps of a smaller array would not repay in a short run
AUTO_NUMBA_DEVICES = 1 << 14


def kernel_name(kernel: str | None = None) -> str:
    """The kernel asked for (argument, else $HOPBENCH_KERNEL, else auto), validated."""
    name = kernel if kernel is not None else os.environ.get("HOPBENCH_KERNEL", "auto")
    name = name.strip().lower() or "auto"
    if name not in KERNELS:
        where = "kernel" if kernel is not None else "HOPBENCH_KERNEL"
        raise ValueError(f"{where}={name!r} is not a device-array kernel (choose from {', '.join(KERNELS)})")
    return name


def load_kernel(name: str) -> Any:
    """The compiled kernel module for `name`, or None for the numpy path (auto without numba)."""
    if name == "numpy":
        return None
    try:
        from . import kernels
    except ImportError as e:
        if name == "numba":
            raise ImportError("the numba device-array kernel needs numba: pip install 'hopbench[fast]' "
                              f"(or HOPBENCH_KERNEL=numpy); importing it failed: {e}") from e
        return None
    return kernels
