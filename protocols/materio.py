"""In-materio recall: neuron updates whose fields come from measured currents.

A Multiply puts the state on the neurons at ±v_read with the measured neuron at virtual
ground, so I_i = v_read Σ_j G_ij s_j. With the reference conductance subtracted,
h_i = I_i / v_read − g_ref_i Σ_{j~i} s_j = Σ_j (G_ij − g_ref_i) s_j: the field of the
weight matrix W = G − G_ref, computed by the device itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generator, Literal

import numpy as np

from lab.operations import BenchInfo, Multiply, MultiplyResult

from .common import adjacency

Reference = Literal["mean", "row_mean"]
Sub = Generator[Any, Any, Any]


def measure_reference(bench: BenchInfo, kind: "Reference | float", v_read: float | None) -> Sub:
    """The reference conductance per neuron (S), measured in materio.

    With every neuron at +v_read but the measured one, I_i = v_read Σ_j G_ij: the row sum.
    'mean' is the array's mean conductance (one number), 'row_mean' each row's own mean.
    A number is taken as a conductance measured earlier (e.g. before training).
    """
    n = bench.n_neurons
    if not isinstance(kind, str):
        return np.full(n, float(kind))
    if kind not in ("mean", "row_mean"):
        raise ValueError(f"reference must be 'mean', 'row_mean' or a conductance in S, got {kind!r}")
    res: MultiplyResult = yield Multiply(pattern=(1,) * n, v_read=v_read)
    degree = adjacency(bench).sum(axis=1)
    row_sum = np.asarray(res.currents, dtype=float) / res.v_read
    if kind == "row_mean":
        return row_sum / degree
    return np.full(n, float(np.sum(row_sum) / np.sum(degree)))


def fields(bench: BenchInfo, res: MultiplyResult, s: np.ndarray, g_ref: np.ndarray) -> np.ndarray:
    """h_i = I_i/v − g_ref_i Σ_{j≠i, j~i} s_j for the measured neurons (NaN elsewhere)."""
    adj = adjacency(bench)
    return np.asarray(res.currents, dtype=float) / res.v_read - g_ref * (adj @ s)


@dataclass
class MaterioTrace:
    final: np.ndarray
    steps: int
    converged: bool
    cycle: bool
    energies: list[float] = field(default_factory=list)  # E(s) = −½ s·h − (ref part), per visited state
    multiplies: int = 0
    flips: int = 0


def _sign(a: float, keep: float) -> float:
    return 1.0 if a > 0 else (-1.0 if a < 0 else keep)


def materio_recall(
    bench: BenchInfo,
    cue: np.ndarray,
    g_ref: np.ndarray,
    *,
    mode: str = "async",
    theta: "np.ndarray | float" = 0.0,
    max_steps: int = 30,
    v_read: float | None = None,
    rng: np.random.Generator | None = None,
) -> Sub:
    """Iterate s_i ← sgn(h_i − θ_i) with measured fields until a fixed point, a cycle or max_steps.

    Sync: one full Multiply per step. Async: one full Multiply per sweep (energy and the
    fixed-point test), then one single-neuron Multiply per neuron in a random order.
    The energy E = −½ Σ_i s_i h_i + θ·s comes from the same measured fields.
    """
    n = bench.n_neurons
    s = np.array(cue, dtype=float)
    th = np.broadcast_to(np.asarray(theta, dtype=float), (n,))
    rng = rng if rng is not None else np.random.default_rng(0)
    energies: list[float] = []
    multiplies = 0
    flips = 0
    seen: dict[bytes, int] = {}
    for step in range(max_steps + 1):
        res = yield Multiply(pattern=tuple(int(x) for x in s), v_read=v_read)
        multiplies += 1
        h = fields(bench, res, s, g_ref)
        energies.append(float(-0.5 * s @ h + th @ s))
        new = np.array([_sign(h[i] - th[i], s[i]) for i in range(n)])
        if np.array_equal(new, s):
            return MaterioTrace(s, step, True, False, energies, multiplies, flips)
        if step == max_steps:
            break
        if mode == "sync":
            seen[s.tobytes()] = step
            flips += int(np.sum(new != s))
            s = new
            if s.tobytes() in seen:
                res = yield Multiply(pattern=tuple(int(x) for x in s), v_read=v_read)
                multiplies += 1
                energies.append(float(-0.5 * s @ fields(bench, res, s, g_ref) + th @ s))
                return MaterioTrace(s, step + 1, False, True, energies, multiplies, flips)
        elif mode == "async":
            for i in rng.permutation(n):
                r1 = yield Multiply(pattern=tuple(int(x) for x in s), neurons=(int(i),), v_read=v_read)
                multiplies += 1
                hi = fields(bench, r1, s, g_ref)[i]
                si = _sign(hi - th[i], s[i])
                if si != s[i]:
                    s[i] = si
                    flips += 1
        else:
            raise ValueError(f"mode must be 'sync' or 'async', got {mode!r}")
    return MaterioTrace(s, max_steps, False, False, energies, multiplies, flips)
