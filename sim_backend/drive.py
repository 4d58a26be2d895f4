"""The packed drive: the devices of one drive configuration that can move, packed once and
integrated there (see ``array.DeviceArray``), and the relaxation step they share."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from . import physics

if TYPE_CHECKING:
    from .array import DeviceArray

# least-drive classes the packed devices are ordered by (rho = j/j_d at x = 1, the weakest
# drive a device can see): the weakly driven ones, which may relax visibly or stop at the creep
# onset, then come first, and those past depinning at any state last. New voltages that leave
# the driven set as it is may move a device down by one class (Drive.repack_voltages): so the
# exact-law prefix takes one class more, and one class above 1 separates the devices past
# depinning at any state (they skip the creep term) from that margin.
RHO_EDGES = np.geomspace(0.02, 1.0, 64)
RHO_EDGES = np.append(RHO_EDGES, RHO_EDGES[-1] * RHO_EDGES[1] / RHO_EDGES[0])
_MAX_DG = 0.02  # largest relative conductance change per internal sub-step (feedback on j)
_MAX_SUBSTEPS = 256
POLY_MAX_LAM = 0.1  # exp(−λ) by its series below this (cheaper than np.exp, as exact in float32)


class Drive:
    """The movable devices of one drive configuration, packed and ordered by least drive.

    The packed state is y = x for devices pushed down (bipolar, V < 0) and y = 1 − x for
    devices pushed up, so that with no visible relaxation the exact step is y ← y·exp(−λ)
    either way. j/j_d,nominal = c0 + c1·y and the dissipated power is P0 + u·y.
    """

    def __init__(self, array: DeviceArray, V: np.ndarray) -> None:
        p = array.preset
        self.V = V.copy()
        k = array._k
        if k is not None:
            (self.idx, self.c0, self.c1, self.u, self.jd, self.mob, self.up, self.cls, self.cum, self.P_rest,
             self.P0, self.j_max, self.a_max, self.m_max) = k.pack(
                V, array.jd_rel, array.mobility, array.contrast, array._x, array.g_max, array._jrel_per_V,
                p.creep_onset, p.polarity == "bipolar", RHO_EDGES)
            self.M = self.idx.shape[0]
            self.q = int(self.cum[RHO_EDGES.size])
            self._state()
            return
        nz = np.flatnonzero(V)
        absV = np.abs(V[nz]).astype(np.float64)
        jd = array.jd_rel[nz].astype(np.float64)
        mob = array.mobility[nz]
        j_top = absV * array._jrel_per_V  # j at x = 0, the largest it can be
        can_move = (mob > 0) & (j_top >= p.creep_onset * jd)
        a = array.contrast[nz].astype(np.float64)
        x = array._x[nz].astype(np.float64)
        power = absV**2 * array.g_max[nz] * (1.0 - a * x)
        self.P_rest = float(power[~can_move].sum())  # driven but never moving: power only

        sel = np.flatnonzero(can_move)
        rho_lb = j_top[sel] * (1.0 - a[sel]) / jd[sel]
        key = np.searchsorted(RHO_EDGES, rho_lb, side="right").astype(np.int16)
        order = np.argsort(key, kind="stable")  # radix sort of small keys
        self.cum = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=RHO_EDGES.size + 1))])
        self.q = int(self.cum[RHO_EDGES.size])  # first device past depinning at any state
        sel = sel[order]
        self.cls = key[order].astype(np.int8)  # least-drive class of each packed device
        self.idx = nz[sel].astype(np.int32)
        self.M = sel.size
        up = (V[self.idx] > 0) | (p.polarity != "bipolar")
        sigma = np.where(up, -1.0, 1.0)  # x = t + σ·y with t = 1 for up, 0 for down
        t = up.astype(np.float64)
        a, jt, aV = a[sel], j_top[sel], absV[sel]
        f32 = np.float32
        self.c0 = (jt * (1.0 - a * t)).astype(f32)
        self.c1 = (-jt * a * sigma).astype(f32)
        gV2 = aV**2 * array.g_max[self.idx]
        self.P0 = float(np.sum(gV2 * (1.0 - a * t))) + self.P_rest
        self.u = (-gV2 * a * sigma).astype(f32)
        self.jd = jd[sel].astype(f32)
        self.mob = mob[sel].copy()
        self.up = up
        self.j_max = float(jt.max()) if self.M else 0.0
        self.a_max = float(a.max()) if self.M else 0.0
        self.m_max = float(self.mob.max()) if self.M else 0.0
        self._state()

    def _state(self) -> None:
        self.y = np.empty(self.M, np.float32)
        self.live = False  # y holds the state (and array._x is stale for these devices)
        self.synced = False  # while live: array._x holds a copy of y's state for these devices
        self.idle = 0.0  # relaxation exponent (unit mobility) the packed devices owe for idle time
        self.weak_end = self.M  # packed devices past it are never below the step's threshold

    def repack_voltages(self, array: DeviceArray, V: np.ndarray) -> bool:
        """Take new voltages V that leave the packing as it is (the same movable devices,
        pushed the same way, none more than one least-drive class below the one it was packed
        in, the margin of RHO_EDGES and prefix): the drive terms follow V, the
        packed state stays packed. A floating circuit changes every device's voltage a little
        as conductances move, so a pulse train through contact resistance would otherwise
        repack at every pulse. False (repack needed) if V changes the structure."""
        p = array.preset
        k = array._k
        if k is not None:
            ok, P_rest, P0, j_max = k.repack_voltages(
                V, array.jd_rel, array.mobility, array.contrast, array._x, array.g_max, array._jrel_per_V,
                p.creep_onset, p.polarity == "bipolar", RHO_EDGES, self.idx, self.up, self.cls,
                self.c0, self.c1, self.u)
            if not ok:
                return False
        else:
            absV = np.abs(V).astype(np.float64)
            jd = array.jd_rel.astype(np.float64)
            j_top = absV * array._jrel_per_V
            movable = (V != 0) & (array.mobility > 0) & (j_top >= p.creep_onset * jd)
            if int(np.count_nonzero(movable)) != self.M or not movable[self.idx].all():
                return False
            up = (V[self.idx] > 0) | (p.polarity != "bipolar")
            a = array.contrast[self.idx].astype(np.float64)
            jt, aV = j_top[self.idx], absV[self.idx]
            rho_lb = jt * (1.0 - a) / jd[self.idx]
            key = np.searchsorted(RHO_EDGES, rho_lb, side="right")
            if not (np.array_equal(up, self.up) and np.all(key >= self.cls - 1)):
                return False  # another direction, or down by more than the one class of margin
            rest = (V != 0) & ~movable
            x = array._x[rest].astype(np.float64)
            a_rest = array.contrast[rest].astype(np.float64)
            P_rest = float(np.sum(absV[rest]**2 * array.g_max[rest] * (1.0 - a_rest * x)))
            sigma = np.where(up, -1.0, 1.0)
            t = up.astype(np.float64)
            self.c0[:] = jt * (1.0 - a * t)
            self.c1[:] = -jt * a * sigma
            gV2 = aV**2 * array.g_max[self.idx]
            P0 = float(np.sum(gV2 * (1.0 - a * t))) + P_rest
            self.u[:] = -gV2 * a * sigma
            j_max = float(jt.max()) if self.M else 0.0
        self.P_rest, self.P0, self.j_max = float(P_rest), float(P0), float(j_max)
        self.V[:] = V
        return True

    def matches(self, V: np.ndarray, kernel: Any = None) -> bool:
        if kernel is not None:  # bitwise: −0 ≠ +0 only costs a repack
            return bool(kernel.same_bits(self.V.view(np.int32), V.view(np.int32)))
        return np.array_equal(self.V, V)

    def prefix(self, rho_threshold: float) -> int:
        """Packed devices [0, prefix) include every one whose least drive is below threshold
        (with one class of margin: see RHO_EDGES)."""
        k = int(np.searchsorted(RHO_EDGES, rho_threshold, side="right")) + 2
        return int(self.cum[min(k, self.cum.size - 1)])

    def gather(self, x: np.ndarray, kernel: Any = None) -> None:
        if kernel is not None:
            kernel.gather(x, self.idx, self.up, self.y)
        else:
            xs = x[self.idx]
            self.y[:] = np.where(self.up, 1.0 - xs, xs)
        self.live = True
        self.synced = True
        self.idle = 0.0

    def copy_out(self, x: np.ndarray, kernel: Any = None) -> None:
        """Write the packed state into x, keeping it packed."""
        if kernel is not None:
            kernel.scatter(x, self.idx, self.up, self.y)
        else:
            x[self.idx] = np.where(self.up, 1.0 - self.y, self.y)
        self.synced = True

    def relax_idle(self, x_rest: np.float32, m_max: float, kernel: Any = None) -> None:
        """Apply the idle relaxation owed, rounded exactly as unpacking, relaxing and repacking."""
        K, self.idle = self.idle, 0.0
        if K == 0.0 or self.M == 0:
            return
        self.synced = False
        if K * m_max < 1e-4 and kernel is not None:
            kernel.relax_packed_small(self.y, self.up, self.mob, x_rest, np.float32(K))
            return
        x = np.where(self.up, 1.0 - self.y, self.y)
        relax(x, self.mob, x_rest, K, K * m_max < 1e-4, np.empty((2, x.shape[0]), np.float32))
        self.y[:] = np.where(self.up, 1.0 - x, x)

    def nbytes(self) -> int:
        arrays = (self.V, self.idx, self.c0, self.c1, self.u, self.jd, self.mob, self.y, self.up, self.cls)
        return sum(a.nbytes for a in arrays)


def relax(x: np.ndarray, m: np.ndarray, x_rest: np.float32, K: float, small: bool,
           scratch: np.ndarray) -> None:
    """x ← x_rest + (x − x_rest)·exp(−m·K) in place (the series 1 − mK when `small`)."""
    t = scratch[0, :x.shape[0]]
    np.subtract(x, x_rest, out=t)
    if small:
        t *= m
        t *= np.float32(K)
        x -= t
    else:
        d = np.multiply(m, np.float32(-K), out=scratch[1, :x.shape[0]])
        np.exp(d, out=d)
        t *= d
        np.add(t, x_rest, out=x)


def exp_neg(lam: np.ndarray, top: float, tmp: np.ndarray) -> np.ndarray:
    """exp(−λ) in place (λ ≥ 0, largest `top`): the series while it is exact in float32."""
    if top >= POLY_MAX_LAM:
        np.negative(lam, out=lam)
        return np.exp(lam, out=lam)
    terms = 1
    while top ** (terms + 1) / math.factorial(terms + 1) > 2e-8:
        terms += 1
    # Horner: 1 − λ(1 − λ/2(1 − λ/3(…)))
    np.multiply(lam, np.float32(1.0 / terms), out=tmp)
    for k in range(terms - 1, 0, -1):
        np.subtract(np.float32(1.0), tmp, out=tmp)
        tmp *= lam
        tmp *= np.float32(1.0 / k)
    np.subtract(np.float32(1.0), tmp, out=lam)
    return lam


def exact_steps(d: Drive, sel: slice | np.ndarray, noise: np.ndarray | None, T_film: float, dt: float,
                p: Any, rate_scale: float) -> float:
    """Exact exponential steps of packed devices `sel` with the float64 law (the numpy kernel's;
    ``noise``: the drive's cycle-noise factors, packed order). The rates are frozen over each
    sub-step; sub-steps keep the relative conductance change per sub-step below _MAX_DG, so the
    feedback of G on j is followed. Returns the largest exponent."""
    y = d.y[sel].astype(np.float64)
    c0, c1, jd = d.c0[sel], d.c1[sel].astype(np.float64), d.jd[sel]
    mob = d.mob[sel].astype(np.float64)
    up = d.up[sel]
    t = up.astype(np.float64)
    sigma = np.where(up, -1.0, 1.0)
    if noise is not None:
        noise = noise[sel]

    def rates(y: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
        v, k = physics.drive_rates(c0 + c1 * y, jd, T_film, p)
        push = v * mob * (rate_scale * h)
        if noise is not None:
            push *= noise
        return push, k * mob * h

    push, relax = rates(y, dt)
    lam_max = float((push + relax).max()) if y.size else 0.0
    n = 1
    if lam_max * d.a_max > _MAX_DG:
        n = min(math.ceil(lam_max * d.a_max / _MAX_DG), _MAX_SUBSTEPS)
    h = dt / n
    for i in range(n):
        if i or n > 1:
            push, relax = rates(y, h)
        lam = push + relax
        x = t + sigma * y
        safe = np.where(lam > 0, lam, 1.0)
        x_inf = np.where(lam > 0, (push * t + relax * p.rest_state) / safe, x)
        x = x_inf + (x - x_inf) * np.exp(-lam)
        y = np.clip((x - t) * sigma, 0.0, 1.0)
    d.y[sel] = y
    return lam_max
