"""Software Hopfield reference: learning rules, energy, recall and recall statistics.

This is the yardstick the physical network is compared against; it never drives a
device. Patterns are rows of a (P, N) array of ±1. Weights are symmetric N×N with a
zero diagonal unless a rule says otherwise. A neuron whose field is exactly zero keeps
its state (so a noisy tie does not flip bits at random).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np

Mode = Literal["sync", "async"]


def as_patterns(patterns: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    x = np.asarray(patterns, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"patterns must be a (P, N) array, got shape {x.shape}")
    if not np.isin(x, (-1.0, 1.0)).all():
        raise ValueError("patterns must contain only -1 and +1")
    return x


# ------------------------------------------------------------------ learning rules


def hebbian(patterns: np.ndarray) -> np.ndarray:
    """W = (1/N) Σ_μ ξ^μ ξ^μᵀ with a zero diagonal."""
    x = as_patterns(patterns)
    w = x.T @ x / x.shape[1]
    np.fill_diagonal(w, 0.0)
    return w


def clamped_oja(
    patterns: np.ndarray,
    *,
    eta: float = 0.1,
    epochs: int = 10,
    w0: np.ndarray | None = None,
) -> np.ndarray:
    """Oja's rule with the output clamped to the pattern, one pattern at a time.

    With y_i = ξ_i clamped, Δw_ij = η y_i (x_j − y_i w_ij) = η (ξ_i ξ_j − w_ij): a Hebbian
    term plus a decay, what a soft-bounded device under the pattern's voltages does. Its
    fixed point is the pattern correlation matrix (Hebbian up to scale).
    """
    x = as_patterns(patterns)
    n = x.shape[1]
    w = np.zeros((n, n)) if w0 is None else np.array(w0, dtype=float)
    for _ in range(epochs):
        for xi in x:
            w += eta * (np.outer(xi, xi) - w)
    np.fill_diagonal(w, 0.0)
    return w


def storkey(patterns: np.ndarray) -> np.ndarray:
    """Storkey's incremental rule (capacity ~ N/√(2 ln N))."""
    x = as_patterns(patterns)
    n = x.shape[1]
    w = np.zeros((n, n))
    for xi in x:
        h = w @ xi  # h_i = Σ_k w_ik ξ_k (diagonal is zero)
        # local field excluding i and j: h_ij = h_i − w_ii ξ_i − w_ij ξ_j
        hij = h[:, None] - w * xi[None, :]
        w = w + (np.outer(xi, xi) - xi[:, None] * hij.T - hij * xi[None, :]) / n
        np.fill_diagonal(w, 0.0)
    return w


def pseudo_inverse(patterns: np.ndarray, zero_diagonal: bool = True) -> np.ndarray:
    """Projection rule W = Ξ (ΞᵀΞ)⁺ Ξᵀ (Ξ is N×P): stores any P ≤ N independent patterns."""
    x = as_patterns(patterns)
    w = x.T @ np.linalg.pinv(x @ x.T) @ x
    if zero_diagonal:
        np.fill_diagonal(w, 0.0)
    return w


RULES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hebbian": hebbian,
    "oja": clamped_oja,
    "storkey": storkey,
    "pseudo_inverse": pseudo_inverse,
}


# ------------------------------------------------------------------ dynamics


def energy(w: np.ndarray, s: np.ndarray, theta: np.ndarray | float = 0.0) -> float:
    """E = −½ sᵀWs + θ·s."""
    s = np.asarray(s, dtype=float)
    return float(-0.5 * s @ w @ s + np.sum(np.broadcast_to(theta, s.shape) * s))


def energy_from_field(s: np.ndarray, h: np.ndarray, theta: np.ndarray | float = 0.0) -> float:
    """The same energy from a measured field h = W s (what an in-materio multiply returns)."""
    s = np.asarray(s, dtype=float)
    return float(-0.5 * s @ np.asarray(h, dtype=float) + np.sum(np.broadcast_to(theta, s.shape) * s))


