"""In-materio recall: neuron updates whose fields come from measured currents.

A Multiply puts the state on the neurons at ±v_read and measures each output at virtual
ground, so I_i = v_read Σ_j F_ij s_j with F the summed device conductances between input
j and output i (see :func:`protocols.common.field_terms`). The weights are conductance
changes, so a reference is subtracted: h_i = I_i / v_read − Σ_j F(B + c)_ij s_j, with B a
baseline measured before training (per device; optional) and c a uniform (or per-output)
offset measured in materio with every input at +v_read. Then h = W s with
W = F(G − B − c): the device itself computes the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generator, Sequence

import numpy as np

from lab.operations import BenchInfo, Multiply, MultiplyResult

from .common import field_matrix

Sub = Generator[Any, Any, Any]


@dataclass(frozen=True)
class Reference:
    """What is subtracted from a measured current: F(baseline) s plus c_i Σ_j F(1)_ij s_j."""

    baseline_field: np.ndarray  # (N, N) F(B), zeros without a baseline
    offset: np.ndarray  # (N,) c_i in S
    ones_field: np.ndarray  # (N, N) F(1)

    def subtract(self, res: MultiplyResult, s: np.ndarray) -> np.ndarray:
        return np.asarray(res.currents, dtype=float) / res.v_read - self.baseline_field @ s - self.offset * (
            self.ones_field @ s
        )


def measure_reference(
    bench: BenchInfo, kind: "str | float", v_read: float | None, baseline: Sequence[float] | None = None
) -> Sub:
    """The reference, with its offset measured in materio (one all-+1 Multiply) unless given.

    With every input at +v_read, I_i/v = Σ_j F(G)_ij: the row sums, whose excess over the
    baseline gives the mean conductance change ('mean': one number, 'row_mean': per output).
    A number is the offset itself (S), e.g. a conductance measured before training.
    """
    n = bench.n_neurons
    ones = field_matrix(bench, 1.0)
    base = np.zeros((n, n)) if baseline is None else field_matrix(bench, np.asarray(baseline, dtype=float))
    if not isinstance(kind, str):
        return Reference(base, np.full(n, float(kind)), ones)
    if kind not in ("mean", "row_mean", "scaled_baseline"):
        raise ValueError(f"in-materio reference must be 'scaled_baseline' (the read-out, see protocols.readout), "
                         f"'mean', 'row_mean' or a conductance in S, got {kind!r}")
    res: MultiplyResult = yield Multiply(pattern=(1,) * n, v_read=v_read)
    if kind == "scaled_baseline" and baseline is not None:
        # W = G − λ·G0 with λ = Σ_ij G_ij / Σ_ij G0_ij: the row sums of one all-+1 multiply
        lam = float(np.sum(np.asarray(res.currents, dtype=float) / res.v_read) / base.sum())
        return Reference(lam * base, np.zeros(n), ones)
    # no baseline: scaled_baseline is W = G − Ḡ, the 'mean' offset below
    excess = np.asarray(res.currents, dtype=float) / res.v_read - base.sum(axis=1)
    if kind == "row_mean":
        return Reference(base, excess / ones.sum(axis=1), ones)
    return Reference(base, np.full(n, excess.sum() / ones.sum()), ones)


@dataclass
class MaterioTrace:
    final: np.ndarray
    steps: int
    converged: bool
    cycle: bool
    energies: list[float] = field(default_factory=list)  # E(s) = −½ s·h + θ·s, per visited state
    multiplies: int = 0
    flips: int = 0


def _sign(a: float, keep: float) -> float:
    return 1.0 if a > 0 else (-1.0 if a < 0 else keep)


def field_at(bench: BenchInfo, s: np.ndarray, reference: Reference, v_read: float | None,
             neurons: tuple[int, ...] | None = None) -> Sub:
    """One Multiply at state s: the reference-subtracted field (NaN for unmeasured neurons)."""
    res = yield Multiply(pattern=tuple(int(x) for x in s), neurons=neurons, v_read=v_read)
    return reference.subtract(res, s)


def materio_recall(
    bench: BenchInfo,
    cue: np.ndarray,
    reference: Reference,
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
    """
    if mode not in ("sync", "async"):
        raise ValueError(f"mode must be 'sync' or 'async', got {mode!r}")
    n = bench.n_neurons
    s = np.array(cue, dtype=float)
    th = np.broadcast_to(np.asarray(theta, dtype=float), (n,))
    rng = rng if rng is not None else np.random.default_rng(0)
    energies: list[float] = []
    multiplies = 0
    flips = 0
    seen: set[bytes] = set()
    for step in range(max_steps + 1):
        h = yield from field_at(bench, s, reference, v_read)
        multiplies += 1
        energies.append(float(-0.5 * s @ h + th @ s))
        new = np.array([_sign(h[i] - th[i], s[i]) for i in range(n)])
        if np.array_equal(new, s):
            return MaterioTrace(s, step, True, False, energies, multiplies, flips)
        if step == max_steps:
            break
        if mode == "sync":
            seen.add(s.tobytes())
            flips += int(np.sum(new != s))
            s = new
            if s.tobytes() in seen:
                h = yield from field_at(bench, s, reference, v_read)
                multiplies += 1
                energies.append(float(-0.5 * s @ h + th @ s))
                return MaterioTrace(s, step + 1, False, True, energies, multiplies, flips)
        else:
            for i in rng.permutation(n):
                hi = (yield from field_at(bench, s, reference, v_read, (int(i),)))[i]
                multiplies += 1
                si = _sign(hi - th[i], s[i])
                if si != s[i]:
                    s[i] = si
                    flips += 1
    return MaterioTrace(s, max_steps, False, False, energies, multiplies, flips)
