"""Compiled (numba) passes of the device-array update; the numpy code in array.py is the reference.

Imported only when the numba kernel is selected (see ``array.load_kernel``), so a PC that
never simulates never loads numba. Every function compiles on first call and is cached on
disk (``cache=True``); nothing compiles at import.

The float32 law runs as two branch-free loops around numpy's vectorised ``np.exp`` (numba's
scalar exp does not vectorise without SVML, so a single fused loop is slower): the creep
exponent, then the push λ = scale·v·mobility·noise and the soft-bound step y ← y·exp(−λ)
by its series. ``error_model="numpy"`` keeps division free of zero checks, fastmath (the law
only) costs at most a few float32 ulps, far inside the law's tolerance against the float64
law; the loops hold no float reduction (numba's max keeps NaN order and stays scalar: numpy
takes the max of the result) and no aliased arrays (the alias check leaves a loop scalar). The relaxation and packing passes are
compiled without fastmath, so they round exactly as the numpy passes they replace.

Equations (units and ranges: physics.py): v/v_d = exp[−T_d·max(ρ^(−μ) − 1, 0)/T] +
s·max(j − j_d, 0), T = T_film + ΔT_d·j², ρ = j/j_d, j = c0 + c1·y (packed coordinates, see
drive.Drive); relaxation x ← x_rest + (x − x_rest)·exp(−m·K).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

_EXACT = {"cache": True, "nogil": True, "error_model": "numpy", "boundscheck": False}  # rounds as numpy
_LAW = {**_EXACT, "fastmath": True}


# No reductions in these loops: a float max does not vectorise here (numba's max keeps NaN
# semantics); numpy's max of the result is a SIMD pass of its own.
@nb.njit(**_LAW)
def creep_exponent_quarter(c0, c1, y, jd, T_film, heating, neg_barrier, log_scale, arg):
    """arg ← log(scale) − T_d·max(ρ^(−1/4) − 1, 0)/T (two square roots for the power)."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for i in range(y.shape[0]):
        j = c0[i] + c1[i] * y[i]
        r = np.sqrt(np.sqrt(jd[i] / j))
        arg[i] = log_scale + neg_barrier * max(r - one, zero) / (T_film + heating * j * j)


