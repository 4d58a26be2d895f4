"""Preconditioned conjugate gradients for the circuit's free block, one right-hand side or several.

One right-hand side is the reading's own solve. Several (columns of a 2-D array) are the unit
responses of small-signal noise analysis: the same operator, so each iteration is one GEMM
instead of a GEMV per column, and every column keeps its own step lengths (each converges as
it would alone; a converged column is held still while the others go on).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

Op = Callable[[np.ndarray], np.ndarray]


def pcg(op: Op, precondition: Op, rhs: np.ndarray, max_iter: int, rtol: float = 1e-17) -> np.ndarray | None:
    """x with op(x) = rhs, the preconditioned residual within rtol of max|x| (per column); None if
    it does not converge (or the operator is not positive definite): the caller goes dense."""
    if rhs.ndim == 2:
        return _pcg_columns(op, precondition, rhs, max_iter, rtol)
    x = precondition(rhs)
    r = rhs - op(x)
    z = precondition(r)
    p = z.copy()
    rz = float(r @ z)
    for _ in range(max_iter):
        if float(np.abs(z).max(initial=0.0)) <= rtol * (float(np.abs(x).max(initial=0.0)) + 1e-300):
            return x
        ap = op(p)
        pap = float(p @ ap)
        if not pap > 0:
            return None
        alpha = rz / pap
        x += alpha * p
        r -= alpha * ap
        z = precondition(r)
        rz_new = float(r @ z)
        p = z + (rz_new / rz) * p if rz > 0 else z
        rz = rz_new
    return None


def _pcg_columns(op: Op, precondition: Op, rhs: np.ndarray, max_iter: int, rtol: float) -> np.ndarray | None:
    x = precondition(rhs)
    r = rhs - op(x)
    z = precondition(r)
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    for _ in range(max_iter):
        done = np.abs(z).max(axis=0, initial=0.0) <= rtol * (np.abs(x).max(axis=0, initial=0.0) + 1e-300)
        if done.all():
            return x
        ap = op(p)
        pap = np.einsum("ij,ij->j", p, ap)
        if not (pap[~done] > 0).all():
            return None
        alpha = np.where(done, 0.0, rz / np.where(done, 1.0, pap))
        x += alpha * p
        r -= alpha * ap
        z = precondition(r)
        rz_new = np.einsum("ij,ij->j", r, z)
        live = (rz > 0) & ~done
        beta = np.where(live, rz_new / np.where(live, rz, 1.0), 0.0)
        p = z + beta * p
        rz = rz_new
    return None
