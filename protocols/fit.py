"""The device model a characterization is fitted with, and its fit (pure functions, no bench).

One two-terminal device, read through its conductance, driven by trains of pulses:

  read-out   G = g0 − W·x,  x ∈ [0, 1]   (W = a·G0 the magnetoresistive window, signed)
  drive      a train moves x toward its target t (t = 1 for every pulse of a unipolar device;
             t = 1 for V > 0 and 0 for V < 0 on a bipolar one, W's sign says which way G goes)
             by the soft-bound law x ← t + (x − t)·exp(−Λ)
  rate law   Λ = r(V_j)·t_full + r(V_j/2)·t_half, with V_j = |V|·G/g0 (current density ∝ V·G),
               r = r_d·exp[−(κ/μ)((V_d/V)^μ − 1)]     below depinning (creep)
               r = r_d·(1 + s·(V/V_d − 1))             above it (linear flow)
  dose       t_full, t_half: the time the train really held the device at V and at V/2. The
             V/2 scheme sets its two bus levels one command after the other, so each pulse has
             half-drive edges and (on some benches) a full-drive time that is not the nominal
             width; the protocol takes both from the timeline the bench reports for each pulse
             (``ApplyResult.timeline``), or the nominal width when there is none.
  noise      every pulse phase (V/2, V, V/2) multiplies its exponent by its own lognormal
             cycle-to-cycle factor; each read adds read noise.

The parameters are exactly the ones this read-out can identify: g0, W, (x0 for a bipolar
device), V_d, r_d, s, κ = μ·T_d/T (the creep log-slope d ln r / d ln V just below V_d), and
σ_c (cycle noise, weakly). μ and T_d separately are not: over the ≲ 20 % of V_d below
depinning where creep is fast enough to see, (V_d/V)^μ − 1 ≈ μ·(V_d/V − 1), so only their
product enters (see ``protocols.characterize`` for the full list and why).

The fit is a maximum-likelihood fit of every read of the run (not of per-point rates): a
scalar extended Kalman filter replays the whole pulse sequence (soft bound, current feedback,
half-drive phases) and carries the state's uncertainty from cycle noise, so reads far apart
are correlated as they are on the device and no read is wasted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares

# phases of the measurement a segment belongs to (for bookkeeping and records)
NOISE, SWEEP, WIDTH, CURVE, RETENTION = range(5)

_MAX_STEP = 0.15  # largest exponent per integration step (midpoint rule follows the feedback)
_START_NFEV, _REFINED, _REFINE_NFEV = 20, 1, 200  # fit effort: short starts, the best refined


def pulse_doses(timeline: Sequence[tuple[float, str, float]], v_a: float, v_b: float) -> tuple[float, float]:
    """(time at full drive, time at half drive) of a train from its level timeline.

    ``timeline`` lists (t, bus, V) at every level change; the bus set to ``v_a`` drives line
    a, the one set to ``v_b`` line b, so the device sees (level a) − (level b). Intervals
    where the device sees the full |v_a − v_b| count as full drive, those where it sees
    about half of it as half drive.
    """
    full_v = abs(v_a - v_b)
    if not timeline or full_v == 0:
        return math.nan, math.nan
    events = sorted(timeline, key=lambda e: e[0])
    side: dict[str, float] = {}  # bus → +1 (line a) or −1 (line b)
    level: dict[str, float] = {}
    t_full = t_half = 0.0
    t_prev = events[0][0]
    for t, bus, volts in events:
        dev = abs(sum(side.get(b, 0.0) * lv for b, lv in level.items()))
        dt = t - t_prev
        if dt > 0 and dev > 0:
            if dev > 0.75 * full_v:
                t_full += dt
            elif dev > 0.25 * full_v:
                t_half += dt
        if volts != 0.0 and bus not in side:
            side[bus] = 1.0 if abs(volts - v_a) <= abs(volts - v_b) else -1.0
        level[bus] = volts
        t_prev = t
    return t_full, t_half


@dataclass(frozen=True)
class RateLaw:
    """r(V) in 1/s: creep below ``v_depin_V``, linear flow above (continuous at V_d)."""

    rate_at_depin_per_s: float
    v_depin_V: float
    creep_log_slope: float  # κ = μ·T_d/T: d ln r / d ln V at V_d from below
    flow_slope: float  # s = d(r/r_d)/d(V/V_d) above depinning
    creep_exponent: float = 0.25  # μ (assumed: not identifiable, see module docstring)

    def log_rate(self, v: float) -> float:
        v = abs(v)
        if v <= 0:
            return -math.inf
        if v >= self.v_depin_V:
            return math.log(self.rate_at_depin_per_s) + math.log1p(self.flow_slope * (v / self.v_depin_V - 1.0))
        mu = self.creep_exponent
        return math.log(self.rate_at_depin_per_s) - (self.creep_log_slope / mu) * ((self.v_depin_V / v) ** mu - 1.0)

    def rate(self, v: float) -> float:
        lr = self.log_rate(v)
        return math.exp(lr) if lr > -700 else 0.0


@dataclass(frozen=True)
class DeviceModel:
    g0_S: float  # G at x = 0
    window_S: float  # W: G(0) − G(1) (negative if G rises with x)
    x0: float  # state at the start of the run
    law: RateLaw
    bipolar: bool
    cycle_noise: float = 0.0

    def target(self, v: float) -> float:
        return 1.0 if (not self.bipolar or v > 0) else 0.0

    def conductance(self, x: float) -> float:
        return self.g0_S - self.window_S * x

    def exponent_rate(self, v: float, t_full: float, t_half: float, x: float) -> float:
        """Λ of a train at state x (full-drive and half-drive time)."""
        f = max(self.conductance(x) / self.g0_S, 1e-6)
        vj = abs(v) * f
        lam = self.law.rate(vj) * t_full
        if t_half > 0:
            lam += self.law.rate(0.5 * vj) * t_half
        return lam

    def train(self, x: float, v: float, t_full: float, t_half: float) -> tuple[float, float]:
        """(state after, total exponent) of a train from state x (stepped to follow the feedback)."""
        if v == 0 or (t_full <= 0 and t_half <= 0):
            return x, 0.0
        t = self.target(v)
        lam = self.exponent_rate(v, t_full, t_half, x)
        steps = max(1, min(int(lam / _MAX_STEP) + 1, 1000))
        total = 0.0
        for _ in range(steps):
            x_mid = t + (x - t) * math.exp(-0.5 * lam / steps)
            dl = self.exponent_rate(v, t_full, t_half, x_mid) / steps
            x = t + (x - t) * math.exp(-dl)
            total += dl
        return x, total

    def replay(self, v: Sequence[float], t_full: Sequence[float], t_half: Sequence[float]) -> dict[str, np.ndarray]:
        """State before/after, exponent and predicted read after every segment (open loop)."""
        n = len(v)
        before, after, lam, g = (np.empty(n) for _ in range(4))
        x = self.x0
        for k in range(n):
            before[k] = x
            x, lam[k] = self.train(x, float(v[k]), float(t_full[k]), float(t_half[k]))
            after[k] = x
            g[k] = self.conductance(x)
        return {"x_before": before, "x_after": after, "exponent": lam, "g": g}

    def reference_delta_g(self, v: float, width_s: float, x: float | None = None) -> float:
        """ΔG (S) of one pulse held exactly ``width_s`` at V (no half-drive edges) from state x (default x0)."""
        x = self.x0 if x is None else x
        f = max(self.conductance(x) / self.g0_S, 1e-6)
        lam = self.law.rate(abs(v) * f) * width_s
        t = self.target(v)
        return float(-self.window_S * (t - x) * -math.expm1(-lam))


# ------------------------------------------------------------------ the fit

_NAMES = ("g0_S", "window_S", "x0", "log_rate_at_depin", "log_v_depin", "log_creep_log_slope", "flow_slope",
          "log_cycle_noise")


def _model(theta: np.ndarray, bipolar: bool, mu: float) -> DeviceModel:
    g0, w, x0, lrd, lvd, lk, s, lsc = (float(t) for t in theta)
    law = RateLaw(math.exp(lrd), math.exp(lvd), math.exp(lk), max(s, 0.0), mu)
    return DeviceModel(g0, w, x0 if bipolar else 0.0, law, bipolar, math.exp(lsc))


def _filter_terms(theta: np.ndarray, absv: list[float], t_full: list[float], t_half: list[float], count: list[int],
                  target: list[float], g: np.ndarray, sigma: np.ndarray, mu: float, bipolar: bool,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Innovations of a scalar extended Kalman filter of the state through the run.

    Cycle noise makes every train's exponent random: n pulses whose three phases each draw
    a factor of relative variance e^{σ_c²} − 1 give Λ a relative variance (e^{σ_c²} − 1)·h/n,
    h = Σλ²/(Σλ)² over one pulse's phases. The state is then a random walk around the
    model; the filter carries its variance P and compares each read with its prediction
    (innovation ν, variance S = W²P + σ²). Returns (ν/√S, ln(S/σ²), predicted G), so that
    Σ(ν²/S + ln(S/σ²)) is −2 ln L up to a constant.
    """
    g0, w, x0, lrd, lvd, lk, s, lsc = (float(t) for t in theta)
    x = x0 if bipolar else 0.0
    P = 0.0
    rd, vd, kmu = math.exp(lrd), math.exp(lvd), math.exp(lk) / mu
    s = max(s, 0.0)
    c2 = math.expm1(math.exp(2 * lsc))
    a_rel = w / g0
    exp = math.exp
    N = len(absv)
    z, lnS, pred = np.empty(N), np.empty(N), np.empty(N)

    def rate(vv: float) -> float:
        if vv <= 0.0:
            return 0.0
        if vv >= vd:
            return rd * (1.0 + s * (vv / vd - 1.0))
        e = kmu * ((vd / vv) ** mu - 1.0)
        return rd * exp(-e) if e < 700.0 else 0.0

    def phases(v: float, tf: float, th: float, xx: float) -> tuple[float, float]:
        f = 1.0 - a_rel * xx
        vj = v * (f if f > 1e-6 else 1e-6)
        return rate(vj) * tf, (rate(0.5 * vj) * th if th > 0.0 else 0.0)

    for k in range(N):
        v = absv[k]
        tf, th, n = t_full[k], t_half[k], count[k]
        if v > 0.0 and (tf > 0.0 or th > 0.0):
            t = target[k]
            lf, lh = phases(v, tf, th, x)
            lam = lf + lh
            h = (lf * lf + 0.5 * lh * lh) / (lam * lam) if lam > 0 else 0.0  # two half phases per pulse
            x_start = x
            steps = int(lam / _MAX_STEP) + 1
            if steps > 1000:
                steps = 1000
            total = 0.0
            for _ in range(steps):
                x_mid = t + (x - t) * exp(-0.5 * lam / steps)
                lf, lh = phases(v, tf, th, x_mid)
                dl = (lf + lh) / steps
                x = t + (x - t) * exp(-dl)
                total += dl
            decay = exp(-total)
            P = P * decay * decay + ((x_start - t) * decay * total) ** 2 * c2 * h / max(n, 1)
        gp = g0 - w * x
        R = sigma[k] * sigma[k]
        S = w * w * P + R
        nu = g[k] - gp
        z[k] = nu / math.sqrt(S)
        lnS[k] = math.log(S / R)
        pred[k] = gp
        K = -w * P / S  # gain on x
        x += K * nu
        P = (1.0 + K * w) * P
        x = min(max(x, 0.0), 1.0)
    return z, lnS, pred


