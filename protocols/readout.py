"""The read-out: from measured conductances to the Hopfield weights the film has learned.

Clamped training lowers G on the pairs a pattern holds anti-aligned, G = G0·(1 − a·x) with
x ∈ [0, 1] the texture of a path and a ≈ 2 % its AMR contrast. What a pattern writes is the
*difference* between pairs; but every presentation also lowers G on roughly half of all
pairs, so after training the mean drop (≈ 1.15 % of G on the shipped film) is about twice
the pattern-dependent part (≈ 0.5 %). Split x = x̄ + δx:

    G − G0 = −a·x̄·G0 − a·G0·δx

The common-mode term is proportional to each path's own G0, which spreads by ~31 % from
path to path (geometry). Subtracting one uniform number c from G − G0 (the old
``reference="mean"``) leaves a·x̄·(G0 − Ḡ0): a residue at ~0.65× the signal, uncorrelated
with the patterns, which costs a third of the exact recalls. Subtracting the baseline
*scaled* by the common factor removes it exactly:

    W = G − λ·G0,    λ = Σ_d G_d / Σ_d G0_d    (sums over the devices)

so W = −a·G0·(δx − ⟨δx⟩_G0): the learned texture, weighted by each path's conductance, with
zero G0-weighted mean. λ is one scalar a physical multiply can measure as well (one all-+1
multiply gives every row sum Σ_j G_ij), so the same W is what an in-materio recall subtracts:
I_i/V − λ·Σ_j G0_ij s_j = Σ_j W_ij s_j.

Sign: anti-aligned pairs lose conductance, so W_ij ∝ ξ_iξ_j (Hebbian), no sign flip.

Units: :class:`ScaledBaseline` gives W in siemens; :class:`Relative` (ΔG/G0 minus its mean,
the pure texture change −a·(x − x̄) with the G0 weighting removed) is dimensionless and can be
computed only in software (a multiply cannot divide each path by its own G0).

Nothing here writes a weight: it reads what the device has done.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from lab.operations import BenchInfo

from .common import field_matrix, field_terms

ReadoutName = Literal["scaled_baseline", "relative"]


def _finite_pair(g: np.ndarray, g0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.asarray(g, dtype=float)
    if g0 is None:
        ok = np.isfinite(g)
        # no baseline: a uniform one (the mean conductance); the device spread then stays in W
        g0 = np.full(g.shape, float(np.mean(g[ok])) if ok.any() else 1.0)
    g0 = np.asarray(g0, dtype=float)
    if g0.shape != g.shape:
        raise ValueError(f"baseline has {g0.size} conductances, the measurement {g.size}")
    ok = np.isfinite(g) & np.isfinite(g0)
    if not ok.any():
        raise ValueError("no device has a finite conductance in both the measurement and the baseline")
    return g, g0, ok


def _weights(g: np.ndarray, terms: np.ndarray | None) -> np.ndarray:
    """How often each device enters a neuron's field (film: twice, i←j and j←i); 1 if not given."""
    return np.ones(np.asarray(g).shape) if terms is None else np.asarray(terms, dtype=float)


def scale_factor(g: np.ndarray, g0: np.ndarray | None, terms: np.ndarray | None = None) -> float:
    """λ = Σ G / Σ G0 over the devices finite in both (1): the common-mode change.

    ``terms``: per-device count of field terms (see :func:`field_term_counts`); the sums are
    then the ones an all-+1 multiply measures, Σ_i Σ_j G_ij, so software and materio agree.
    """
    g, g0, ok = _finite_pair(g, g0)
    t = _weights(g, terms)
    return float(np.sum((t * g)[ok]) / np.sum((t * g0)[ok]))


