"""The analysis of a characterization: a pure function of the measured numbers (no bench).

``analyse`` fits one device's run (``protocols.characterize_plan.DevicePlan.run`` returns its
input) with the device model of ``protocols.fit`` and builds its records; ``summarise`` pools
the devices into mean parameters, spreads and the simulator's preset fields. What the fit can
and cannot identify, and the records' fields, are described in ``protocols.characterize``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from . import fit as devfit
from .retention import fit_relaxation

if TYPE_CHECKING:  # the protocol imports this module: a runtime import would be circular
    from .characterize import Characterize

NOT_IDENTIFIABLE = (
    "creep_exponent+creep_barrier_K (only mu*T_d/T enters over the visible creep band); "
    "creep_onset (creep below ~0.8 V_d is too slow to see, so the cut-off is invisible); "
    "cross_section_m2, wall_length_m (geometry: only V_d*G/A and v_d/L are electrical); "
    "self_heating_K_at_depin, substrate_K_per_W (heating only shifts T in the creep term); "
    "relax_* and rest_state (retention ~20 years at T0: nothing moves in a bench wait); "
    "cycle_noise (a pulse's change is below one read's noise: fitted but unreliable); "
    "spreads and stuck_probability (need many devices)"
)


def _recordable(d: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers, strings and arrays only (what an archive stream holds); tuples become text."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if v is None or isinstance(v, (dict, list)):
            continue
        out[k] = "-".join(map(str, v)) if isinstance(v, tuple) else v
    return out


def fit_bound(trace: np.ndarray) -> tuple[float, float]:
    """Bound G_∞ and per-pulse factor q of G_n = G_∞ + (G_0 − G_∞) qⁿ (least squares on the steps).

    Consecutive values satisfy G_{n+1} = q·G_n + (1 − q)·G_∞, a straight line.
    """
    g0, g1 = trace[:-1], trace[1:]
    if np.ptp(g0) == 0:
        return float(trace[-1]), 1.0
    q, c = np.polyfit(g0, g1, 1)
    q = float(np.clip(q, 0.0, 0.999999))
    return float(c / (1 - q)), q


def fit_creep(v: np.ndarray, r: np.ndarray, mu: float) -> dict[str, float]:
    """Fit r(V) = r_d·exp(−B((V_d/V)^μ − 1)) below depinning, r_d(1 + s(V/V_d − 1)) above.

    Only ln r_d + B and B·V_d^μ are fixed by creep data alone; V_d comes from the kink into
    flow. If no point is beyond the kink, V_d is reported as the largest V measured and
    ``depin_reached`` is False. (A rate-only fit; ``protocols.fit`` fits the reads themselves.)
    """
    ok = np.isfinite(r) & (r > 0)
    v, r = np.abs(v[ok]), r[ok]
    out = {"r_d": float("nan"), "barrier": float("nan"), "v_depin": float("nan"), "flow_slope": 0.0,
           "depin_reached": False, "points": int(ok.sum())}
    if len(v) < 2:
        return out
    def fit_at(vd: float):
        creep = v < vd
        if creep.sum() < 2:
            return None
        xk = (vd / v[creep]) ** mu - 1.0
        A = np.stack([np.ones_like(xk), -xk], axis=1)
        (ln_rd, barrier), *_ = np.linalg.lstsq(A, np.log(r[creep]), rcond=None)
        if barrier < 0:  # rates falling with drive are noise: no creep barrier, a constant rate
            barrier, ln_rd = 0.0, float(np.mean(np.log(r[creep])))
        err = float(np.sum((np.log(r[creep]) - A @ np.array([ln_rd, barrier])) ** 2))
        slope = 0.0
        flow = ~creep
        if flow.any():
            rd = np.exp(ln_rd)
            y = r[flow] / rd - 1.0
            xf = v[flow] / vd - 1.0
            slope = float(max(np.sum(xf * y) / max(np.sum(xf * xf), 1e-30), 0.0))
            pred = rd * (1 + slope * xf)
            err += float(np.sum((np.log(r[flow]) - np.log(np.maximum(pred, 1e-300))) ** 2))
        return (err, vd, ln_rd, barrier, slope, bool(flow.any()))

    best = fit_at(float(v.max()) * 1.0001)  # creep only: the kink is not in the data
    # a kink into flow must explain the data clearly better than creep alone (which has
    # one parameter fewer), else depinning is reported as not reached
    floor = 0.02**2 * len(v)
    for vd in np.geomspace(np.sort(v)[1] * 1.0001, v.max(), 60):
        cand = fit_at(float(vd))
        if cand is None or not cand[5] or best is None:
            continue
        if cand[0] < 0.5 * best[0] and best[0] > floor and (not best[5] or cand[0] < best[0]):
            best = cand
    if best is None:
        return out
    _, vd, ln_rd, barrier, slope, reached = best
    out.update(r_d=float(np.exp(ln_rd)), barrier=float(barrier), v_depin=float(vd),
               flow_slope=slope, depin_reached=reached)
    return out


def _initial_guesses(data: Mapping[str, Any], bipolar: bool, step: float) -> dict[str, Any]:
    """Starting values for the fit: the curves end at (near) the bounds of the window."""
    up, down = data["curve_up"], data["curve_down"]
    g_init = float(data["g_initial"])
    all_g = data["log"][:, 3]
    if bipolar and len(up) and len(down):
        g_x1, g_x0 = float(up[-1]), float(down[-1])  # positive pulses push x to 1, negative to 0
        w = g_x0 - g_x1
        if abs(w) < step:
            w = math.copysign(max(float(np.ptp(all_g)), step), w or 1.0)
        x0 = float(np.clip((g_x0 - g_init) / w, 0.0, 1.0))
        return {"g0": g_x0, "window": w, "x0": x0}
    g_end = float(up[-1]) if len(up) else float(all_g[-1])
    if abs(g_init - g_end) < step:
        g_end = float(all_g[np.argmax(np.abs(all_g - g_init))])
    return {"g0": g_init, "window": g_init - g_end, "x0": 0.0}


@dataclass(frozen=True)
class _Reads:
    """The run's read log by column: one row per read, with the train just before it."""

    v: np.ndarray  # V of that train (0 for a read at rest)
    n: np.ndarray  # its pulse count
    g: np.ndarray
    phase: np.ndarray
    t_full: np.ndarray  # its time at V and at V/2 (the bench's timeline)
    t_half: np.ndarray
    one_read: float  # σ of a single reading (not averaged)
    sig_k: np.ndarray  # σ of each read, its repeats averaged

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> _Reads:
        log = data["log"]
        repeats = log[:, 6]
        one_read = float(data["read_sigma"]) * math.sqrt(data.get("read_repeats", 1))
        if np.all(repeats > 1):  # pooled over every read's repeats
            one_read = float(np.sqrt(np.mean(log[:, 4] ** 2 * log[:, 6])))
        return cls(v=log[:, 0], n=log[:, 2].astype(int), g=log[:, 3], phase=log[:, 5].astype(int),
                   t_full=log[:, 7], t_half=log[:, 8], one_read=one_read, sig_k=one_read / np.sqrt(repeats))


