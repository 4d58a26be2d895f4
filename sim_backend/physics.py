"""Rate laws of the magnetic texture, as pure functions of arrays.

Drive is measured by ``j_rel = j / j_depin_nominal`` (current density over the nominal
depinning density) and a device's own threshold enters as ``th = j_depin_nominal / j_depin``,
so ``rho = j_rel · th`` is the drive relative to that device's depinning threshold.
Velocities are in units of the depinning velocity v_d.

Regimes (Lemerle 1998; Jeudy 2016):
  rho < creep_onset        pinned: walls do not move on any bench time scale (reads are safe)
  creep_onset ≤ rho < 1    creep  v/v_d = exp[−(T_d/T)(rho^(−μ) − 1)]
  rho ≥ 1                  flow   v/v_d = 1 + s·(j − j_d)/j_d,nominal   (continuous at rho = 1)
Heating: T = T_film + ΔT_d·j_rel² (device Joule heating) with T_film = T0 + R_th·P_total
(the whole array heats its film/substrate). Relaxation toward the rest texture is
thermally activated: k = f0·exp(−E_b/k_B T), so it speeds up while the film is driven;
in a path that is itself driven above the creep onset the restoring hops run against the
drive and are suppressed by exp(−β·j/j_d).

Clamped training (contacts at ±V0) with these laws is Oja's rule by itself: anti-aligned
paths carry current and are pushed up as (1 − x); aligned paths carry none and relax down
as x at the rate set by the heated film; so Δx ∝ (u − x) with u = 1 for anti-aligned pairs,
and x converges to the fraction of patterns in which a pair is anti-aligned, (1 − C_ij)/2,
when the drive and the film-heated relaxation rates match (the preset's operating point).
"""
from __future__ import annotations

import numpy as np

from .presets import DevicePreset


def film_temperature(power_W: float, p: DevicePreset) -> float:
    return p.ambient_K + p.substrate_K_per_W * max(power_W, 0.0)


def device_temperature(T_film: float, j_rel: np.ndarray, p: DevicePreset) -> np.ndarray:
    return T_film + p.self_heating_K_at_depin * np.square(j_rel)


def creep_speed(rho: np.ndarray, T: np.ndarray | float, p: DevicePreset) -> np.ndarray:
    """Creep law v/v_d for 0 < rho ≤ 1 (no threshold applied)."""
    arg = np.power(rho, -p.creep_exponent)
    arg -= 1.0
    arg *= -p.creep_barrier_K
    arg /= T
    return np.exp(arg, out=arg)


def flow_speed(rho: np.ndarray, th: np.ndarray, p: DevicePreset) -> np.ndarray:
    """Linear flow v/v_d above depinning (rho ≥ 1)."""
    return 1.0 + p.flow_slope * (rho - 1.0) / th


def wall_speed(rho: np.ndarray, th: np.ndarray, T: np.ndarray | float, p: DevicePreset) -> np.ndarray:
    """Domain-wall speed v/v_d over all regimes (pinned, creep, flow)."""
    rho = np.asarray(rho, dtype=np.float64)
    th = np.broadcast_to(np.asarray(th, dtype=np.float64), rho.shape)
    T = np.broadcast_to(np.asarray(T, dtype=np.float64), rho.shape)
    v = np.zeros_like(rho)
    creep = (rho >= p.creep_onset) & (rho < 1.0)
    flow = rho >= 1.0
    v[creep] = creep_speed(rho[creep], T[creep], p)
    v[flow] = flow_speed(rho[flow], th[flow], p)
    return v


