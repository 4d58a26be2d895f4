"""Texture of each cell and the resistivity tensor it gives (anisotropic magnetoresistance).

State per cell: the nematic order q = (q1, q2), |q| ≤ 1, of the cell's domain axes: the
order tensor Q = ⟨m mᵀ⟩ = ½(I + [[q1, q2], [q2, −q1]]). A demagnetised multidomain cell has
q = 0 (Q = I/2); a single domain along the angle ψ has q = (cos 2ψ, sin 2ψ). AMR
(Voigt–Thomson: ρ(θ) = ρ⊥ + (ρ∥ − ρ⊥)cos²θ, θ between m and j) averaged over the domains is

    ρ = ρ⊥(T)·(1 + δ_ρ)·I + Δρ(T)·Q,      σ = ρ⁻¹                      (Ω·m, S/m)

with ρ⊥(T) = ρ⊥0·(1 + α_T(T − T0)) (TCR α_T), Δρ(T) = a·ρ⊥0·m_s(T)², and the reduced
magnetisation squared m_s(T)² = (1 − (T/T_C)²)/(1 − (T0/T_C)²), clipped at 0 above T_C
(a mean-field-like interpolation: AMR vanishes at the Curie point).

Dynamics (per cell, under its own current density j): current above a threshold turns the
domain axes toward j (m ∥ j raises ρ along the path: permalloy has ρ∥ > ρ⊥), so q relaxes
exponentially toward q_j = (cos 2α, sin 2α), α the angle of j, at the rate

    r = f_d·w·v(|j|/j_d),  v = 0 below creep_onset·j_d (pinned: reads never write),
                           v = exp[−(T_d/T)((j/j_d)^(−μ) − 1)] in creep (μ = 1/3, current-driven),
                           v = 1 + s·(j/j_d − 1) in flow above j_d,

(w: the cell's mobility, 0 in stuck regions; j_d carries the pinning disorder), and
relaxes toward the rest texture q_rest at the Néel–Arrhenius rate k = f0·exp(−E_b·m_s²/T).
Over a step with frozen rates the exact solution is
q ← q∞ + (q − q∞)·exp(−(r + k)dt), q∞ = (r·q_j + k·q_rest)/(r + k): a convex combination, so
|q| ≤ 1 holds by itself and the approach slows at the bound (soft bounds).
"""
from __future__ import annotations

import numpy as np

from ..presets import FilmPreset


def ms_squared(T: np.ndarray, p: FilmPreset) -> np.ndarray:
    """Reduced magnetisation squared, 1 at T0, 0 at and above T_C."""
    num = 1.0 - np.square(np.asarray(T, dtype=np.float64) / p.curie_K)
    return np.clip(num / (1.0 - (p.ambient_K / p.curie_K) ** 2), 0.0, None)


def resistivity_scale(T: np.ndarray, p: FilmPreset) -> np.ndarray:
    """ρ⊥(T)/ρ⊥(T0) (TCR), kept positive far below T0."""
    return np.maximum(1.0 + p.tcr_per_K * (np.asarray(T, dtype=np.float64) - p.ambient_K), 0.05)


def conductivity(q: np.ndarray, T: np.ndarray, rho_rel: np.ndarray, p: FilmPreset
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(σ_xx, σ_yy, σ_xy) per cell, S/m, from order q (C, 2), temperature T (C,) and the
    resistivity disorder factor rho_rel = 1 + δ_ρ (C,)."""
    r0 = p.resistivity_perp_ohm_m
    base = r0 * resistivity_scale(T, p) * rho_rel
    d = p.amr_ratio * r0 * rho_rel * ms_squared(T, p)
    rxx = base + 0.5 * d * (1.0 + q[:, 0])
    ryy = base + 0.5 * d * (1.0 - q[:, 0])
    rxy = 0.5 * d * q[:, 1]
    det = rxx * ryy - rxy * rxy
    return ryy / det, rxx / det, -rxy / det


def target_order(jx: np.ndarray, jy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q of a single domain along j: (cos 2α, sin 2α) = ((jx² − jy²), 2 jx jy)/|j|²."""
    j2 = jx * jx + jy * jy
    safe = np.where(j2 > 0, j2, 1.0)
    return (jx * jx - jy * jy) / safe, 2.0 * jx * jy / safe


def drive_rate(j_abs: np.ndarray, j_d: np.ndarray, T: np.ndarray, p: FilmPreset) -> np.ndarray:
    """Rate (1/s) at which a cell's order turns toward j, before its mobility factor."""
    rho = j_abs / j_d
    v = np.zeros_like(rho)
    creep = (rho >= p.creep_onset) & (rho < 1.0)
    flow = rho >= 1.0
    if creep.any():
        v[creep] = np.exp(-(p.creep_barrier_K / T[creep]) * (rho[creep] ** (-p.creep_exponent) - 1.0))
    v[flow] = 1.0 + p.flow_slope * (rho[flow] - 1.0)
    return p.order_rate_at_depin_Hz * v


def relax_rate(T: np.ndarray, p: FilmPreset) -> np.ndarray:
    """Néel–Arrhenius rate (1/s) toward the rest texture; the barrier goes with Ms(T)²."""
    if p.relax_attempt_Hz == 0:
        return np.zeros(np.shape(T))
    return p.relax_attempt_Hz * np.exp(-p.relax_barrier_K * ms_squared(T, p) / np.asarray(T, dtype=np.float64))


def step_order(q: np.ndarray, qt: tuple[np.ndarray, np.ndarray], r: np.ndarray, k: np.ndarray,
               q_rest: np.ndarray, dt: float) -> np.ndarray:
    """Exact step of dq/dt = r(q_j − q) + k(q_rest − q) with frozen rates; returns the new q."""
    lam = (r + k) * dt
    safe = np.where(lam > 0, r + k, 1.0)
    decay = np.exp(-lam)[:, None]
    q_t = np.stack(qt, axis=1)
    q_inf = np.where((lam > 0)[:, None], (r[:, None] * q_t + k[:, None] * q_rest) / safe[:, None], q)
    return q_inf + (q - q_inf) * decay