def update_sign(h: np.ndarray, s: np.ndarray, theta: np.ndarray | float = 0.0) -> np.ndarray:
    """s_i ← sgn(h_i − θ_i); a zero argument keeps s_i."""
    a = np.asarray(h, dtype=float) - theta
    return np.where(a > 0, 1.0, np.where(a < 0, -1.0, np.asarray(s, dtype=float)))


@dataclass
class RecallResult:
    final: np.ndarray  # (N,) ±1
    steps: int  # sync: network updates; async: sweeps
    converged: bool  # reached a fixed point
    cycle: bool  # sync only: returned to an earlier state that is not a fixed point
    energies: list[float] = field(default_factory=list)  # E of each visited state, start first
    flips: int = 0  # total neuron changes


def recall(
    w: np.ndarray,
    cue: np.ndarray,
    *,
    mode: Mode = "async",
    theta: np.ndarray | float = 0.0,
    max_steps: int = 100,
    rng: np.random.Generator | None = None,
) -> RecallResult:
    """Iterate from ``cue`` until a fixed point, a cycle (sync) or ``max_steps``.

    Sync updates every neuron from the same state; async updates one neuron at a time in a
    fresh random order each sweep (a step is a sweep), the mode in which the energy never
    rises for a symmetric zero-diagonal W.
    """
    w = np.asarray(w, dtype=float)
    s = np.array(cue, dtype=float)
    energies = [energy(w, s, theta)]
    flips = 0
    if mode == "sync":
        seen = {s.tobytes(): 0}
        for step in range(1, max_steps + 1):
            new = update_sign(w @ s, s, theta)
            flips += int(np.sum(new != s))
            if np.array_equal(new, s):
                return RecallResult(s, step - 1, True, False, energies, flips)
            s = new
            energies.append(energy(w, s, theta))
            key = s.tobytes()
            if key in seen:
                return RecallResult(s, step, False, True, energies, flips)
            seen[key] = step
        return RecallResult(s, max_steps, False, False, energies, flips)
    if mode != "async":
        raise ValueError(f"mode must be 'sync' or 'async', got {mode!r}")
    rng = rng if rng is not None else np.random.default_rng(0)
    th = np.broadcast_to(np.asarray(theta, dtype=float), s.shape)
    for sweep in range(max_steps + 1):
        # test for a fixed point before drawing a sweep order, as the in-materio loop does,
        # so both consume the same random stream
        if np.array_equal(update_sign(w @ s, s, th), s):
            return RecallResult(s, sweep, True, False, energies, flips)
        if sweep == max_steps:
            break
        for i in rng.permutation(s.size):
            hi = w[i] @ s - th[i]
            si = 1.0 if hi > 0 else (-1.0 if hi < 0 else s[i])
            if si != s[i]:
                s[i] = si
                flips += 1
        energies.append(energy(w, s, theta))
    return RecallResult(s, max_steps, False, False, energies, flips)


# ------------------------------------------------------------------ measures


def overlaps(patterns: np.ndarray, s: np.ndarray) -> np.ndarray:
    """m^μ = ξ^μ·s / N for every stored pattern."""
    x = np.asarray(patterns, dtype=float)
    return x @ np.asarray(s, dtype=float) / x.shape[1]


def bit_accuracy(s: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.asarray(s) == np.asarray(target)))


def exact_recall(s: np.ndarray, target: np.ndarray) -> bool:
    return bool(np.array_equal(np.asarray(s, dtype=float), np.asarray(target, dtype=float)))


def correct_retrieval(s: np.ndarray, patterns: np.ndarray, index: int, threshold: float = 0.9) -> bool:
    """Overlap with the cued pattern ≥ threshold and larger than with any other stored one."""
    m = overlaps(patterns, s)
    others = np.delete(m, index)
    return bool(m[index] >= threshold and (others.size == 0 or m[index] > others.max()))