@nb.njit(**_LAW)
def creep_exponent(c0, c1, y, jd, T_film, heating, neg_barrier, log_scale, mu, arg):
    """arg ← log(scale) − T_d·max(ρ^(−μ) − 1, 0)/T."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for i in range(y.shape[0]):
        j = c0[i] + c1[i] * y[i]
        r = (jd[i] / j) ** mu
        arg[i] = log_scale + neg_barrier * max(r - one, zero) / (T_film + heating * j * j)


@nb.njit(**_LAW)
def inverse_drive(c0, c1, y, jd, inv):
    """inv ← 1/ρ = j_d/j."""
    for i in range(y.shape[0]):
        inv[i] = jd[i] / (c0[i] + c1[i] * y[i])


@nb.njit(**_LAW)
def push_creep(c0, c1, y, jd, mob, noise, e, slope_scale, lam):
    """λ ← (e + s·scale·max(j − j_d, 0))·mobility·noise, e the creep term (e must not alias λ:
    the alias check would leave the loop scalar)."""
    zero = np.float32(0.0)
    for i in range(y.shape[0]):
        j = c0[i] + c1[i] * y[i]
        lam[i] = (e[i] + slope_scale * max(j - jd[i], zero)) * mob[i] * noise[i]


@nb.njit(**_LAW)
def push_flow(c0, c1, y, jd, mob, noise, scale, slope_scale, lam):
    """λ ← (scale + s·scale·(j − j_d))·mobility·noise for devices past depinning."""
    for i in range(y.shape[0]):
        j = c0[i] + c1[i] * y[i]
        lam[i] = (scale + slope_scale * (j - jd[i])) * mob[i] * noise[i]


@nb.njit(**_LAW)
def decay(y, lam):
    """y ← y·exp(−λ) by five terms of the series (exact in float32 for λ < 0.1)."""
    one = np.float32(1.0)
    c2, c3, c4, c5 = np.float32(1 / 2), np.float32(1 / 3), np.float32(1 / 4), np.float32(1 / 5)
    for i in range(y.shape[0]):
        x = lam[i]
        t = one - x * c5
        t = one - x * c4 * t
        t = one - x * c3 * t
        t = one - x * c2 * t
        y[i] *= one - x * t


@nb.njit(**_EXACT)
def relax_small(x, m, rest, K):
    """x ← x − (x − x_rest)·m·K (exp(−mK) = 1 − mK in float32), rounded as the numpy pass."""
    for i in range(x.shape[0]):
        t = x[i] - rest
        t = t * m[i]
        t = t * K
        x[i] = x[i] - t


@nb.njit(**_EXACT)
def relax_packed_small(y, up, mob, rest, K):
    """The same relaxation of packed devices, in x: x = 1 − y if pushed up, else y."""
    one = np.float32(1.0)
    for i in range(y.shape[0]):
        x = one - y[i] if up[i] else y[i]
        t = x - rest
        t = t * mob[i]
        t = t * K
        x = x - t
        y[i] = one - x if up[i] else x


@nb.njit(**_EXACT)
def scatter(x, idx, up, y):
    one = np.float32(1.0)
    for i in range(idx.shape[0]):
        x[idx[i]] = one - y[i] if up[i] else y[i]


@nb.njit(**_EXACT)
def gather(x, idx, up, y):
    one = np.float32(1.0)
    for i in range(idx.shape[0]):
        v = x[idx[i]]
        y[i] = one - v if up[i] else v


@nb.njit(**_EXACT)
def same_bits(a, b):
    """Whether two int32 arrays (float32 views) are bit for bit equal; chunks of an integer
    OR vectorise (a float compare does not), and the scan stops at the first differing chunk."""
    n = a.shape[0]
    if n != b.shape[0]:
        return False
    chunks = n // 4096
    for c in range(chunks):  # a fixed trip count: a variable one leaves the loop scalar
        diff = np.int32(0)
        base = c * 4096
        for i in range(4096):
            diff |= a[base + i] ^ b[base + i]
        if diff != 0:
            return False
    diff = np.int32(0)
    for i in range(chunks * 4096, n):
        diff |= a[i] ^ b[i]
    return diff == 0


@nb.njit(**_EXACT)
def _rates(y, c0, c1, jd, mob, noise, T_film, h, onset, mu, barrier, heating, slope,
           f0, eb, beta, rate_scale, k_film):
    """(push, relax) of one device over h with the float64 law (physics.drive_rates)."""
    j = c0 + c1 * y
    rho = j / jd
    T = T_film + heating * (j * j)
    if rho < onset:
        return 0.0, k_film * mob * h
    if rho < 1.0:
        arg = rho ** (-mu)
        arg -= 1.0
        arg *= -barrier
        arg /= T
        v = math.exp(arg)
    else:
        v = 1.0 + slope * (rho - 1.0) / (1.0 / jd)
    k = f0 * math.exp(-eb / T) if f0 != 0.0 else 0.0
    k *= math.exp(-beta * rho)
    return v * mob * (rate_scale * h) * noise, k * mob * h


@nb.njit(**_EXACT)
def exact_steps(y32, idx, c0, c1, jd, mob, up, pool, noisy, T_film, dt, a_max, max_dg, max_substeps,
                onset, mu, barrier, heating, slope, f0, eb, beta, rate_scale, k_film, rest):
    """Exact exponential steps (float64) of packed devices idx, sub-stepped as array._exact:
    rates frozen over each sub-step, the sub-step count set by the fastest device."""
    n_dev = idx.shape[0]
    lam_max = 0.0
    for q in range(n_dev):
        i = idx[q]
        ns = pool[i] if noisy else 1.0
        p_, r_ = _rates(float(y32[i]), float(c0[i]), float(c1[i]), float(jd[i]), float(mob[i]), ns,
                        T_film, dt, onset, mu, barrier, heating, slope, f0, eb, beta, rate_scale, k_film)
        lam_max = max(lam_max, p_ + r_)
    n = 1
    if lam_max * a_max > max_dg:
        n = min(math.ceil(lam_max * a_max / max_dg), max_substeps)
    h = dt / n
    for q in range(n_dev):
        i = idx[q]
        ns = pool[i] if noisy else 1.0
        t = 1.0 if up[i] else 0.0
        sigma = -1.0 if up[i] else 1.0
        y = float(y32[i])
        for _ in range(n):
            p_, r_ = _rates(y, float(c0[i]), float(c1[i]), float(jd[i]), float(mob[i]), ns,
                            T_film, h, onset, mu, barrier, heating, slope, f0, eb, beta, rate_scale, k_film)
            lam = p_ + r_
            x = t + sigma * y
            x_inf = (p_ * t + r_ * rest) / lam if lam > 0 else x
            x = x_inf + (x - x_inf) * math.exp(-lam)
            y = min(max((x - t) * sigma, 0.0), 1.0)
        y32[i] = y
    return lam_max


@nb.njit(**_EXACT)
def pack(V, jd_rel, mobility, contrast, x, g_max, jrel_per_V, onset, bipolar, edges):
    """The movable devices of drive V in two passes (a counting sort by least-drive class,
    stable as drive.Drive's argsort): the per-device terms of Drive, by the same formulas."""
    D = V.shape[0]
    nk = edges.shape[0] + 1
    counts = np.zeros(nk, np.int64)
    key = np.empty(D, np.int16)
    P_rest = 0.0
    for i in range(D):
        key[i] = -1
        if V[i] == 0:
            continue
        aV = abs(float(V[i]))
        jd = float(jd_rel[i])
        jt = aV * jrel_per_V  # j at x = 0, the largest it can be
        a = float(contrast[i])
        if mobility[i] > 0 and jt >= onset * jd:
            rho = jt * (1.0 - a) / jd
            lo, hi = 0, edges.shape[0]  # searchsorted(edges, rho, side="right")
            while lo < hi:
                mid = (lo + hi) // 2
                if edges[mid] <= rho:
                    lo = mid + 1
                else:
                    hi = mid
            key[i] = lo
            counts[lo] += 1
        else:  # driven but never moving: power only
            P_rest += aV ** 2 * float(g_max[i]) * (1.0 - a * float(x[i]))
    cum = np.zeros(nk + 1, np.int64)
    for k in range(nk):
        cum[k + 1] = cum[k] + counts[k]
    M = cum[nk]
    pos = cum[:nk].copy()
    idx = np.empty(M, np.int32)
    c0 = np.empty(M, np.float32)
    c1 = np.empty(M, np.float32)
    u = np.empty(M, np.float32)
    jd32 = np.empty(M, np.float32)
    mob = np.empty(M, np.float32)
    up = np.empty(M, np.bool_)
    cls = np.empty(M, np.int8)
    P0 = 0.0
    j_max = 0.0
    a_max = 0.0
    m_max = 0.0
    for i in range(D):
        k = key[i]
        if k < 0:
            continue
        q = pos[k]
        pos[k] += 1
        aV = abs(float(V[i]))
        jt = aV * jrel_per_V
        a = float(contrast[i])
        push_up = V[i] > 0 or not bipolar
        t = 1.0 if push_up else 0.0
        sigma = -1.0 if push_up else 1.0
        idx[q] = i
        c0[q] = jt * (1.0 - a * t)
        c1[q] = -jt * a * sigma
        gV2 = aV ** 2 * float(g_max[i])
        P0 += gV2 * (1.0 - a * t)
        u[q] = -gV2 * a * sigma
        jd32[q] = jd_rel[i]
        mob[q] = mobility[i]
        up[q] = push_up
        cls[q] = k
        j_max = max(j_max, jt)
        a_max = max(a_max, a)
        m_max = max(m_max, float(mobility[i]))
    return idx, c0, c1, u, jd32, mob, up, cls, cum, P_rest, P0 + P_rest, j_max, a_max, m_max


@nb.njit(**_EXACT)
def repack_voltages(V, jd_rel, mobility, contrast, x, g_max, jrel_per_V, onset, bipolar, edges,
                    idx, up, cls, c0, c1, u):
    """The same movable set under new voltages V (same devices and directions, no device more
    than one least-drive class below its packed one): rewrite c0, c1, u in place by pack's
    formulas and return (ok, P_rest, P0, j_max); ok False (the arrays then partly rewritten)
    if V moves any device out of that structure."""
    P_rest = 0.0
    n_move = 0
    for i in range(V.shape[0]):
        if V[i] == 0:
            continue
        aV = abs(float(V[i]))
        jd = float(jd_rel[i])
        jt = aV * jrel_per_V
        if mobility[i] > 0 and jt >= onset * jd:
            n_move += 1
        else:
            P_rest += aV ** 2 * float(g_max[i]) * (1.0 - float(contrast[i]) * float(x[i]))
    if n_move != idx.shape[0]:
        return False, 0.0, 0.0, 0.0
    P0 = 0.0
    j_max = 0.0
    for q in range(idx.shape[0]):
        i = idx[q]
        if V[i] == 0:
            return False, 0.0, 0.0, 0.0
        aV = abs(float(V[i]))
        jd = float(jd_rel[i])
        jt = aV * jrel_per_V
        a = float(contrast[i])
        push_up = V[i] > 0 or not bipolar
        k = cls[q]
        rho = jt * (1.0 - a) / jd
        if not jt >= onset * jd or push_up != up[q] or (k > 1 and edges[k - 2] > rho):
            return False, 0.0, 0.0, 0.0
        t = 1.0 if push_up else 0.0
        sigma = -1.0 if push_up else 1.0
        c0[q] = jt * (1.0 - a * t)
        c1[q] = -jt * a * sigma
        gV2 = aV ** 2 * float(g_max[i])
        P0 += gV2 * (1.0 - a * t)
        u[q] = -gV2 * a * sigma
        j_max = max(j_max, jt)
    return True, P_rest, P0 + P_rest, j_max