def analyse(data: Mapping[str, Any], p: Characterize) -> dict[str, Any]:
    """Fit one device's run; returns its parameters, per-point ΔG arrays and records.

    ``data`` is what ``DevicePlan.run`` returned; the per-point arrays and the
    ``amplitude_curves`` records are described in ``protocols.characterize``.
    """
    sigma = float(data["read_sigma"])
    step = float(data["step"])
    r = _Reads.of(data)
    bipolar, d_pos = _polarity(data, r, step)
    guess = _initial_guesses(data, bipolar, step)
    vd_guesses, rate_guess = _fit_starts(data, r, guess, step)
    result: dict[str, Any] = {
        "lines": data["lines"],
        "g_initial_S": float(data["g_initial"]),
        "read_sigma_S": r.one_read,
        "read_sigma_mean_S": sigma,
        "polarity": "bipolar" if bipolar else "unipolar",
        "positive_direction": "down" if d_pos < 0 else "up",
        "onset_V": float(data["onset_V"]),
        "sweep_stop": data["sweep_stop"],
        "not_identifiable": NOT_IDENTIFIABLE,
    }
    params, model, replay = _fit(data, r, p, bipolar, guess, vd_guesses, rate_guess)
    result.update(params)
    g_max = float(result["g_max_S"])
    window = float(result.get("window_S", math.nan))
    result["contrast"] = window / g_max if g_max > 0 else math.nan
    result["read_noise_window"] = result["read_sigma_S"] / window if window > 0 else math.nan
    result["creep_barrier_K"] = (result["creep_log_slope"] / p.creep_exponent * p.ambient_K
                                 if np.isfinite(result["creep_log_slope"]) else math.nan)
    pts_a = _points(data, r, model, replay, p)
    result.update({
        "amplitudes_V": pts_a[:, 0],
        "delta_g_S": pts_a[:, 5],
        "fit_delta_g_S": pts_a[:, 6],
        "measured_delta_g_S": pts_a[:, 3],
        "fit_measured_delta_g_S": pts_a[:, 4],
        "rates_per_s": pts_a[:, 7],
        "dose_s": pts_a[:, 1],
        "half_dose_s": pts_a[:, 11],
        "delta_g_err_S": pts_a[:, 12],
        "window_left": pts_a[:, 13],
        "moved": pts_a[:, 9],
        "phase": pts_a[:, 10],
    })
    # width sweep: |ΔG| against width, and the exponent β of Λ ∝ (time at V)^β at one amplitude
    wsweep = data["width_sweep"]
    if len(wsweep):
        result["widths_s"] = wsweep[:, 1]
        result["width_delta_g_S"] = wsweep[:, 4] - wsweep[:, 3]
        result["width_exponent"] = _width_exponent(wsweep, model, replay, r.t_full, r.t_half, step)
    else:
        result["width_exponent"] = math.nan
    result["curve_up_S"] = data["curve_up"]
    result["curve_down_S"] = data["curve_down"]
    result.update(_retention(data["retention"], result["g_max_S"], sigma))
    result["amplitude_curves"] = _amplitude_records(result, pts_a, model, p)
    return result


