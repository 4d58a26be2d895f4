"""Worst-case device voltages and bus currents from what the sources drive.

The guard knows each line's voltage or that it floats (a floating line lies anywhere between
the driven extremes). From that alone it bounds what any device may see and what any bus may
carry with every device at its largest expected conductance. On a full crossbar (every row
against every column) both bounds are taken in O(N log N) instead of over all N² devices.
"""
from __future__ import annotations

import math

import numpy as np

_EPS = float(np.finfo(np.float64).eps)


def complete_bipartite(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(row lines, column lines) if the devices are every row against every column in
    row-major order (device i·n_cols + j joins row i and column j, as a crossbar's), else None."""
    if not a.size:
        return None
    n_cols = int(np.argmax(a != a[0])) or a.size
    if a.size % n_cols:
        return None
    rows, cols = a[::n_cols], b[:n_cols]
    if np.array_equal(a, np.repeat(rows, n_cols)) and np.array_equal(b, np.tile(cols, rows.size)):
        return rows.copy(), cols.copy()
    return None


class DeviceBounds:
    """Bounds for devices joining lines ``a[k]`` and ``b[k]`` of ``n_lines`` lines."""

    def __init__(self, a: np.ndarray, b: np.ndarray, n_lines: int) -> None:
        self.a, self.b, self.n_lines = a, b, n_lines
        self.bipartite = complete_bipartite(a, b)
        ra, cb = self.bipartite if self.bipartite is not None else (a[:0], b[:0])
        lines = np.concatenate((ra, cb))
        self._disjoint = np.unique(lines).size == lines.size  # each line a row or a column, once

    @staticmethod
    def line_extremes(line_v: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(lowest, highest) voltage each line can take; a floating line lies between the driven extremes."""
        lo, hi = float(np.fmin.reduce(line_v)), float(np.fmax.reduce(line_v))  # NaN (floating) skipped
        if math.isfinite(lo) and math.isfinite(hi):  # fmax/fmin give the driven value, or the extreme for NaN
            return np.fmax(line_v, lo), np.fmin(line_v, hi)
        driven = np.isfinite(line_v)
        if not driven.any():
            return None
        lo, hi = float(np.min(line_v[driven])), float(np.max(line_v[driven]))
        return np.where(driven, line_v, lo), np.where(driven, line_v, hi)

    def device_voltage(self, line_v: np.ndarray) -> np.ndarray:
        """(D,) the largest |V| each device can see."""
        ext = self.line_extremes(line_v)
        if ext is None:
            return np.zeros(len(self.a))
        l_lo, l_hi = ext
        if self.bipartite is not None:  # device (i, j) = row line i, column line j: outer differences
            ra, cb = self.bipartite
            return np.maximum(np.subtract.outer(l_hi[ra], l_lo[cb]),
                              np.subtract.outer(l_hi[cb], l_lo[ra]).T).ravel()
        a, b = self.a, self.b
        return np.maximum(l_hi[a] - l_lo[b], l_hi[b] - l_lo[a])

    def worst_device(self, line_v: np.ndarray) -> tuple[int, float]:
        """(index, bound) of the first device with the largest :meth:`device_voltage`, as
        ``argmax`` of it finds them; (0, 0.0) for no devices. On a full crossbar it takes O(N):
        the largest of a row is its row line's extreme against the columns' opposite one (a
        rounded difference grows with its operands), and only the first row reaching the
        overall largest is spelled out."""
        if not len(self.a):
            return 0, 0.0
        ext = self.line_extremes(line_v)
        if ext is None:
            return 0, 0.0
        if self.bipartite is None:
            dv = self.device_voltage(line_v)
            worst = int(np.argmax(dv))
            return worst, float(dv[worst])
        l_lo, l_hi = ext
        ra, cb = self.bipartite
        hr, lr, hc, lc = l_hi[ra], l_lo[ra], l_hi[cb], l_lo[cb]
        best = np.maximum(hr - lc.min(), hc.max() - lr)
        i = int(np.argmax(best))
        row = np.maximum(hr[i] - lc, hc - lr[i])
        j = int(np.argmax(row))
        return i * cb.size + j, float(row[j])

    def line_currents(self, line_v: np.ndarray, g: float) -> np.ndarray:
        """(n_lines,) the largest |I| into each line, every device at conductance g."""
        i_dev = self.device_voltage(line_v) * g
        n = self.n_lines
        return np.bincount(self.a, i_dev, n) + np.bincount(self.b, i_dev, n)

    def line_currents_loose(self, line_v: np.ndarray, g: float) -> np.ndarray | None:
        """(n_lines,) an upper bound of :meth:`line_currents` in O(N) on a full crossbar (None on
        other layouts): a device sees at most |v_a| + |v_b| (each line's largest |V|, a floating
        one's the driven extremes'), so row i carries at most g·(C·m_i + Σ_cols m) and column j
        g·(R·m_j + Σ_rows m). Where it clears every limit, the exact bound does too."""
        if self.bipartite is None:
            return None
        ext = self.line_extremes(line_v)
        if ext is None:
            return np.zeros(self.n_lines)
        m = np.fmax(np.abs(ext[0]), np.abs(ext[1]))
        ra, cb = self.bipartite
        mr, mc = m[ra], m[cb]
        out = np.zeros(self.n_lines)
        row_i, col_i = g * (cb.size * mr + float(mc.sum())), g * (ra.size * mc + float(mr.sum()))
        if self._disjoint:  # each line once: a plain store is the sum (0 + x), without add.at's loop
            out[ra] = row_i
            out[cb] = col_i
        else:
            np.add.at(out, ra, row_i)
            np.add.at(out, cb, col_i)
        return out

    def line_currents_fast(self, line_v: np.ndarray, g: float) -> tuple[np.ndarray, float] | None:
        """(per-line current, error bound) agreeing with :meth:`line_currents` to within the
        bound on every line, in O(N log N) on a full crossbar; None on other layouts.

        Device (i, j) sees max(hr_i − lc_j, hc_j − lr_i), the first exactly when
        hr_i + lr_i ≥ hc_j + lc_j: sorting the columns by hc + lc splits each row's sum in two
        prefix sums (and the rows likewise for each column). Where the rounded comparison
        and that order disagree the two terms differ by rounding only, so every discrepancy
        is a few ulps of the largest line voltage per term, bounded here generously."""
        if self.bipartite is None:
            return None
        ext = self.line_extremes(line_v)
        if ext is None:
            return np.zeros(self.n_lines), 0.0
        l_lo, l_hi = ext
        ra, cb = self.bipartite
        hr, lr, hc, lc = l_hi[ra], l_lo[ra], l_hi[cb], l_lo[cb]
        R, C = ra.size, cb.size
        t, s = hr + lr, hc + lc
        oc = np.argsort(s)
        cum_lc, cum_hc = _cumsum0(lc[oc]), _cumsum0(hc[oc])
        k = np.searchsorted(s[oc], t, side="right")  # columns where the row's term wins
        row = k * hr - cum_lc[k] + (cum_hc[C] - cum_hc[k]) - (C - k) * lr
        orr = np.argsort(t)
        cum_hr, cum_lr = _cumsum0(hr[orr]), _cumsum0(lr[orr])
        q = np.searchsorted(t[orr], s, side="left")  # rows [q, R) in t order: the row's term wins
        col = (cum_hr[R] - cum_hr[q]) - (R - q) * lc + q * hc - cum_lr[q]
        out = np.zeros(self.n_lines)
        if self._disjoint:
            out[ra] = row * g
            out[cb] = col * g
        else:
            np.add.at(out, ra, row * g)
            np.add.at(out, cb, col * g)
        v_abs = max(float(np.max(np.abs(l_lo))), float(np.max(np.abs(l_hi))))
        return out, 16 * (R + C + self.n_lines + 8) * _EPS * max(R, C) * 2 * v_abs * g


def bus_totals(per_line: np.ndarray, lines: np.ndarray, bus_of: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Per bus, the sum of ``per_line`` over the lines routed to it (``lines[k]`` to bus
    ``bus_of[k]``) with its output on, added in the routing's order as a loop over it adds."""
    acc = np.zeros(on.size)
    sel = on[bus_of]
    np.add.at(acc, bus_of[sel], per_line[lines[sel]])
    return acc


def decide(estimate: np.ndarray, error: np.ndarray | float, limits: np.ndarray) -> np.ndarray | None:
    """Per bus, whether the exact bound (within ``error`` of ``estimate``) reaches its limit
    (NaN: no limit, False); None if some limit lies within the error, where only the exact
    sum can tell."""
    error = error * (1 + 1e-6) + 1e-300  # the bus sums' own rounding, and a zero error made strict
    has = ~np.isnan(limits)
    yes = has & (estimate - error > limits)
    no = ~has | (estimate + error < limits)
    return None if not (yes | no).all() else yes


def _cumsum0(x: np.ndarray) -> np.ndarray:
    """0 followed by the running sums of x."""
    out = np.empty(x.size + 1)
    out[0] = 0.0
    np.cumsum(x, out=out[1:])
    return out
