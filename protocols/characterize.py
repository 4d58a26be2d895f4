"""Characterize: the learning rule of one device or a set, fitted to what a simulator preset needs.

Each device is driven alone with the V/2 scheme (its line a at +V/2, line b at −V/2, all
others at 0 V, so half-selected devices see at most V/2) and read before and after:

1. read noise: repeated reads at rest;
2. amplitude sweep, both polarities: ΔG per pulse versus V → threshold and rate law;
3. width sweep at one amplitude: ΔG versus pulse width;
4. pulse-response curves (many identical pulses per polarity): ΔG versus the starting G,
   whose exponential approach to a bound gives the window (G_min, G_max), the soft-bound
   rate and the pulse-to-pulse (cycle) noise;
5. optionally retention: relaxation at rest.

The analysis (``analyse``) is a pure function of the measured numbers and returns the
fitted parameters plus a ``preset`` dict named as the simulator's preset fields.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np
from pydantic import Field, field_validator

from lab.operations import BenchInfo, PairResult, Pulse, ReadPair, Record, Wait

from .base import Plan, Protocol
from .common import check_voltage, device_between, half_select, line_index
from .retention import fit_relaxation


class Characterize(Protocol):
    name: ClassVar[str] = "characterize"
    figures: ClassVar[Mapping[str, str]] = {"characterize_device": "curves", "characterize": "curves"}
    adaptive: ClassVar[bool] = True

    pairs: tuple[tuple[int | str, int | str], ...] = ((0, 1),)
    amplitudes: tuple[float, ...] | None = None  # V across the device; default 12 steps up to 2·v_max
    width_s: float = Field(1e-3, gt=0)
    sweep_count: int = Field(20, ge=1)  # pulses per train in the amplitude and width sweeps
    max_chunks: int = Field(4, ge=1)  # trains per amplitude at most, until the change is seen
    widths: tuple[float, ...] | None = None  # default width_s × (1/8 … 4)
    v_width: float | None = Field(None, gt=0)  # default: first amplitude with a clear response
    curve_pulses: int = Field(30, ge=3)
    v_curve: float | None = Field(None, gt=0)  # default: the largest amplitude
    curve_width_s: float | None = Field(None, gt=0)  # default: 10 × width_s, within the bench limit
    noise_reads: int = Field(8, ge=2)
    read_repeats: int = Field(4, ge=1)
    v_read: float | None = Field(None, gt=0)
    retention_s: tuple[float, ...] = ()
    response_sigmas: float = Field(3.0, gt=0)  # |ΔG| above this many read-noise σ counts as motion
    # geometry and assumptions the electrical data cannot give (used only for the preset dict)
    creep_exponent: float = Field(0.25, gt=0, le=1)
    cross_section_m2: float = Field(1e-14, gt=0)
    wall_length_m: float = Field(1e-6, gt=0)
    ambient_K: float = Field(300.0, gt=0)
    attempt_Hz: float = Field(1e9, gt=0)

    @field_validator("amplitudes", "widths")
    @classmethod
    def _positive_sorted(cls, v: Any) -> Any:
        if v is not None:
            if not v or any(x <= 0 for x in v):
                raise ValueError("must be a non-empty list of positive values")
            v = tuple(sorted(v))
        return v

    def amplitude_list(self, bench: BenchInfo) -> np.ndarray:
        if self.amplitudes is not None:
            return np.array(self.amplitudes)
        return np.geomspace(0.1, 1.0, 12) * 2.0 * bench.v_max

    def curve_width(self, bench: BenchInfo) -> float:
        """Curve pulses are long enough to approach the bounds in ``curve_pulses`` steps."""
        return self.curve_width_s if self.curve_width_s is not None else min(10 * self.width_s, 0.5 * bench.max_pulse_width_s)

    def width_list(self) -> np.ndarray:
        if self.widths is not None:
            return np.array(self.widths)
        return self.width_s * np.array([0.125, 0.25, 0.5, 1.0, 2.0, 4.0])

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        lines = [(line_index(bench, a), line_index(bench, b)) for a, b in self.pairs]
        for a, b in lines:
            device_between(bench, a, b)
        amps = self.amplitude_list(bench)
        widths = self.width_list()
        check_voltage(bench, "amplitudes (±V/2 per line)", max(amps.max(), self.v_curve or 0, self.v_width or 0) / 2)
        if max(widths.max(), self.width_s, self.curve_width_s or 0) > bench.max_pulse_width_s:
            raise ValueError(f"pulse widths up to {widths.max():g} s exceed the bench limit {bench.max_pulse_width_s:g} s")
        per_device = []
        for a, b in lines:
            data = yield from self._measure(bench, a, b, amps, widths)
            fit = analyse(data, self)
            per_device.append(fit)
            yield Record("characterize_device", _recordable(fit))
        summary = summarise(per_device, self)
        yield Record("characterize", {**_recordable(summary), **{f"preset.{k}": v for k, v in summary["preset"].items()}})
        return summary

    def _read(self, a: int, b: int):
        r: PairResult = yield ReadPair(a, b, v_read=self.v_read, repeats=self.read_repeats)
        return float(r.g)

    def _pulse(self, bench: BenchInfo, a: int, b: int, v: float, width: float, count: int = 1):
        yield Pulse.of(half_select(bench, a, b, v), width, count)
        return (yield from self._read(a, b))

    def _measure(self, bench: BenchInfo, a: int, b: int, amps: np.ndarray, widths: np.ndarray):
        noise = []
        for _ in range(self.noise_reads):
            noise.append((yield from self._read(a, b)))
        sigma = float(np.std(noise, ddof=1))
        g = float(np.mean(noise))
        threshold_noise = self.response_sigmas * sigma * np.sqrt(2)
        sweep = []  # (V signed, total time at V, G before, G after)
        for v in amps:
            for pol in (1.0, -1.0):
                # slow creep near threshold: keep pulsing (up to max_chunks trains) until the
                # change stands out of the read noise, so small rates are still measured
                start, total = g, 0.0
                for _ in range(self.max_chunks):
                    g = yield from self._pulse(bench, a, b, pol * v, self.width_s, self.sweep_count)
                    total += self.width_s * self.sweep_count
                    if abs(g - start) > threshold_noise:
                        break
                sweep.append((pol * v, total, start, g))
        v_width = self.v_width
        if v_width is None:
            moved = [abs(v) for v, _, g0, g1 in sweep if abs(g1 - g0) > threshold_noise]
            v_width = min(moved) * 1.5 if moved else float(amps.max())
            v_width = float(min(v_width, amps.max()))
        wsweep = []
        for w in widths:
            for pol in (1.0, -1.0):
                after = yield from self._pulse(bench, a, b, pol * v_width, float(w), self.sweep_count)
                wsweep.append((pol * v_width, float(w) * self.sweep_count, g, after))
                g = after
        v_curve = self.v_curve if self.v_curve is not None else float(amps.max())
        curve_width = self.curve_width(bench)
        curves = {}
        for pol in (1.0, -1.0):
            trace = [g]
            for _ in range(self.curve_pulses):
                g = yield from self._pulse(bench, a, b, pol * v_curve, curve_width)
                trace.append(g)
            curves[pol] = trace
        retention = []
        elapsed = 0.0
        for t in self.retention_s:
            if t > elapsed:
                yield Wait(t - elapsed)
                elapsed = t
            retention.append((t, (yield from self._read(a, b))))
        return {
            "lines": (bench.line_names[a], bench.line_names[b]),
            "g_initial": float(np.mean(noise)),
            "read_sigma": sigma,
            "sweep": np.array(sweep),
            "width_sweep": np.array(wsweep),
            "v_width": v_width,
            "v_curve": v_curve,
            "curve_up": np.array(curves[1.0]),
            "curve_down": np.array(curves[-1.0]),
            "curve_width": curve_width,
            "retention": np.array(retention).reshape(-1, 2),
        }


# ------------------------------------------------------------------ analysis (pure)


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


def _rate(g0: float, g1: float, g_min: float, g_max: float, width: float) -> float:
    """Soft-bound rate (1/s) of one pulse: G−G_min decays when G falls, G_max−G when it rises."""
    if g1 < g0:
        num, den = g1 - g_min, g0 - g_min
    else:
        num, den = g_max - g1, g_max - g0
    if den <= 0 or num <= 0:
        return float("nan")
    return float(-np.log(num / den) / width) if num < den else 0.0


def fit_creep(v: np.ndarray, r: np.ndarray, mu: float) -> dict[str, float]:
    """Fit r(V) = r_d·exp(−B((V_d/V)^μ − 1)) below depinning, r_d(1 + s(V/V_d − 1)) above.

    Only ln r_d + B and B·V_d^μ are fixed by creep data alone; V_d comes from the kink into
    flow. If no point is beyond the kink, V_d is reported as the largest V measured and
    ``depin_reached`` is False.
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