def _polarity(data: Mapping[str, Any], r: _Reads, step: float) -> tuple[bool, float]:
    """(bipolar?, the change positive pulses made), from every change each polarity made
    (sweep, widths, curves): the curves alone may sit at a bound and show only noise."""
    change = {1.0: 0.0, -1.0: 0.0}
    prev = float(data["g_initial"])
    for k in range(len(r.g)):
        if r.n[k] > 0 and r.v[k] != 0:
            change[float(np.sign(r.v[k]))] += r.g[k] - prev
        prev = r.g[k]
    d_pos, d_neg = change[1.0], change[-1.0]
    bipolar = bool(np.sign(d_pos) != np.sign(d_neg) and min(abs(d_pos), abs(d_neg)) > 3 * step)
    return bipolar, d_pos


def _fit_starts(data: Mapping[str, Any], r: _Reads, guess: Mapping[str, Any], step: float) -> tuple[list[float], float]:
    """V_d starts (the kink is non-smooth: one start each) and the rate guess; none if nothing moved."""
    onset = float(data["onset_V"])
    if not np.isfinite(onset):
        return [], math.nan
    amps_all = np.abs(r.v[r.n > 0])
    v_hi = float(amps_all.max()) if amps_all.size else 1.0
    vd_guesses = [x for x in onset * np.array([1.0, 1.12, 1.3, 1.55, 1.9]) if x <= 1.25 * v_hi]
    return vd_guesses, _rate_guess(data, r, guess, step)


