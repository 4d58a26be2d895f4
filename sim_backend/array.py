"""The device array: per-device state, spread and noise, integrated under applied voltages.

State is float32 (x ∈ [0, 1] plus four per-device parameters, 20 B/device) so a 1024²
crossbar fits in cache-friendly arrays. Devices below the creep onset only relax; the
creep/flow law is evaluated on the above-threshold devices alone.

Relaxation at the film temperature is the same exponential for every device up to its
mobility, so idle time is accumulated in one scalar exponent and applied when the state is
next looked at: a long wait and many short reads then give the same state, even in float32.
"""
from __future__ import annotations

import math

import numpy as np

from . import physics
from .presets import DevicePreset
from .topology import Topology

_MAX_DG = 0.02  # largest relative conductance change per internal sub-step (feedback on j)
_MAX_SUBSTEPS = 256
_F32_TINY = 2.0**-26  # relative change invisible in float32 state


class DeviceArray:
    def __init__(self, topology: Topology, preset: DevicePreset, rng: np.random.Generator) -> None:
        self.topology = topology
        self.preset = p = preset
        self.rng = rng
        D = topology.n_devices
        f32 = np.float32

        def lognormal(sigma: float) -> np.ndarray:
            return np.exp(sigma * rng.standard_normal(D)) if sigma > 0 else np.ones(D)

        # device-to-device spread, drawn in a fixed order so a seed fixes the whole array
        self.g_max = (p.g_max_S * lognormal(p.g_spread)).astype(f32)
        self.contrast = np.minimum(p.contrast * lognormal(p.contrast_spread), 0.999).astype(f32)
        self.jd_rel = lognormal(p.threshold_spread).astype(f32)  # j_depin of each device / nominal
        self.mobility = lognormal(p.rate_spread).astype(f32)
        stuck = rng.random(D) < p.stuck_probability
        x0 = p.initial_state + p.initial_state_spread * rng.standard_normal(D)
        x0 = np.where(stuck, rng.random(D), x0)
        self._x = np.clip(x0, 0.0, 1.0).astype(f32)
        self.mobility[stuck] = 0.0

        self.window_S = p.window_S
        # j/j_depin,nominal per volt at x = 0; device area scales with its G, so geometry
        # spread changes conductance but not current density
        self._jrel_per_V = p.g_max_S / (p.cross_section_m2 * p.j_depin_A_per_m2)
        self._rate_scale = p.wall_velocity_depin_m_per_s / p.wall_length_m
        self._m_max = float(self.mobility.max()) if D else 0.0
        self._contrast_max = float(self.contrast.max()) if D else 0.0
        self._pending = 0.0  # accumulated film-temperature relaxation exponent (unit mobility)
        self._pool = np.ones(0, f32)
        self._pool_offset = 0
        self._pool_cursor = 0
        self.film_temperature_K = p.ambient_K
        self._split_hint = 1
        self._buffers: list[np.ndarray] = []
        self.version = 0  # bumps whenever the state changes

    # -- state --------------------------------------------------------------
    @property
    def n_devices(self) -> int:
        return self._x.shape[0]

    @property
    def x(self) -> np.ndarray:
        self._flush()
        return self._x

    @x.setter
    def x(self, value: np.ndarray) -> None:
        value = np.asarray(value, dtype=np.float64)
        if value.shape != self._x.shape:
            raise ValueError(f"state must have shape {self._x.shape}, got {value.shape}")
        if np.any((value < 0) | (value > 1)):
            raise ValueError("state x must lie in [0, 1]")
        self._pending = 0.0
        self._x[:] = value
        self.version += 1

    def conductance(self) -> np.ndarray:
        """True conductance of every device (S, float64)."""
        x = self.x
        return self.g_max.astype(np.float64) * (1.0 - self.contrast.astype(np.float64) * x)

    def read_conductance(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """One noisy read-out of every device: true G plus read noise (state untouched)."""
        g = self.conductance()
        sigma = self.preset.read_noise_window * self.window_S
        if sigma > 0:
            g += sigma * (rng or self.rng).standard_normal(g.shape[0])
        return g

    @property
    def stuck(self) -> np.ndarray:
        return self.mobility == 0

    @property
    def th(self) -> np.ndarray:
        """Nominal over per-device depinning current density (threshold spread)."""
        return 1.0 / self.jd_rel

    def nbytes(self) -> int:
        arrays = (self._x, self.g_max, self.contrast, self.jd_rel, self.mobility, self._pool, *self._buffers)
        return sum(a.nbytes for a in arrays)

    # -- dynamics -----------------------------------------------------------
    def relax(self, dt: float) -> None:
        """Let the array sit for dt seconds with no drive."""
        self.advance(None, dt)

    def advance(self, device_voltages: np.ndarray | None, dt: float, *, continuing: bool = False) -> float:
        """Integrate the physics for dt seconds with these voltages (V_a − V_b) across devices.

        ``continuing=True`` marks the same pulse going on (cycle-to-cycle noise is drawn once
        per pulse, not per call). Returns the largest state change (for adaptive callers).
        """
        if dt < 0:
            raise ValueError(f"dt must be ≥ 0, got {dt}")
        if dt == 0:
            return 0.0
        p = self.preset
        if device_voltages is None:
            self.film_temperature_K = p.ambient_K
            self._pending += physics.relaxation_rate(p.ambient_K, p) * dt
            return self._pending * self._m_max
        V = np.asarray(device_voltages, dtype=np.float32)
        if V.shape != self._x.shape:
            raise ValueError(f"device_voltages must have shape {self._x.shape}, got {V.shape}")
        if not continuing:
            self._new_noise()
        change = self._step(V, dt, split_ok=True)
        if change is not None:
            return change
        # fast-changing conductances: re-evaluate the current densities on a finer grid
        n = self._split_hint
        return max(self._step(V, dt / n, split_ok=False) for _ in range(n))

    def _new_noise(self) -> None:
        sigma = self.preset.cycle_noise
        if sigma == 0:
            return
        D = self._x.shape[0]
        pad = 1031
        if self._pool.shape[0] != D + pad:
            xi = self.rng.standard_normal(D + pad, dtype=np.float32)
            self._pool = np.exp(sigma * xi - 0.5 * sigma * sigma).astype(np.float32)
        else:
            # refresh a rotating block so the pool keeps changing; offset picks a fresh view
            block = max(256, (D + pad) // 64)
            start = self._pool_cursor
            stop = min(start + block, D + pad)
            xi = self.rng.standard_normal(stop - start, dtype=np.float32)
            self._pool[start:stop] = np.exp(sigma * xi - 0.5 * sigma * sigma)
            self._pool_cursor = 0 if stop >= D + pad else stop
        self._pool_offset = int(self.rng.integers(0, pad))

    def _flush(self) -> None:
        K = self._pending
        if K * self._m_max < _F32_TINY:
            return  # invisible in float32 yet: keep accumulating
        self._pending = 0.0
        self._relax_dense(K)

    def _relax_dense(self, K: float) -> None:
        x_rest = self.preset.rest_state
        decay = np.multiply(self.mobility, np.float32(-K), out=self._buffer(0))
        if K * self._m_max < 1e-3:  # exp(−y) to 3rd order: exact in float32, 2× cheaper
            y = decay
            t = np.multiply(y, np.float32(1.0 / 3.0), out=self._buffer(1))
            t += np.float32(1.0)
            t *= y
            t *= np.float32(0.5)
            t += np.float32(1.0)
            t *= y
            np.add(t, np.float32(1.0), out=decay)
        else:
            np.exp(decay, out=decay)
        x = self._x
        if x_rest == 0.0:
            x *= decay
        else:
            x -= x_rest
            x *= decay
            x += x_rest
        self.version += 1

    def _buffer(self, k: int) -> np.ndarray:
        """Reused full-size float32 scratch arrays (fresh 4 MB temporaries cost page faults)."""
        while len(self._buffers) <= k:
            self._buffers.append(np.empty(self._x.shape[0], np.float32))
        return self._buffers[k]

    def _step(self, V: np.ndarray, dt: float, *, split_ok: bool) -> float | None:
        """One exact-exponential step at frozen rates; None (nothing changed) if it must be split.

        Only devices with a voltage across them are looked at (gathered when they are few, so
        a row write on a 1024² crossbar costs a pass over V, not over the state); idle devices
        share the film-temperature relaxation, applied lazily for all at once.
        """
        p = self.preset
        x = self._x
        D = x.shape[0]
        sel: slice | np.ndarray = slice(None)
        stride = max(1, D // 4096)  # a sample decides whether the drive is sparse
        if np.count_nonzero(V[::stride]) * stride * 4 <= D:
            sel = np.flatnonzero(V != 0)  # a bool mask is 20× faster to scan than floats
        dense = isinstance(sel, slice)
        absV = np.abs(V[sel], out=self._buffer(0) if dense else None)
        g = np.multiply(self.contrast[sel], x[sel], out=self._buffer(1) if dense else None)
        np.subtract(np.float32(1.0), g, out=g)  # G/g_max
        j = np.multiply(absV, g, out=g)
        absV *= self.g_max[sel]
        power = float(np.dot(j, absV))  # Σ V²·G
        T_film = physics.film_temperature(power, p)
        k_film = physics.relaxation_rate(T_film, p)
        j *= np.float32(self._jrel_per_V)  # j/j_depin,nominal
        jd = self.jd_rel[sel]
        onset = np.multiply(jd, np.float32(p.creep_onset), out=absV)
        pos = np.flatnonzero(j >= onset)  # positions within sel
        moving = sel[pos] if isinstance(sel, np.ndarray) else pos  # stuck ones have zero rates

        K_before = self._pending
        K_total = K_before + k_film * dt
        if moving.size == 0:
            self.film_temperature_K = T_film
            self._pending = K_total
            return K_total * self._m_max
        up, down, relax = self._rates(moving, j[pos], T_film, V, dt)
        lam = up if down is None else up + down
        if relax is not None:
            lam = lam + relax
        lam_max = float(lam.max())
        dg_max = lam_max * self._contrast_max
        if split_ok and dg_max > _MAX_DG:
            n = min(math.ceil(dg_max / _MAX_DG), _MAX_SUBSTEPS)
            self._split_hint = n
            return None

        self.film_temperature_K = T_film
        x_rest = np.float32(p.rest_state)
        x_m = x[moving]
        if K_before * self._m_max >= _F32_TINY:
            x_m -= x_rest
            x_m *= np.exp(self.mobility[moving] * np.float32(-K_before))
            x_m += x_rest
        if K_total * self._m_max >= _F32_TINY:
            self._pending = 0.0
            self._relax_dense(K_total)
        else:
            self._pending = K_total
        x[moving] = physics.soft_bound_update(x_m, up, down, relax, x_rest, lam)
        self.version += 1
        return max(lam_max, K_total * self._m_max)  # bounds the change of x

    def _rates(self, idx, j_rel, T_film, V, dt):
        """rate·dt of the moving devices: push up, push down (bipolar) and restoring (or None)."""
        p = self.preset
        m = self.mobility[idx]
        jd = self.jd_rel[idx]
        v = physics.wall_speed_fast(j_rel, jd, T_film, p)
        v *= m
        v *= np.float32(self._rate_scale * dt)
        if p.cycle_noise > 0:
            v *= self._pool[self._pool_offset + idx]
        relax = None
        if p.relax_attempt_Hz > 0:
            j_max = float(j_rel.max())
            T_max = float(physics.device_temperature(T_film, np.array(j_max), p))
            bound = physics.relaxation_rate(T_max, p) * dt * self._m_max
            bound *= math.exp(-p.relax_drive_suppression * p.creep_onset)
            if bound >= _F32_TINY:  # else restoring hops of driven devices are invisible
                T = physics.device_temperature(T_film, j_rel, p)
                relax = np.asarray(physics.relaxation_rate(T, p), dtype=np.float32)
                relax *= m
                relax *= np.float32(dt)
                if p.relax_drive_suppression:
                    relax *= physics.driven_relaxation_factor(j_rel / jd, p)
        if p.polarity == "bipolar":
            down = np.multiply(v, V[idx] < 0)
            v -= down
            return v, down, relax
        return v, None, relax