def analyse(data: Mapping[str, Any], p: Characterize) -> dict[str, Any]:
    sigma = data["read_sigma"]
    noise_step = p.response_sigmas * sigma * np.sqrt(2)
    up, down = data["curve_up"], data["curve_down"]
    sweep, wsweep = data["sweep"], data["width_sweep"]
    # direction of each polarity at the strongest drive
    d_pos = float(up[-1] - up[0])
    d_neg = float(down[-1] - down[0])
    bipolar = np.sign(d_pos) != np.sign(d_neg) and min(abs(d_pos), abs(d_neg)) > noise_step
    g_hi = max(float(np.max(up)), float(np.max(down)), float(data["g_initial"]))
    g_lo = min(float(np.min(up)), float(np.min(down)))
    bounds = {}
    for name, tr in (("pos", up), ("neg", down)):
        bound, q = fit_bound(tr)
        bounds[name] = (bound, q)
    if bipolar:
        falling = "pos" if d_pos < 0 else "neg"
        rising = "neg" if falling == "pos" else "pos"
        g_min = min(bounds[falling][0], g_lo)
        g_max = max(bounds[rising][0], g_hi)
    else:
        g_min = min(min(bounds["pos"][0], bounds["neg"][0]), g_lo)
        g_max = g_hi  # a unipolar device never rises: the fresh state is the top of the window
    window = max(g_max - g_min, 1e-30)
    # rates of the amplitude sweep
    rates = np.array([_rate(g0, g1, g_min, g_max, w) for _, w, g0, g1 in sweep])
    # motion counts if it stands out of the noise in the direction strong drive takes for that
    # polarity; the threshold is where motion starts and stays for every larger amplitude
    expect = {1.0: np.sign(d_pos), -1.0: np.sign(d_neg)}
    moved = np.array([abs(g1 - g0) > noise_step and np.sign(g1 - g0) == expect[np.sign(v)]
                      for v, _, g0, g1 in sweep])
    amps = np.abs(sweep[:, 0])
    levels = np.unique(amps)
    moving = np.array([moved[amps == lv].any() for lv in levels])
    stays = np.flatnonzero(np.logical_and.accumulate(moving[::-1])[::-1])
    threshold = float(levels[stays[0]]) if stays.size else float("nan")
    rates_fit = np.where(moved, rates, np.nan)
    creep = fit_creep(amps, rates_fit, p.creep_exponent)
    # width exponent: |ΔG| ∝ width^β
    dgw = np.abs(wsweep[:, 3] - wsweep[:, 2])
    okw = dgw > noise_step
    beta = float(np.polyfit(np.log(wsweep[okw, 1]), np.log(dgw[okw]), 1)[0]) if np.unique(wsweep[okw, 1]).size >= 2 else float("nan")
    # cycle noise: scatter of per-pulse log rates along the curves, read noise removed
    logs, read_var = [], []
    for tr in (up, down):
        for g0, g1 in zip(tr[:-1], tr[1:]):
            rr = _rate(g0, g1, g_min, g_max, data["curve_width"])
            if np.isfinite(rr) and rr > 0 and abs(g1 - g0) > noise_step:
                logs.append(np.log(rr))
                read_var.append(2 * (sigma / abs(g1 - g0)) ** 2)
    if len(logs) >= 3:
        var = float(np.var(logs, ddof=1) - np.mean(read_var))
        cycle_noise = float(np.sqrt(max(var, 0.0)))
    else:
        cycle_noise = float("nan")
    ret = data["retention"]
    relax = fit_relaxation(ret[:, 0], ret[:, 1], noise=sigma) if len(ret) >= 3 else None
    return {
        "lines": data["lines"],
        "g_initial_S": float(data["g_initial"]),
        "read_sigma_S": sigma,
        "polarity": "bipolar" if bipolar else "unipolar",
        "positive_direction": "down" if d_pos < 0 else "up",
        "g_max_S": g_max,
        "g_min_S": g_min,
        "window_S": window,
        "threshold_V": threshold,
        "amplitudes_V": sweep[:, 0],
        "delta_g_S": sweep[:, 3] - sweep[:, 2],
        "rates_per_s": rates,
        "width_exponent": beta,
        "widths_s": wsweep[:, 1] / p.sweep_count,
        "width_delta_g_S": wsweep[:, 3] - wsweep[:, 2],
        "curve_up_S": up,
        "curve_down_S": down,
        # ΔG per pulse against the G it started from: a straight line through the bound is
        # a soft bound (ΔG ∝ G − bound); its per-pulse factor q is 1 − (rate × width)
        "soft_bound_q_pos": bounds["pos"][1],
        "soft_bound_q_neg": bounds["neg"][1],
        "creep": creep,
        "cycle_noise": cycle_noise,
        "relaxation": relax,
    }