def _rate_guess(data: Mapping[str, Any], r: _Reads, guess: Mapping[str, Any], step: float) -> float:
    """r_d from the curve trains just past depinning (their rate is ≈ r_d), soft bound removed
    with the guessed window; from the sweep's moving points if there are none."""
    sweep = data["sweep"]
    moved_pts = sweep[sweep[:, 6] > 0] if len(sweep) else sweep
    rates = []
    levels = data.get("curve_levels_V")
    low = float(np.min(levels)) if levels is not None and len(levels) else math.nan
    w_g = guess["window"] if abs(guess["window"]) > 0 else step
    for k in np.flatnonzero((r.phase == devfit.CURVE) & np.isclose(np.abs(r.v), low)):
        if k == 0 or r.t_full[k] <= 0:
            continue
        xb, xa = (guess["g0"] - r.g[k - 1]) / w_g, (guess["g0"] - r.g[k]) / w_g
        if 0 <= xb < 0.8 and xb < xa < 1:
            rates.append(-math.log((1 - xa) / (1 - xb)) / r.t_full[k])
    if not rates:
        for s in moved_pts:
            frac = abs(s[3] - s[2]) / max(abs(w_g), step)
            rates.append(-math.log(max(1 - min(frac, 0.9), 1e-3)) / max(s[1], 1e-9))
    return float(np.median(rates)) if rates else 1.0


_UNFITTED = ("threshold_V", "rate_at_depin_per_s", "flow_slope", "creep_log_slope", "cycle_noise", "window_S",
             "fit_residual_rms")


def _fit(data: Mapping[str, Any], r: _Reads, p: Characterize, bipolar: bool, guess: Mapping[str, Any],
         vd_guesses: list[float], rate_guess: float
         ) -> tuple[dict[str, Any], devfit.DeviceModel | None, Mapping[str, np.ndarray] | None]:
    """(parameters, model, the model's replay of the run) of the maximum-likelihood fit."""
    fitted = None
    if vd_guesses:
        fitted = devfit.fit_device(
            r.v, r.t_full, r.t_half, r.n, r.g, r.sig_k, bipolar=bipolar, creep_exponent=p.creep_exponent,
            g0_guess=guess["g0"], window_guess=guess["window"], x0_guess=guess["x0"], v_depin_guesses=vd_guesses,
            rate_guess=rate_guess)
    if fitted is None:  # nothing moved: no rate law; the window and threshold are unknown
        params = {k: math.nan for k in _UNFITTED}
        params.update(g_max_S=float(data["g_initial"]), g_min_S=math.nan, initial_state=math.nan, fit_reads=len(r.g))
        return params, None, None
    return devfit.model_parameters(fitted), fitted.model, fitted.model.replay(r.v, r.t_full, r.t_half)


def _points(data: Mapping[str, Any], r: _Reads, model: devfit.DeviceModel | None,
            replay: Mapping[str, np.ndarray] | None, p: Characterize) -> np.ndarray:
    """ΔG per point (a sweep point, or one train of the curves), one row each.

    Measured, and the model's for the same dose and starting state; both also normalised to
    one pulse of width_s on the device as found (the learning rule). Rates: measured exponent
    per second at level. Columns: V, dose, G before, measured ΔG, fit's ΔG, normalised ΔG,
    reference ΔG, rate, count, moved, phase, half dose, normalised error, window left,
    measured error.
    """
    g, sig_k, t_full, t_half = r.g, r.sig_k, r.t_full, r.t_half
    spans = [(float(s[0]), int(s[4]), int(s[5]), bool(s[6]), devfit.SWEEP) for s in data["sweep"]]
    spans += [(float(r.v[k]), k, k, True, devfit.CURVE) for k in np.flatnonzero(r.phase == devfit.CURVE)]
    pts = []
    for vv, first, last, moved, ph in spans:
        dose = float(np.sum(t_full[first:last + 1]))  # time at full drive (the timeline's)
        g_b = float(g[first - 1]) if first > 0 else float(data["g_initial"])
        meas = float(g[last]) - g_b
        meas_err = float(math.hypot(sig_k[first - 1] if first > 0 else sig_k[0], sig_k[last]))  # read noise only
        left = err = math.nan
        if model is not None:
            x_b = float(replay["x_before"][first])
            fit_raw = float(model.conductance(replay["x_after"][last]) - model.conductance(x_b))
            ref = model.reference_delta_g(vv, p.width_s)
            kappa = _normaliser(model, vv, dose, float(np.sum(t_half[first:last + 1])), x_b, p.width_s)
            norm = meas * kappa if np.isfinite(kappa) else math.nan
            err = abs(kappa) * meas_err if np.isfinite(kappa) else math.nan
            left = abs(model.target(vv) - x_b)  # fraction of the window still ahead in this direction
            rem = model.window_S * (model.target(vv) - x_b)
            frac = -meas / rem if abs(rem) > 0 else math.nan
            rate = -math.log(1 - frac) / dose if np.isfinite(frac) and frac < 1 and dose > 0 else math.nan
        else:
            fit_raw = ref = norm = rate = math.nan
        pts.append((vv, dose, g_b, meas, fit_raw, norm, ref, rate, int(np.sum(r.n[first:last + 1])), moved, ph,
                    float(np.sum(t_half[first:last + 1])), err, left, meas_err))
    return np.array(pts, dtype=float).reshape(-1, 15)


