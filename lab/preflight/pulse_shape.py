"""The pre-flight's reuse of a pulse train at a width it has not replayed: an affine model.

A pulse's control flow does not depend on its width; its hold durations, bench time, dose
and timeline do, each affinely. :class:`PulseShape` learns that model from full replays of
one train (levels, count, period, start state) and evaluates it at a new width only where
every check it stands for provably passes.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from lab.operations import ApplyResult

if TYPE_CHECKING:
    from lab.preflight import _Outcome


class PulseShape:
    """One pulse train (levels, count, period, start state) at varying width: affine reuse.

    Each full replay gives a vector of the width-dependent numbers (the five time and dose
    tallies, the final time above the read ceiling, every hold's duration and the time above
    the ceiling it would reach, the timeline's times) and a signature of everything else
    (counts, peak voltage, final state, line voltages, the timeline's buses and levels,
    which holds happen above the ceiling). Two replays fix the affine model; a third must
    agree with it to 1e-9 before it is used. Holds clamped at zero stay zero within one width
    regime (the caller keys shapes by it); a hold predicted to reach zero is replayed.

    Once the model stands, the widths at which every hold stays positive and every time above
    the ceiling within ``pulse_width_max_s`` form one interval (each is affine in the width);
    it is computed once, shrunk by a margin far above rounding, and a width inside it needs
    no per-hold evaluation. A width outside it is checked hold by hold, as before.
    """

    def __init__(self) -> None:
        self.samples: list[tuple[float, np.ndarray, tuple, _Outcome]] = []
        self.model: tuple[float, np.ndarray, np.ndarray] | None = None  # w0, x0, slope
        self.dead = False
        self.ref: _Outcome | None = None  # the first replay: all but the affine numbers
        self._window: tuple[float, float] | None = None  # widths that pass every check
        self._window_limit = math.nan

    @staticmethod
    def _vector(width: float, out: _Outcome, holds: list[tuple[float, bool, float]]) -> tuple[np.ndarray, tuple]:
        res = out.result
        timeline = getattr(res, "timeline", ())
        x = [*out.d_float, out.post[4], *(s for s, _, _ in holds), *(e + s for s, w, e in holds if w),
             *(t for t, _, _ in timeline)]
        sig = (out.d_counts, out.peak_V, out.post[:4], out.post[5], tuple((w for _, w, _ in holds)),
               tuple((b, v) for _, b, v in timeline), res.line_voltages.tobytes(), tuple(res.bus_currents.items()),
               tuple(s == 0.0 for s, _, _ in holds), any(s < 0.0 for s, _, _ in holds), len(holds))
        return np.array(x, dtype=float), sig

    def add(self, width: float, out: _Outcome, holds: list) -> None:
        if self.dead:
            return
        x, sig = self._vector(width, out, holds)
        if sig[-2] or not math.isfinite(width):
            self.dead = True
            return
        if self.samples and (sig != self.samples[0][2] or any(width == w for w, *_ in self.samples)):
            if sig != self.samples[0][2]:
                self.dead = True
            return
        self.samples.append((width, x, sig, out))
        if len(self.samples) == 2:
            (w0, x0, _, _), (w1, x1, _, _) = self.samples
            self.model = (w0, x0, (x1 - x0) / (w1 - w0))
        elif len(self.samples) == 3:
            w2, x2 = self.samples[2][:2]
            guess = self._at(w2)
            if not np.allclose(guess, x2, rtol=1e-9, atol=1e-12):
                self.dead = True
                return
            n_holds, n_w = sig[-1], sum(sig[4])
            self._split = (6 + n_holds, 6 + n_holds + n_w)
            self._may_be_zero = np.array(sig[-3], dtype=bool)
            ref = self.ref = self.samples[0][3]
            h_end, w_end = self._split
            w0, x0, slope = self.model  # type: ignore[misc]
            keep = np.r_[0:6, w_end:x0.size]  # the numbers a reuse hands out
            self._w0 = w0
            self._x0 = x0[keep].tolist()
            self._slope = slope[keep].tolist()
            res = ref.result
            self._timeline = ([b for _, b, _ in res.timeline], [v for _, _, v in res.timeline]) \
                if isinstance(res, ApplyResult) else None

    def _at(self, width: float) -> np.ndarray:
        assert self.model is not None
        w0, x0, slope = self.model
        return x0 + slope * (width - w0)

    def _passes(self, width: float, pulse_limit: float) -> bool:
        """Every hold positive (or one that may be zero) and every time above the ceiling
        within the limit at ``width``, evaluated hold by hold."""
        x = self._at(width)
        h_end, w_end = self._split
        holds = x[6:h_end]
        if holds.size and not ((holds > 0.0) | self._may_be_zero).all():
            return False  # a hold would be clamped or negative: replay it
        above = x[h_end:w_end]
        return not (above.size and not (above <= pulse_limit).all())

    def _passing_widths(self, pulse_limit: float) -> tuple[float, float]:
        """(lo, hi): every width strictly inside passes :meth:`_passes` (empty: lo ≥ hi).

        Each number is a + s·(w − w0); it crosses its bound at w0 + (bound − a)/s. Evaluated in
        floating point it errs by ~3e-16·(|a| + |bound| + |s·(w − w0)|), i.e. it can only
        decide differently within ~3e-16·(|w0| + |crossing| + (|a| + |bound|)/|s|) of the
        crossing: a margin of 1e-9 times that keeps every width inside the interval a width
        the hold-by-hold evaluation passes too.
        """
        w0, x0, slope = self.model  # type: ignore[misc]
        h_end, w_end = self._split
        lo, hi = 0.0, math.inf
        checks = [(x0[6:h_end][~self._may_be_zero], slope[6:h_end][~self._may_be_zero], 0.0, +1),
                  (x0[h_end:w_end], slope[h_end:w_end], pulse_limit, -1)]
        for a, s, bound, sign in checks:  # sign +1: a + s·dw > bound; -1: a + s·dw <= bound
            for ai, si in zip(a.tolist(), s.tolist()):
                if si == 0.0:
                    if not (ai > bound if sign > 0 else ai <= bound):
                        return 0.0, 0.0
                    continue
                cross = w0 + (bound - ai) / si
                if not math.isfinite(cross):
                    return 0.0, 0.0
                margin = 1e-9 * (abs(w0) + abs(cross) + (abs(ai) + abs(bound)) / abs(si)) + 1e-300
                if (si > 0) == (sign > 0):  # passes above the crossing
                    lo = max(lo, cross + margin)
                else:
                    hi = min(hi, cross - margin)
        return lo, hi

    def predict(self, width: float, count: int, pulse_limit: float) -> tuple | None:
        """(result, the five tallies, final time above the ceiling) at ``width``, or None: replay."""
        if self.dead or len(self.samples) < 3 or not math.isfinite(width) or width <= 0:
            return None
        if self._window is None or self._window_limit != pulse_limit:
            self._window, self._window_limit = self._passing_widths(pulse_limit), pulse_limit
        lo, hi = self._window
        if not (lo < width < hi and width > 0.0) and not self._passes(width, pulse_limit):
            return None
        dw = width - self._w0
        x = [a + s * dw for a, s in zip(self._x0, self._slope)]  # as _at: the same two roundings
        res = self.ref.result  # type: ignore[union-attr]
        if self._timeline is not None:
            timeline = tuple(zip(x[6:], *self._timeline))
            res = ApplyResult(res.line_voltages, float(width) * count, res.bus_currents, timeline)
        return res, tuple(x[:5]), x[5]
