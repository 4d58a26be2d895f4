"""The measurement plan of one device in a characterization: its reads and trains, adapted as it runs.

:class:`DevicePlan` is the plan of one device (lines a, b); ``run()`` yields its operations
phase by phase (noise reads, amplitude sweep, width sweep, pulse-response curves, retention)
and returns the measured numbers that ``protocols.characterize_analysis.analyse`` fits. Why
each phase spends the window the way it does is in ``protocols.characterize``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lab.operations import BenchInfo, PairResult, Pulse, ReadPair, Wait

from . import fit as devfit
from .base import Plan
from .common import half_select

if TYPE_CHECKING:  # the protocol imports this module: a runtime import would be circular
    from .characterize import Characterize

# per read: the train before it (V, nominal width, count), G, SEM, phase, repeats, and the
# train's time at full and at half drive from the bench's timeline
LogRow = tuple[float, float, int, float, float, int, int, float, float]
# a sweep point that moved: (|V|, dose at level, |ΔG|), what later doses are predicted from
Moved = tuple[float, float, float]


class DevicePlan:
    """The adaptive measurement of the device between lines ``a`` and ``b``.

    The phases share one state: the read log, the last conductance read (``g``), the read
    noise, and the sweep's moving points, from which every later dose is predicted.
    """

    def __init__(self, p: Characterize, bench: BenchInfo, a: int, b: int) -> None:
        self.p, self.bench, self.a, self.b = p, bench, a, b
        self.log: list[LogRow] = []
        self.w_min, self.w_max = p.min_width(bench), p.max_width(bench)
        self.amps = p.amplitude_list(bench)
        self.g = math.nan
        self.sigma = self.sd = self.step = math.nan  # set by the noise reads
        self.quiet: list[float] = []  # reads since which nothing has moved (the detection reference)
        # (V signed, dose at level, G before, G after, first log row, last log row, moved)
        self.sweep: list[tuple[float, float, float, float, int, int, bool]] = []
        self.last: dict[float, list[Moved]] = {1.0: [], -1.0: []}  # moving points per polarity
        self.stopped = ""
        self.moved_v: list[float] = []
        self.onset = math.nan

    def run(self) -> Plan:
        """Every phase in turn; returns the measured numbers (the input of ``analyse``)."""
        g_rest = yield from self.noise()
        yield from self.amplitude_sweep()
        v_width, wsweep = yield from self.width_sweep()
        v_curve, levels, curves = yield from self.curves()
        retention = yield from self.retention()
        arr = np.array(self.log, dtype=float).reshape(-1, 9)
        return {
            "lines": (self.bench.line_names[self.a], self.bench.line_names[self.b]),
            "g_initial": float(np.mean(g_rest)),
            "read_sigma": self.sigma,
            "read_repeats": self.p.read_repeats,
            "step": self.step,
            "log": arr,
            "sweep": np.array(self.sweep, dtype=float).reshape(-1, 7),
            "sweep_stop": self.stopped,
            "onset_V": self.onset,
            "width_sweep": np.array(wsweep, dtype=float).reshape(-1, 7),
            "v_width": float(v_width),
            "v_curve": v_curve,
            "curve_levels_V": levels,
            "curve_up": np.array(curves[1.0]),
            "curve_down": np.array(curves[-1.0]),
            "retention": np.array(retention).reshape(-1, 2),
        }

    # ------------------------------------------------------------ operations
    def read(self, phase: int, v: float = 0.0, w: float = 0.0, n: int = 0, repeats: int | None = None,
             dose: tuple[float, float] = (0.0, 0.0)) -> Plan:
        rep = repeats or self.p.read_repeats
        r: PairResult = yield ReadPair(self.a, self.b, v_read=self.p.v_read, repeats=rep)
        self.log.append((v, w, n, float(r.g), float(r.g_std), phase, rep, *dose))
        return float(r.g)

    def pulse(self, v: float, w: float, n: int, phase: int, repeats: int | None = None) -> Plan:
        volts = half_select(self.bench, self.a, self.b, v)
        res = yield Pulse.of(volts, w, n)
        t_full, t_half = devfit.pulse_doses(getattr(res, "timeline", ()) or (), volts[self.a], volts[self.b])
        if not np.isfinite(t_full):  # no timeline from this bench: the nominal width
            t_full, t_half = w * n, 0.0
        return (yield from self.read(phase, v, w, n, repeats, (t_full, t_half)))

    def realize(self, dose: float, width: float | None = None) -> tuple[float, int]:
        """(width, count) of a train giving ``dose``: one pulse if it fits the width limits."""
        if width is not None:
            return width, max(1, int(round(dose / width)))
        if dose <= self.w_max:
            return max(dose, self.w_min), 1
        n = int(math.ceil(dose / self.w_max - 1e-9))
        return dose / n, n

    # ------------------------------------------------------------ one point
    def detect(self, v: float, start: float, phase: int) -> Plan:
        """Before any motion: pulse in growing doses until a change is seen twice (a
        second read confirms it: motion is permanent, noise is not) or probe_dose_s passed."""
        p = self.p
        ref = float(np.mean(self.quiet))
        s_ref = self.sigma * math.sqrt(1 + 1 / len(self.quiet))
        g_start, cum, dose, first = self.g, 0.0, start, len(self.log)
        while True:
            w, n = self.realize(min(dose, p.probe_dose_s - cum))
            self.g = yield from self.pulse(v, w, n, phase)
            cum += w * n
            if abs(self.g - ref) > p.response_sigmas * s_ref:
                again = yield from self.read(phase)
                if abs(again - ref) > 2 * s_ref and np.sign(again - ref) == np.sign(self.g - ref):
                    self.g = again
                    return True, cum, g_start, first
                self.g = again
            if cum >= p.probe_dose_s * (1 - 1e-9):
                self.quiet.append(self.g)
                return False, cum, g_start, first
            dose = cum * (p.dose_growth - 1)

    def measure_step(self, v: float, dose: float, phase: int, width: float | None = None) -> Plan:
        """After motion was seen: one train of the predicted dose, topped up (doubling)
        while the change is under half a step, up to probe_dose_s."""
        p = self.p
        g_start, cum, first = self.g, 0.0, len(self.log)
        while True:
            w, n = self.realize(dose, width)
            self.g = yield from self.pulse(v, w, n, phase)
            cum += w * n
            if abs(self.g - g_start) > 0.5 * self.step:
                return True, cum, g_start, first
            if cum >= p.probe_dose_s * (1 - 1e-9):
                return False, cum, g_start, first
            dose = min(cum * (p.dose_growth - 1), max(p.probe_dose_s - cum, self.w_min))

    def step_dose(self, v_target: float, pol: float) -> float:
        """Dose for one step at v_target, from the sweep's nearest moving points."""
        hist = [h for h in self.last[pol] if h[0] <= v_target * 1.0001] or self.last[pol] or self.last[-pol]
        if not hist:
            return self.p.probe_dose_s / 4
        return _predict_dose(hist, v_target, self.step, self.p.probe_dose_s, self.w_min)

    # ------------------------------------------------------------ phases
    def noise(self) -> Plan:
        """Repeated reads at rest: the read noise, G0, and the step a sweep point asks for."""
        p = self.p
        for _ in range(p.noise_reads):
            yield from self.read(devfit.NOISE)
        g_rest = np.array([e[3] for e in self.log])
        sem = np.array([e[4] for e in self.log])
        sigma = float(np.sqrt(np.mean(sem**2))) if p.read_repeats > 1 else float(np.std(g_rest, ddof=1))
        self.sigma = max(sigma, 1e-18)
        self.sd = self.sigma * math.sqrt(2)  # σ of the difference of two reads
        self.step = p.response_sigmas * self.sd
        self.g = float(g_rest[-1])
        self.quiet = list(g_rest[-4:])
        return g_rest

    def amplitude_sweep(self) -> Plan:
        """Both polarities per amplitude, ascending: probed until the first motion, then one
        predicted step per point; stops ``max_moving_amplitudes`` after the onset, or when a
        level moves nothing after motion below it (the window is used up)."""
        p = self.p
        moving_levels = 0
        for v in self.amps:
            v = float(v)
            moved_here = False
            for pol in (1.0, -1.0):
                hist = self.last[pol]
                if not hist and not moving_levels:
                    moved, cum, g0, first = yield from self.detect(pol * v, p.probe_dose_s / 4, devfit.SWEEP)
                else:
                    dose = _predict_dose(hist or self.last[-pol], v, self.step, p.probe_dose_s, self.w_min)
                    moved, cum, g0, first = yield from self.measure_step(pol * v, dose, devfit.SWEEP)
                self.sweep.append((pol * v, cum, g0, self.g, first, len(self.log) - 1, moved))
                if moved:
                    hist.append((v, cum, abs(self.g - g0)))
                    moved_here = True
            if moved_here:
                moving_levels += 1
            elif moving_levels >= 2:
                self.stopped = f"no motion at {v:.3g} V after motion below it: the window is used up"
                break
            if moving_levels >= p.max_moving_amplitudes:
                self.stopped = f"{moving_levels} amplitudes moved"
                break
        self.moved_v = [abs(s[0]) for s in self.sweep if s[6]]
        self.onset = min(self.moved_v) if self.moved_v else math.nan

    def width_sweep(self) -> Plan:
        """Each width of ``width_list`` at one amplitude, both polarities: the dose-vs-width check."""
        v_width = self.p.v_width
        if v_width is None:
            if self.moved_v:
                lv = sorted(set(self.moved_v))
                v_width = min(lv, key=lambda x: abs(math.log(x / (1.5 * self.onset))))
            else:
                v_width = float(self.amps.max())
        wsweep = []  # (V signed, width, count, G before, G after, first log row, last log row)
        for w in self.p.width_list():
            for pol in (1.0, -1.0):
                # the nominal dose ignores the bench's dose offset: start low, double up
                d0 = max(self.step_dose(v_width, pol) / 3, float(w))
                before = self.g
                _, cum, _, first = yield from self.measure_step(pol * v_width, d0, devfit.WIDTH, float(w))
                wsweep.append((pol * v_width, float(w), int(round(cum / float(w))), before, self.g, first,
                               len(self.log) - 1))
        return v_width, wsweep

    def curves(self) -> Plan:
        """Pulse-response curves: what is left of the window, in big trains cycling over two
        amplitudes — just past depinning (curve_low × onset, where the rate is ≈ r_d) and
        v_curve (the flow slope; its V/2 edges sample flow at v_curve/2) — read with more
        repeats; the last trains saturate at v_curve, so the run ends at the bound (the window).

        A one-way (unipolar) device gets one curve that also alternates polarity; a bipolar
        one a curve per polarity. Returns (v_curve, the levels, the traces by polarity).
        """
        p = self.p
        v_curve = p.v_curve if p.v_curve is not None else float(self.amps.max())
        v_low = min(p.curve_low * self.onset, v_curve) if self.moved_v else v_curve
        levels = (np.geomspace(v_low, v_curve, p.curve_levels)
                  if p.curve_levels > 1 and v_low < 0.95 * v_curve else np.array([v_curve]))
        pos = sum(s[3] - s[2] for s in self.sweep if s[6] and s[0] > 0)
        neg = sum(s[3] - s[2] for s in self.sweep if s[6] and s[0] < 0)
        one_way = bool(pos and neg and np.sign(pos) == np.sign(neg))
        curves: dict[float, list[float]] = {}
        for pols in (((1.0, -1.0),) if one_way else ((1.0,), (-1.0,))):
            trace = [self.g]
            dose = yield from self._steered_trains(pols, levels, trace)
            # close at the bound: v_curve in the longest pulses, ×3 per train, until nothing moves
            d = 3 * dose[(float(levels[-1]), pols[0])] * (1 + float(levels[-1] == levels[0]))
            yield from self._closing_trains(pols, v_curve, d, trace)
            curves[pols[0]] = trace
        curves.setdefault(-1.0, [])
        return v_curve, levels, curves

    def _n_closing(self) -> int:
        return max(1, self.p.curve_pulses // 8)  # closing trains at v_curve, growing ×3

    def _steered_trains(self, pols: tuple[float, ...], levels: np.ndarray, trace: list[float]) -> Plan:
        """Trains cycling over the levels (and ``pols``), each dose steered so every train
        moves ≈ curve_sigmas read-σ (a controller on its last change), which spends the window
        evenly. Returns each combination's last dose."""
        p = self.p
        cw = p.curve_width(self.bench)  # width of the steered trains (many pulses average cycle noise)
        rep = p.curve_read_repeats or p.read_repeats
        target = p.curve_sigmas * self.sd
        # the low level, whose rate is ≈ r_d, gets two trains for each one at v_curve
        cycle = [float(levels[0])] * 2 + [float(lv) for lv in levels[1:]]
        combos = [(lv, pl) for pl in pols for lv in cycle]
        dose = {c: self.step_dose(c[0], c[1]) * p.curve_sigmas / p.response_sigmas for c in combos}
        seen: dict[tuple[float, float], list[tuple[float, float]]] = {c: [] for c in combos}
        for k in range(p.curve_pulses - self._n_closing()):
            c = combos[k % len(combos)]
            lv, pl = c
            n = int(np.clip(round(dose[c] / cw), 1, p.max_train_pulses))
            before = self.g
            self.g = yield from self.pulse(pl * lv, cw, n, devfit.CURVE, rep)
            trace.append(self.g)
            # steer on the last two trains of this combination (one is too noisy)
            seen[c].append((cw * n, abs(self.g - before)))
            d_sum = sum(d for d, _ in seen[c][-2:])
            g_sum = sum(x for _, x in seen[c][-2:])
            dose[c] = float(np.clip(target * d_sum / max(g_sum, 0.3 * self.sd), 0.5 * cw * n, 3.0 * cw * n))
        return dose

    def _closing_trains(self, pols: tuple[float, ...], v_curve: float, d: float, trace: list[float]) -> Plan:
        p = self.p
        w_sat = p.max_width(self.bench)
        rep = p.curve_read_repeats or p.read_repeats
        for k in range(self._n_closing()):
            pl = pols[k % len(pols)]
            n = int(np.clip(math.ceil(d / w_sat - 1e-9), 1, 2 * p.max_train_pulses))
            w_use = max(min(d / n, w_sat), self.w_min)
            before = self.g
            self.g = yield from self.pulse(pl * v_curve, w_use, n, devfit.CURVE, rep)
            trace.append(self.g)
            if abs(self.g - before) < self.sd:
                break
            d *= 3

    def retention(self) -> Plan:
        """Reads at rest at the times of ``retention_s`` (from the end of the curves)."""
        retention: list[tuple[float, Any]] = []
        elapsed = 0.0
        for t in self.p.retention_s:
            if t > elapsed:
                yield Wait(t - elapsed)
                elapsed = t
            retention.append((t, (yield from self.read(devfit.RETENTION))))
        return retention


def _predict_dose(hist: list[Moved], v: float, step: float, cap: float, floor: float) -> float:
    """Dose expected to give one ``step`` at v, from the last moving points (V, dose, |ΔG|).

    The rate's growth with V is the one seen between the last two points (creep is steep,
    flow is linear), clipped to [V-linear, 8× per step]; with one point, creep-like 3×.
    """
    if not hist:
        return cap / 4
    v1, d1, dg1 = hist[-1]
    rate1 = max(dg1, 0.25 * step) / d1
    if len(hist) >= 2 and hist[-2][0] < v1:
        v0, d0, dg0 = hist[-2]
        rate0 = max(dg0, 0.25 * step) / d0
        k = math.log(max(rate1 / rate0, 1e-3)) / math.log(v1 / v0)
        k = float(np.clip(k, 1.0, math.log(8) / math.log(1.25)))
    else:
        k = math.log(3) / math.log(1.25)
    rate = rate1 * (v / v1) ** k if v > v1 else rate1
    return float(np.clip(step / rate, floor, cap))