def _retention(ret: np.ndarray, g_max: float, sigma: float) -> dict[str, Any]:
    """The relaxation fit of the retention reads, or the lower bound on τ they set."""
    relax = fit_relaxation(ret[:, 0], ret[:, 1], noise=sigma) if len(ret) >= 3 else None
    out: dict[str, Any] = {"relaxation": relax}
    if len(ret) >= 2:
        t_max = float(ret[:, 0].max() - ret[:, 0].min())
        rest_gap = abs(float(ret[0, 1]) - g_max) if np.isfinite(g_max) else math.nan
        seen = relax is not None and np.isfinite(relax["tau_s"])
        # no change above 3 σ of a difference in t_max, from a state rest_gap away from rest
        out["retention_tau_min_s"] = (math.nan if seen or not np.isfinite(rest_gap) or t_max <= 0
                                      else t_max * rest_gap / (3 * math.sqrt(2) * sigma))
    return out

def _normaliser(model: devfit.DeviceModel, v: float, t_full: float, t_half: float, x_b: float,
                width_ref: float) -> float:
    """Factor turning a measured ΔG over a point into ΔG of one width_ref pulse at x0.

    The model's ratio of the two (reference ÷ the point's own dose and state): the data
    keep their deviation from the model; the soft bound, the train's real time at V and its
    half-drive edges are removed. Computed with log rates, so it stays finite where the
    model's rate underflows.
    """
    law = model.law
    f_b = max(model.conductance(x_b) / model.g0_S, 1e-6)
    f_0 = max(model.conductance(model.x0) / model.g0_S, 1e-6)
    lr_full = law.log_rate(abs(v) * f_b)
    lr_half = law.log_rate(0.5 * abs(v) * f_b)
    lr_ref = law.log_rate(abs(v) * f_0)
    if not np.isfinite(lr_full) or not np.isfinite(lr_ref):
        return math.nan
    time_eff = t_full + (t_half * math.exp(min(lr_half - lr_full, 50.0)) if np.isfinite(lr_half) else 0.0)
    if time_eff <= 0:
        return math.nan
    lam_ref = math.exp(lr_ref) * width_ref
    lam_pt = math.exp(lr_full) * time_eff
    phi = lambda z: -math.expm1(-z) / z if z > 1e-12 else 1.0  # noqa: E731
    t = model.target(v)
    rem_pt = t - x_b
    rem_ref = t - model.x0
    if abs(rem_pt) < 1e-9:
        return math.nan
    return (rem_ref / rem_pt) * (math.exp(lr_ref - lr_full) * width_ref / time_eff) * (phi(lam_ref) / phi(lam_pt))