def scaled_speed_above_onset(
    j_rel: np.ndarray, jd_rel: np.ndarray, T_film: float, scale: float, p: DevicePreset,
    out: np.ndarray, tmp: np.ndarray, *, creep: bool = True, inv_rho_given: bool = False,
) -> np.ndarray:
    """scale·wall_speed in float32 for devices known to be above their creep onset.

    Both regimes without masks (a random mask costs more than the arithmetic it saves):
    v = exp[−(T_d/T)·max(rho^(−μ) − 1, 0)] + s·max(j − j_d, 0) is the creep law below
    depinning and 1 + s·(j − j_d) above it. ``scale`` enters the exponent as a logarithm.
    ``creep=False`` skips the creep term for devices known to be past depinning;
    ``inv_rho_given`` says ``out`` already holds j_d/j.
    """
    if creep:
        if not inv_rho_given:
            np.divide(jd_rel, j_rel, out=out)  # rho^-1
        if p.creep_exponent == 0.25:  # two square roots are 15× cheaper than a power
            np.sqrt(out, out=out)
            np.sqrt(out, out=out)
        else:
            np.power(out, np.float32(p.creep_exponent), out=out)
        out -= np.float32(1.0)
        np.maximum(out, np.float32(0.0), out=out)
        np.square(j_rel, out=tmp)
        tmp *= np.float32(p.self_heating_K_at_depin)
        tmp += np.float32(T_film)
        out /= tmp
        out *= np.float32(-p.creep_barrier_K)
        out += np.float32(np.log(scale))
        np.exp(out, out=out)
        np.subtract(j_rel, jd_rel, out=tmp)
        np.maximum(tmp, np.float32(0.0), out=tmp)
        tmp *= np.float32(p.flow_slope * scale)
        out += tmp
        return out
    np.subtract(j_rel, jd_rel, out=out)
    out *= np.float32(p.flow_slope * scale)
    out += np.float32(scale)
    return out


def drive_rates(j_rel: np.ndarray, jd_rel: np.ndarray, T_film: float, p: DevicePreset) -> tuple[np.ndarray, np.ndarray]:
    """Exact (float64) wall speed v/v_d and restoring rate (1/s, unit mobility) of driven devices.

    Below the creep onset a device is pinned and relaxes like an idle one at the film
    temperature; above it, it is pushed at the creep/flow speed of its own (Joule-heated)
    temperature and its restoring hops are suppressed by the drive.
    """
    j_rel = np.asarray(j_rel, dtype=np.float64)
    jd_rel = np.asarray(jd_rel, dtype=np.float64)
    rho = j_rel / jd_rel
    moving = rho >= p.creep_onset
    T = device_temperature(T_film, j_rel, p)
    v = wall_speed(rho, 1.0 / jd_rel, T, p)
    k = np.asarray(relaxation_rate(T, p), dtype=np.float64) * driven_relaxation_factor(rho, p)
    k = np.where(moving, k, relaxation_rate(float(T_film), p))
    return v, k


def relaxation_rate(T: np.ndarray | float, p: DevicePreset) -> np.ndarray | float:
    """Néel–Arrhenius rate (1/s) of return toward the rest texture, per unit mobility."""
    if p.relax_attempt_Hz == 0.0:
        return np.zeros_like(T) if isinstance(T, np.ndarray) else 0.0
    return p.relax_attempt_Hz * np.exp(-p.relax_barrier_K / T)


def driven_relaxation_factor(rho: np.ndarray, p: DevicePreset) -> np.ndarray:
    """Relaxation of a path whose walls are being driven, relative to an idle path.

    Backward (restoring) hops run against the drive, which tilts the pinning landscape
    and suppresses them: exp(−β·j/j_d). Idle paths relax at the full Arrhenius rate.
    """
    return np.exp(-p.relax_drive_suppression * rho)


def soft_bound_step(
    x: np.ndarray,
    r_up: np.ndarray | float,
    r_down: np.ndarray | float,
    k: np.ndarray | float,
    x_rest: float,
    dt: float,
) -> np.ndarray:
    """Exact solution after dt of dx/dt = r_up(1 − x) − r_down·x − k(x − x_rest).

    Soft bounds: the push up slows as (1 − x), the push down as x, so x stays in [0, 1].
    Exact for constant rates, so a pulse split into pieces gives the same state.
    """
    lam = np.asarray(r_up + r_down + k, dtype=np.result_type(x, np.float32))
    safe = np.where(lam > 0, lam, 1.0)
    x_inf = np.where(lam > 0, (r_up + k * x_rest) / safe, x)
    return x_inf + (x - x_inf) * np.exp(-lam * dt)