@dataclass(frozen=True)
class Readout:
    """A per-device weight from a measured conductance and its baseline (untrained) value."""

    name: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    in_materio: ClassVar[bool] = False  # can a physical multiply subtract it

    def device_weights(self, g: np.ndarray, g0: np.ndarray | None, terms: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class ScaledBaseline(Readout):
    """W_d = G_d − λ·G0_d with λ = Σ G / Σ G0 (S).

    Removes a common-mode change of every path (a uniform drop of the texture times the
    paths' G0 spread) exactly; the pattern term survives weighted by each path's G0. With
    no baseline, G0 is taken uniform (W = G − Ḡ), which keeps the device spread in W.
    """

    name: ClassVar[str] = "scaled_baseline"
    unit: ClassVar[str] = "S"
    in_materio: ClassVar[bool] = True

    def device_weights(self, g: np.ndarray, g0: np.ndarray | None, terms: np.ndarray | None = None) -> np.ndarray:
        g, g0, ok = _finite_pair(g, g0)
        lam = scale_factor(g, g0, terms)
        return np.where(ok, g - lam * g0, 0.0)


@dataclass(frozen=True)
class Relative(Readout):
    """W_d = (G_d − G0_d)/G0_d − its mean over the devices (1).

    The texture change −a·(x − x̄) itself, every path counted equally (the G0 weighting of
    :class:`ScaledBaseline` removed). Software only: a multiply sums conductances and cannot
    divide each one by its own G0. Needs a baseline.
    """

    name: ClassVar[str] = "relative"
    unit: ClassVar[str] = "1"

    def device_weights(self, g: np.ndarray, g0: np.ndarray | None, terms: np.ndarray | None = None) -> np.ndarray:
        if g0 is None:
            raise ValueError("the 'relative' read-out needs a baseline (the untrained conductances)")
        g, g0, ok = _finite_pair(g, g0)
        rel = np.where(ok, g / np.where(ok, g0, 1.0) - 1.0, 0.0)
        t = _weights(g, terms)
        mean = float(np.sum((t * rel)[ok]) / max(np.sum(t[ok]), 1e-300))
        return np.where(ok, rel - mean, 0.0)


READOUTS: dict[str, Readout] = {r.name: r for r in (ScaledBaseline(), Relative())}
DEFAULT_READOUT: ReadoutName = "scaled_baseline"


def get_readout(readout: "str | Readout") -> Readout:
    if isinstance(readout, Readout):
        return readout
    try:
        return READOUTS[readout]
    except KeyError:
        raise ValueError(f"unknown read-out {readout!r}; choose one of {', '.join(READOUTS)}") from None


def field_term_counts(bench: BenchInfo) -> np.ndarray:
    """Per device, how many terms of the neuron fields it feeds (film: 2; untied crossbar: 1;
    a tied crossbar's self-couplings: 0)."""
    _, _, devs = field_terms(bench)
    return np.bincount(devs, minlength=bench.n_devices).astype(float)


def field_weights(
    bench: BenchInfo, g: np.ndarray, baseline: np.ndarray | None = None,
    readout: "str | Readout" = DEFAULT_READOUT,
) -> np.ndarray:
    """F(W): the (N, N) weights a Multiply sums, row i = output neuron i (h = F s).

    In a film and a tied crossbar this is symmetric with a zero diagonal; in an untied
    crossbar (rows are inputs, columns outputs) it is not, and holds the self-couplings.
    """
    r = get_readout(readout)
    g = np.asarray(g, dtype=float)
    if g.shape != (bench.n_devices,):
        raise ValueError(f"g has {g.size} conductances, the bench {bench.n_devices} devices")
    base = None if baseline is None else np.asarray(baseline, dtype=float)
    return field_matrix(bench, r.device_weights(g, base, field_term_counts(bench)))


def hopfield_weights(
    bench: BenchInfo, g: np.ndarray, baseline: np.ndarray | None = None,
    readout: "str | Readout" = DEFAULT_READOUT,
) -> np.ndarray:
    """The N×N Hopfield weight matrix (symmetric, zero diagonal) from a measured ``g`` per device.

    ``baseline``: the per-device conductances read before training (same order as ``g``).
    Each device's weight goes to the cell(s) of the neurons it joins: in a film W_ij is the
    path between contacts i and j; in a tied crossbar the sum of its devices (i, j) and
    (j, i); an untied crossbar's matrix is symmetrised, (F + Fᵀ)/2, and its self-couplings
    dropped (see :func:`field_weights` for what a multiply sums). Devices not finite in both
    reads contribute 0. Units: those of the read-out (S for ``scaled_baseline``).
    """
    w = field_weights(bench, g, baseline, readout)
    w = 0.5 * (w + w.T)
    np.fill_diagonal(w, 0.0)
    return w