def _width_exponent(wsweep: np.ndarray, model: devfit.DeviceModel | None, replay: Mapping[str, np.ndarray] | None,
                    t_full: np.ndarray, t_half: np.ndarray, step: float) -> float:
    """β of Λ per pulse ∝ (time at V per pulse)^β at one amplitude (1 for a rate law)."""
    if model is None or replay is None:
        return math.nan
    xs, ys = [], []
    for s in wsweep:
        vv, cnt, gb, ga, first, last = s[0], s[2], s[3], s[4], int(s[5]), int(s[6])
        if abs(ga - gb) <= step or cnt <= 0:
            continue
        x_b = float(replay["x_before"][first])
        rem = model.window_S * (model.target(vv) - x_b)
        frac = -(ga - gb) / rem if abs(rem) > 0 else math.nan
        if not (np.isfinite(frac) and 0 < frac < 1):
            continue
        tf, th = float(np.sum(t_full[first:last + 1])), float(np.sum(t_half[first:last + 1]))
        lam_full = -math.log(1 - frac) - model.law.rate(abs(vv) / 2) * th
        if lam_full <= 0 or tf <= 0:
            continue
        xs.append(math.log(tf / cnt))
        ys.append(math.log(lam_full / cnt))
    if len(set(np.round(xs, 9))) < 2:
        return math.nan
    return float(np.polyfit(xs, ys, 1)[0])


def _amplitude_records(res: Mapping[str, Any], pts: np.ndarray, model: devfit.DeviceModel | None,
                       p: Characterize) -> list[dict[str, Any]]:
    """One record per polarity: ΔG against amplitude, with the fit on the same amplitudes."""
    out = []
    lines = "-".join(res["lines"])
    g0 = float(res["g_max_S"]) if np.isfinite(res["g_max_S"]) else float(res["g_initial_S"])
    for pol, name in ((1.0, "positive"), (-1.0, "negative")):
        sel = np.sign(pts[:, 0]) == pol
        if not sel.any():
            continue
        amp = np.abs(pts[sel, 0])
        dense = np.geomspace(amp.min(), amp.max(), 64)
        fit_dense = (np.array([model.reference_delta_g(pol * x, p.width_s) for x in dense])
                     if model is not None else np.full(dense.size, math.nan))
        out.append({
            "lines": lines,
            "polarity": name,
            "amplitude_V": amp,
            "delta_g_S": pts[sel, 5],
            "fit_delta_g_S": pts[sel, 6],
            "delta_g_rel": pts[sel, 5] / g0,
            "fit_delta_g_rel": pts[sel, 6] / g0,
            "measured_delta_g_S": pts[sel, 3],
            "fit_measured_delta_g_S": pts[sel, 4],
            "dose_s": pts[sel, 1],
            "half_dose_s": pts[sel, 11],
            "delta_g_err_S": pts[sel, 12],
            "measured_delta_g_err_S": pts[sel, 14],
            "window_left": pts[sel, 13],
            "g_before_S": pts[sel, 2],
            "count": pts[sel, 8],
            "moved": pts[sel, 9],
            "from_curve": pts[sel, 10] == devfit.CURVE,
            "rate_per_s": pts[sel, 7],
            "reference_width_s": p.width_s,
            "threshold_V": float(res["threshold_V"]),
            "onset_V": float(res["onset_V"]),
            "fit_amplitude_V": dense,
            "fit_curve_delta_g_S": fit_dense,
            "read_sigma_mean_S": float(res["read_sigma_mean_S"]),
        })
    return out


def _spread(values: list[float]) -> float:
    v = np.array([x for x in values if np.isfinite(x) and x > 0])
    return float(np.std(np.log(v), ddof=1)) if v.size >= 2 else math.nan


def _mean(devices: list[dict[str, Any]], key: str) -> float:
    v = np.array([d.get(key, math.nan) for d in devices], dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _gmean(devices: list[dict[str, Any]], key: str) -> float:
    v = np.array([d.get(key, math.nan) for d in devices], dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.mean(np.log(v)))) if v.size else float("nan")


