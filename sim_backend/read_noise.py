"""Read noise carried to a reading as a small signal (the convention of SPICE's noise analysis).

A reading draws δG_k ~ N(0, σ_k²) on every device, independently per device and per reading:
σ_k = read_noise_window·window (S) on a device array, read_noise_rel·|G_k| on a film's pair
conductances. The bus current I_b(G + δG) is, to first order in δG,

    I_b = I_b(G) + Σ_k w_bk·δG_k,    w_bk = ∂I_b/∂G_k = ΔV_k·ΔU_bk   (Tellegen's theorem)

with ΔV_k (V) the voltage across device k in the circuit's solution and ΔU_bk (V/V) the voltage
across it when bus b's node alone is held at 1 V, every other pinned node at 0 V and nothing
injected: the adjoint field, the same for every reading of one relay configuration and state.
A sum of independent Gaussians is one Gaussian, so a reading is

    I_b = I_b(G) + s_b·ξ,   ξ ~ N(0, 1),   s_b² = Σ_k w_bk²·σ_k²   (A²)

one draw per reading instead of one per device, and one solve per relay configuration and state
(plus the adjoints of every sourcing bus at once) instead of one per reading. What it leaves
out is the curvature of I_b in G: a bias and a non-Gaussian tail of relative order σ_k/G_k
times the coupling between devices (R·ΣG ~ 1e-4 in a guarded read, O(1) through a floating
read's sneak paths), far below the noise itself at the read noise of real devices
(``tests/test_read_noise.py`` compares both against the per-device draw). A source within 8 s_b
of its compliance, or already in it, is read the exact way, with every device drawn: the
active-set step of a clamp is no small signal.
"""
from __future__ import annotations

import numpy as np

from .circuit import Circuit, CircuitSolution

MARGIN_SIGMAS = 8.0  # a reading further than this from a compliance limit never reaches it


def current_sigmas(circuit: Circuit, sol: CircuitSolution, sigma: float | np.ndarray, u: np.ndarray) -> np.ndarray:
    """s_b (A) of each bus whose unit response is a column of u (``Circuit.unit_responses`` at
    the relays, outputs and conductances ``sol`` was solved at); sigma: σ_k (S), one or per device."""
    scalar = np.ndim(sigma) == 0
    ss = np.full(u.shape[1], np.nan)
    if scalar and circuit.rows_and_columns:
        ss = _crossbar_sums_of_squares(sol.line_v, u[circuit.group[: circuit.n_lines]], circuit.topology.n)
    for j in np.flatnonzero(np.isnan(ss)):
        w = sol.device_v * circuit.device_differences(u[:, j])
        if not scalar:
            w *= sigma
        ss[j] = float(w @ w)
    return np.sqrt(ss) * (sigma if scalar else 1.0)


def current_change(circuit: Circuit, sol: CircuitSolution, dG: np.ndarray, u: np.ndarray) -> float:
    """Σ_k w_bk·δG_k (A): the first-order change of the current of the bus whose unit response is
    u (n_groups,) when the conductances ``sol`` was solved at move by dG (S, per device)."""
    w = np.multiply(dG, sol.device_v)
    return float(w @ circuit.device_differences(u))


def _crossbar_sums_of_squares(v: np.ndarray, u: np.ndarray, n: int) -> np.ndarray:
    """Σ_rc w_rc² of a full crossbar in O(N) per bus: w_rc = (x_r − p_c)(y_r − q_c) with x, p the
    row and column voltages and y, q the unit response's (u: (lines, buses)), so w is four
    rank-one terms Σ_i R_i C_iᵀ, (R | C) = (x∘y | 1), (1 | p∘q), (−x | q), (−y | p), and
    ‖w‖² = Σ_ij (R_i·R_j)(C_i·C_j). NaN where the terms cancel to within 1e-6 of their size
    (the direct sum over the devices is then the accurate one)."""
    x, p = v[:n], v[n:]
    y, q = u[:n].T, u[n:].T  # (buses, N)
    m = y.shape[0]
    R = np.empty((m, 4, n))  # (buses, 4, N), filled in place: a reading asks for one bus at a time
    np.multiply(x, y, out=R[:, 0])
    R[:, 1] = 1.0
    R[:, 2] = -x
    np.negative(y, out=R[:, 3])
    C = np.empty((m, 4, p.size))
    C[:, 0] = 1.0
    np.multiply(p, q, out=C[:, 1])
    C[:, 2] = q
    C[:, 3] = p
    gram = (R @ R.transpose(0, 2, 1)) * (C @ C.transpose(0, 2, 1))
    ss = gram.sum(axis=(1, 2))
    return np.where(ss >= 1e-6 * np.abs(gram).sum(axis=(1, 2)), ss, np.nan)  # (0 for a bus on no line)