def flip_bits(pattern: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    s = np.array(pattern, dtype=float)
    idx = rng.choice(s.size, size=k, replace=False)
    s[idx] *= -1
    return s


def n_flips(n: int, fraction: float) -> int:
    """Pixels to flip for a noise fraction: round half up, so 10 % of 35 is 4, not 3."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"flip fraction must be in [0, 1], got {fraction}")
    return int(np.floor(fraction * n + 0.5))


def make_cues(
    patterns: np.ndarray, per_pattern: int, flip_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``per_pattern`` noisy cues of each pattern: (cues (P·k, N), index of the cued pattern)."""
    x = as_patterns(patterns)
    rng = np.random.default_rng(seed)
    k = n_flips(x.shape[1], flip_fraction)
    cues, targets = [], []
    for mu, xi in enumerate(x):
        for _ in range(per_pattern):
            cues.append(flip_bits(xi, k, rng))
            targets.append(mu)
    return np.array(cues), np.array(targets, dtype=int)


@dataclass
class Scores:
    bit_accuracy: float
    exact: float
    correct: float
    n: int
    mean_steps: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "bit_accuracy": self.bit_accuracy,
            "exact": self.exact,
            "correct": self.correct,
            "n": self.n,
            "mean_steps": self.mean_steps,
        }


def score_finals(finals: np.ndarray, targets: np.ndarray, patterns: np.ndarray, steps=None) -> Scores:
    x = as_patterns(patterns)
    finals = np.asarray(finals, dtype=float)
    bits = [bit_accuracy(f, x[t]) for f, t in zip(finals, targets)]
    ex = [exact_recall(f, x[t]) for f, t in zip(finals, targets)]
    co = [correct_retrieval(f, x, int(t)) for f, t in zip(finals, targets)]
    return Scores(
        float(np.mean(bits)), float(np.mean(ex)), float(np.mean(co)), len(finals),
        float(np.mean(steps)) if steps is not None and len(steps) else 0.0,
    )


def evaluate(
    w: np.ndarray,
    patterns: np.ndarray,
    cues: np.ndarray,
    targets: np.ndarray,
    *,
    mode: Mode = "async",
    theta: np.ndarray | float = 0.0,
    max_steps: int = 100,
    seed: int = 0,
) -> Scores:
    """Recall every cue with W and score bit accuracy, exact recall and correct retrieval."""
    rng = np.random.default_rng(seed)
    results = [recall(w, c, mode=mode, theta=theta, max_steps=max_steps, rng=rng) for c in cues]
    return score_finals(np.array([r.final for r in results]), targets, patterns, [r.steps for r in results])


def stable_patterns(w: np.ndarray, patterns: np.ndarray, theta: np.ndarray | float = 0.0) -> np.ndarray:
    """Which stored patterns are fixed points of one synchronous update."""
    x = as_patterns(patterns)
    return np.array([np.array_equal(update_sign(w @ xi, xi, theta), xi) for xi in x])


def basin_of_attraction(
    w: np.ndarray,
    patterns: np.ndarray,
    *,
    flips: Sequence[int] | None = None,
    trials: int = 20,
    mode: Mode = "async",
    seed: int = 0,
    success: float = 0.9,
) -> dict[str, np.ndarray]:
    """Exact-recall rate versus number of flipped cue bits, per pattern, and the basin radius.

    The radius of pattern μ is the largest k such that every k' ≤ k recalls μ exactly in
    at least ``success`` of the trials (0 if μ is not even stable).
    """
    x = as_patterns(patterns)
    n = x.shape[1]
    ks = np.arange(0, n // 2 + 1) if flips is None else np.asarray(flips, dtype=int)
    rng = np.random.default_rng(seed)
    rate = np.zeros((x.shape[0], len(ks)))
    for mu, xi in enumerate(x):
        for a, k in enumerate(ks):
            ok = 0
            for _ in range(trials if k else 1):
                r = recall(w, flip_bits(xi, int(k), rng), mode=mode, rng=rng)
                ok += exact_recall(r.final, xi)
            rate[mu, a] = ok / (trials if k else 1)
    radius = np.zeros(x.shape[0], dtype=int)
    for mu in range(x.shape[0]):
        r = 0
        for a, k in enumerate(ks):
            if rate[mu, a] < success:
                break
            r = int(k)
        radius[mu] = r
    return {"flips": ks, "rate": rate, "radius": radius}


def weight_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the off-diagonal entries of two weight matrices."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    mask = ~np.eye(a.shape[0], dtype=bool) & np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[mask], b[mask])[0, 1])