def summarise(devices: list[dict[str, Any]], p: Characterize) -> dict[str, Any]:
    """Mean parameters over the devices, their spreads, and the matching preset fields."""
    g_max, g_min = _mean(devices, "g_max_S"), _mean(devices, "g_min_S")
    threshold = _gmean(devices, "threshold_V")
    # the preset's flow slope is per nominal j_d: a device's own slope × j_d,nominal / j_d,device
    flow = [d["flow_slope"] * threshold / d["threshold_V"] for d in devices
            if np.isfinite(d.get("flow_slope", math.nan)) and np.isfinite(d.get("threshold_V", math.nan))]
    out: dict[str, Any] = {
        "n_devices": len(devices),
        "polarity": "bipolar" if sum(d["polarity"] == "bipolar" for d in devices) * 2 > len(devices) else "unipolar",
        "g_max_S": g_max,
        "g_min_S": g_min,
        "window_S": g_max - g_min,
        "threshold_V": threshold,
        "onset_V": _gmean(devices, "onset_V"),
        "rate_at_depin_per_s": _gmean(devices, "rate_at_depin_per_s"),
        "flow_slope": float(np.mean(flow)) if flow else math.nan,
        "creep_log_slope": _gmean(devices, "creep_log_slope"),
        "cycle_noise": _mean(devices, "cycle_noise"),
        "read_sigma_S": _mean(devices, "read_sigma_S"),
        "width_exponent": _mean(devices, "width_exponent"),
        "retention_tau_min_s": _mean(devices, "retention_tau_min_s"),
        "not_identifiable": NOT_IDENTIFIABLE,
        "preset": {},
        "devices": devices,
    }
    out["preset"] = _preset(out, devices, p)
    return out


def _preset(s: Mapping[str, Any], devices: list[dict[str, Any]], p: Characterize) -> dict[str, Any]:
    """The summary ``s`` as the simulator's preset fields (finite values only)."""
    g_max, window, threshold, kappa = s["g_max_S"], s["window_S"], s["threshold_V"], s["creep_log_slope"]
    preset: dict[str, Any] = {
        "polarity": s["polarity"],
        "g_max_S": g_max,
        "g_min_S": s["g_min_S"],
        "read_noise_window": s["read_sigma_S"] / window if window > 0 else float("nan"),
        "creep_exponent": p.creep_exponent,  # assumed: not identifiable (see protocols.characterize)
        "train_pulse_width_s": p.width_s,
    }
    if p.v_read is not None:
        preset["read_voltage_V"] = p.v_read
    if np.isfinite(threshold):
        # electrical identifiables, converted with the assumed geometry (A, L): V_d·G/A and v_d/L
        preset["j_depin_A_per_m2"] = threshold * g_max / p.cross_section_m2
        preset["cross_section_m2"] = p.cross_section_m2
        preset["wall_length_m"] = p.wall_length_m
        preset["wall_velocity_depin_m_per_s"] = s["rate_at_depin_per_s"] * p.wall_length_m
        preset["flow_slope"] = s["flow_slope"]
        preset["ambient_K"] = p.ambient_K
        if np.isfinite(kappa):
            preset["creep_barrier_K"] = kappa / p.creep_exponent * p.ambient_K  # κ·T0/μ for the assumed μ
    if s["polarity"] == "bipolar" and np.isfinite(_mean(devices, "initial_state")):
        preset["initial_state"] = float(np.clip(_mean(devices, "initial_state"), 0.0, 1.0))
    if len(devices) >= 3:  # a spread from n devices is uncertain by ~1/√(2(n−1)): none from fewer
        preset["g_spread"] = _spread([d["g_max_S"] for d in devices])
        preset["threshold_spread"] = _spread([d["threshold_V"] for d in devices])
        preset["rate_spread"] = _spread([d["rate_at_depin_per_s"] for d in devices])
    relax = [d["relaxation"] for d in devices if d.get("relaxation") is not None]
    if relax:
        taus = np.array([r["tau_s"] for r in relax])
        if np.isfinite(taus).any():
            k = float(np.mean(1.0 / taus[np.isfinite(taus)]))
            g_inf = float(np.mean([r["g_inf"] for r in relax if np.isfinite(r["tau_s"])]))
            preset["relax_attempt_Hz"] = p.attempt_Hz  # assumed: f0 and E_b are degenerate at one T
            preset["relax_barrier_K"] = float(p.ambient_K * np.log(p.attempt_Hz / k))
            if window > 0:
                preset["rest_state"] = float(np.clip((g_max - g_inf) / window, 0, 1))
    return {k: v for k, v in preset.items() if isinstance(v, str) or (v is not None and np.isfinite(v))}