def _spread(values: list[float]) -> float:
    v = np.array([x for x in values if np.isfinite(x) and x > 0])
    return float(np.std(np.log(v), ddof=1)) if v.size >= 2 else 0.0


def summarise(devices: list[dict[str, Any]], p: Characterize) -> dict[str, Any]:
    """Mean parameters over the devices, their spreads, and the matching preset fields."""
    def mean(key: str) -> float:
        v = np.array([d[key] for d in devices], dtype=float)
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")

    g_max, g_min = mean("g_max_S"), mean("g_min_S")
    window = g_max - g_min
    creeps = [d["creep"] for d in devices]
    v_depin = float(np.nanmean([c["v_depin"] for c in creeps]))
    barrier = float(np.nanmean([c["barrier"] for c in creeps]))
    r_d = float(np.exp(np.nanmean([np.log(c["r_d"]) for c in creeps if c["r_d"] > 0]))) if any(
        c["r_d"] > 0 for c in creeps) else float("nan")
    threshold = mean("threshold_V")
    polarity = "bipolar" if sum(d["polarity"] == "bipolar" for d in devices) * 2 > len(devices) else "unipolar"
    preset: dict[str, Any] = {
        "polarity": polarity,
        "g_max_S": g_max,
        "g_min_S": g_min,
        "g_spread": _spread([d["g_max_S"] for d in devices]),
        # one read's noise (the protocol averaged read_repeats of them) over the window
        "read_noise_window": mean("read_sigma_S") * np.sqrt(p.read_repeats) / window if window > 0 else float("nan"),
        "cycle_noise": mean("cycle_noise"),
        "creep_exponent": p.creep_exponent,
        "threshold_spread": _spread([d["threshold_V"] for d in devices]),
        "rate_spread": _spread([float(np.nanmax(np.where(np.isfinite(d["rates_per_s"]), d["rates_per_s"], np.nan)))
                                if np.isfinite(d["rates_per_s"]).any() else float("nan") for d in devices]),
        "read_voltage_V": p.v_read,
        "train_pulse_width_s": p.width_s,
    }
    if np.isfinite(v_depin) and v_depin > 0:
        # the simulator's drive: j = |V|·G/A, depinning at j_depin; creep onset as a fraction
        preset["j_depin_A_per_m2"] = v_depin * g_max / p.cross_section_m2
        preset["cross_section_m2"] = p.cross_section_m2
        preset["creep_onset"] = float(np.clip(threshold / v_depin, 1e-3, 0.999)) if np.isfinite(threshold) else None
        preset["creep_barrier_K"] = barrier * p.ambient_K if np.isfinite(barrier) else None
        preset["wall_length_m"] = p.wall_length_m
        preset["wall_velocity_depin_m_per_s"] = r_d * p.wall_length_m if np.isfinite(r_d) else None
        preset["flow_slope"] = float(np.nanmean([c["flow_slope"] for c in creeps]))
        preset["ambient_K"] = p.ambient_K
    relax = [d["relaxation"] for d in devices if d["relaxation"] is not None]
    if relax:
        taus = np.array([r["tau_s"] for r in relax])
        if np.isfinite(taus).any():
            k = float(np.mean(1.0 / taus[np.isfinite(taus)]))
            g_inf = float(np.mean([r["g_inf"] for r in relax if np.isfinite(r["tau_s"])]))
            preset["relax_attempt_Hz"] = p.attempt_Hz
            preset["relax_barrier_K"] = float(p.ambient_K * np.log(p.attempt_Hz / k))
            preset["rest_state"] = float(np.clip((g_max - g_inf) / window, 0, 1)) if window > 0 else None
        else:
            preset["relax_attempt_Hz"] = 0.0
    return {
        "n_devices": len(devices),
        "polarity": polarity,
        "g_max_S": g_max,
        "g_min_S": g_min,
        "threshold_V": threshold,
        "v_depin_V": v_depin,
        "depin_reached": all(c["depin_reached"] for c in creeps),
        "creep_barrier": barrier,
        "rate_at_depin_per_s": r_d,
        "width_exponent": mean("width_exponent"),
        "cycle_noise": mean("cycle_noise"),
        "preset": {k: v for k, v in preset.items() if v is not None},
        "devices": devices,
    }