@dataclass
class FitResult:
    model: DeviceModel
    residual_rms: float  # innovations in units of their predicted σ (≈ 1 for a good fit)
    n_reads: int
    errors: dict[str, float] = field(default_factory=dict)  # 1-σ: relative for log parameters
    success: bool = True
    message: str = ""


def fit_device(
    v: np.ndarray, t_full: np.ndarray, t_half: np.ndarray, count: np.ndarray, g: np.ndarray,
    sigma_S: "float | np.ndarray", *, bipolar: bool, creep_exponent: float, g0_guess: float,
    window_guess: float, x0_guess: float, v_depin_guesses: Sequence[float], rate_guess: float,
) -> FitResult:
    """Maximum-likelihood fit of the device model to every read.

    The depinning voltage enters non-smoothly (the kink), so a short fit starts from each of
    ``v_depin_guesses`` and the best is carried on.
    """
    v, t_full, t_half, count, g = (np.asarray(a, dtype=float) for a in (v, t_full, t_half, count, g))
    sig_k = np.maximum(np.broadcast_to(np.asarray(sigma_S, dtype=float), g.shape), 1e-30).copy()
    sigma = float(np.max(sig_k))
    mu = creep_exponent
    absv = [abs(float(x)) for x in v]
    tfl, thl = [float(x) for x in t_full], [float(x) for x in t_half]
    cl = [int(x) for x in count]
    tl = [1.0 if (not bipolar or x > 0) else 0.0 for x in v]

    def resid(theta: np.ndarray) -> np.ndarray:
        z, lnS, _ = _filter_terms(theta, absv, tfl, thl, cl, tl, g, sig_k, mu, bipolar)
        return np.concatenate([z, np.sqrt(np.maximum(lnS, 0.0))])

    lo_a, hi_a, x_scale = _bounds(g0_guess, window_guess, sigma)

    def solve(theta0: np.ndarray, nfev: int, free: np.ndarray | None = None):
        """least_squares over the ``free`` parameters (all by default), the rest held at theta0."""
        theta0 = np.clip(theta0, lo_a + 1e-9 * np.abs(lo_a), hi_a - 1e-9 * np.abs(hi_a))
        free = np.ones(theta0.size, bool) if free is None else free

        def r(sub: np.ndarray) -> np.ndarray:
            th = theta0.copy()
            th[free] = sub
            return resid(th)

        sol = least_squares(r, theta0[free], bounds=(lo_a[free], hi_a[free]), x_scale=x_scale[free], method="trf",
                            max_nfev=nfev, diff_step=1e-4)
        full = theta0.copy()
        full[free] = sol.x
        return full, sol

    # a large cycle noise lets the filter follow any data with any rate law: the starts hold
    # it at a typical value, the two best then fit it with the rest
    held = np.ones(len(_NAMES), bool)
    held[7] = False
    starts = []
    for vd in v_depin_guesses:
        theta0 = np.array([g0_guess, window_guess, np.clip(x0_guess, 0.0, 1.0), math.log(max(rate_guess, 1e-6)),
                           math.log(vd), math.log(10.0), 1.0, math.log(0.3)])
        try:
            th, sol = solve(theta0, _START_NFEV, held)
        except (ValueError, FloatingPointError):  # pragma: no cover - defensive
            continue
        starts.append((float(np.sum(sol.fun**2)), th))
    if not starts:
        raise RuntimeError("device fit failed from every start")
    best = None
    for _, th in sorted(starts, key=lambda c: c[0])[:_REFINED]:
        th, sol = solve(th, _REFINE_NFEV)
        cost = float(np.sum(sol.fun**2))
        if best is None or cost < best[0]:
            best = (cost, th, sol)
    _, theta, sol = best
    n = len(g)

    def nll(th: np.ndarray) -> float:
        return float(np.sum(resid(th) ** 2))

    errors = _errors(nll, theta, lo_a, hi_a, x_scale)
    z = sol.fun[:n]
    return FitResult(_model(theta, bipolar, mu), float(math.sqrt(np.mean(z**2))), n, errors,
                     bool(sol.success), str(sol.message))


def _bounds(g0_guess: float, window_guess: float, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower bounds, upper bounds, scales) of the fit's parameters (the order of ``_NAMES``)."""
    span = abs(window_guess) if window_guess else abs(g0_guess) * 0.01
    lo = [g0_guess - 10 * span - 10 * sigma, -np.inf, 0.0, math.log(1e-6), math.log(1e-3), math.log(0.3), 0.0,
          math.log(0.02)]
    hi = [g0_guess + 10 * span + 10 * sigma, np.inf, 1.0, math.log(1e6), math.log(1e3), math.log(200.0), 50.0,
          math.log(1.0)]
    # G(x = 1) = g0 − W stays positive: |W| < g0 (a guess from an unsaturated curve is a floor)
    if window_guess >= 0:
        lo[1], hi[1] = 0.0, max(abs(g0_guess), 4 * span + 10 * sigma)
    else:
        lo[1], hi[1] = -max(10 * abs(g0_guess), 4 * span + 10 * sigma), 0.0
    return np.array(lo), np.array(hi), np.array([sigma, max(span, sigma), 0.1, 0.3, 0.1, 0.3, 0.3, 0.5])


def _errors(nll, theta: np.ndarray, lo: np.ndarray, hi: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    """1-σ errors from the curvature of −2 ln L at the optimum (central differences).

    Parameters at a bound (or that do not change −2 ln L, like x0 of a unipolar device) are
    held; their error is reported as NaN.
    """
    h = 1e-3 * scale
    at_bound = (theta - lo < 2 * h) | (hi - theta < 2 * h)
    free = np.flatnonzero(~at_bound)
    k = free.size
    H = np.zeros((k, k))
    f0 = nll(theta)

    def f(*steps: tuple[int, float]) -> float:
        th = theta.copy()
        for i, d in steps:
            th[free[i]] += d * h[free[i]]
        return nll(th)

    for a in range(k):
        fp, fm = f((a, 1)), f((a, -1))
        H[a, a] = (fp - 2 * f0 + fm) / h[free[a]] ** 2
        for b in range(a):
            H[a, b] = H[b, a] = (f((a, 1), (b, 1)) - f((a, 1), (b, -1)) - f((a, -1), (b, 1)) + f((a, -1), (b, -1))) / (
                4 * h[free[a]] * h[free[b]])
    out = {name: math.nan for name in _NAMES}
    keep = np.diag(H) > 0
    if keep.any():
        idx = np.flatnonzero(keep)
        try:
            cov = 2.0 * np.linalg.inv(H[np.ix_(idx, idx)])  # −2 ln L: the Fisher information is H/2
        except np.linalg.LinAlgError:  # pragma: no cover
            return out
        for j, i in enumerate(idx):
            if cov[j, j] > 0:
                out[_NAMES[free[i]]] = float(math.sqrt(cov[j, j]))
    return out


def model_parameters(fit: FitResult) -> dict[str, Any]:
    """The fitted parameters, units in the names."""
    m = fit.model
    e = fit.errors
    return {
        "g_max_S": m.g0_S if m.window_S >= 0 else m.g0_S - m.window_S,
        "g_min_S": m.g0_S - m.window_S if m.window_S >= 0 else m.g0_S,
        "window_S": abs(m.window_S),
        "initial_state": m.x0 if m.window_S >= 0 else 1.0 - m.x0,
        "threshold_V": m.law.v_depin_V,
        "threshold_rel_err": e.get("log_v_depin", math.nan),
        "rate_at_depin_per_s": m.law.rate_at_depin_per_s,
        "rate_at_depin_rel_err": e.get("log_rate_at_depin", math.nan),
        "flow_slope": m.law.flow_slope,
        "flow_slope_err": e.get("flow_slope", math.nan),
        "creep_log_slope": m.law.creep_log_slope,
        "creep_log_slope_rel_err": e.get("log_creep_log_slope", math.nan),
        "cycle_noise": m.cycle_noise,
        "cycle_noise_rel_err": e.get("log_cycle_noise", math.nan),
        "fit_residual_rms": fit.residual_rms,
        "fit_reads": fit.n_reads,
    }


def summary_lines(values: Mapping[str, Any]) -> list[str]:
    """Human-readable lines of a fit (for the run's log / a terminal)."""
    def f(key: str, unit: str = "", scale: float = 1.0, fmt: str = ".4g") -> str:
        v = values.get(key)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "n/a"
        return f"{v * scale:{fmt}}{unit}"

    return [
        f"threshold (depinning) {f('threshold_V', ' V')} ±{f('threshold_rel_err', ' %', 100, '.2g')}; "
        f"motion first seen at {f('onset_V', ' V')}",
        f"rate at depinning {f('rate_at_depin_per_s', ' 1/s')} ±{f('rate_at_depin_rel_err', ' %', 100, '.2g')}  "
        f"flow slope {f('flow_slope')} ±{f('flow_slope_err', '', 1, '.2g')}  "
        f"creep log-slope μ·T_d/T {f('creep_log_slope')}",
        f"G0 {f('g_max_S', ' µS', 1e6)}  window a·G0 {f('window_S', ' nS', 1e9)} "
        f"({f('contrast', ' %', 100, '.3g')})  read noise {f('read_sigma_S', ' nS', 1e9)} per reading",
        f"fit: innovations {f('fit_residual_rms')} σ over {f('fit_reads', '', 1, 'd')} reads; "
        f"cycle noise {f('cycle_noise')} (weak)",
    ]
