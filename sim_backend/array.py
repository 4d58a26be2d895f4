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

_MAX_STEP = 0.02  # largest rate·dt per internal sub-step (conductance feedback re-evaluated)
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
        self.th = (1.0 / lognormal(p.threshold_spread)).astype(f32)
        self.mobility = lognormal(p.rate_spread).astype(f32)
        stuck = rng.random(D) < p.stuck_probability
        x0 = p.initial_state + p.initial_state_spread * rng.standard_normal(D)
        x0 = np.where(stuck, rng.random(D), x0)
        self._x = np.clip(x0, 0.0, 1.0).astype(f32)
        self.mobility[stuck] = 0.0
        self.stuck = stuck

        self.window_S = p.window_S
        # j/j_depin,nominal per volt at x = 0; device area scales with its G, so geometry
        # spread changes conductance but not current density
        self._jrel_per_V = p.g_max_S / (p.cross_section_m2 * p.j_depin_A_per_m2)
        self._rate_scale = p.wall_velocity_depin_m_per_s / p.wall_length_m
        self._m_max = float(self.mobility.max()) if D else 0.0
        self._pending = 0.0  # accumulated film-temperature relaxation exponent (unit mobility)
        self._pool = np.ones(0, f32)
        self._pool_offset = 0
        self._pool_cursor = 0
        self.film_temperature_K = p.ambient_K
        self._split_hint = 0.0
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

    def nbytes(self) -> int:
        arrays = (self._x, self.g_max, self.contrast, self.th, self.mobility, self.stuck, self._pool)
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
        # fast-moving devices: re-evaluate conductance feedback on a finer grid
        n = min(math.ceil(self._split_hint / _MAX_STEP), _MAX_SUBSTEPS)
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
            block = max(256, (D + pad) // 16)
            start = self._pool_cursor
            stop = min(start + block, D + pad)
            xi = self.rng.standard_normal(stop - start, dtype=np.float32)
            self._pool[start:stop] = np.exp(sigma * xi - 0.5 * sigma * sigma)
            self._pool_cursor = 0 if stop >= D + pad else stop
        self._pool_offset = int(self.rng.integers(0, pad))

    def _flush(self) -> None:
        K = self._pending
        if K == 0.0:
            return
        self._pending = 0.0
        if K * self._m_max < _F32_TINY:
            return
        self._relax_dense(K)

    def _relax_dense(self, K: float) -> None:
        x_rest = self.preset.rest_state
        decay = np.multiply(self.mobility, np.float32(-K))
        np.exp(decay, out=decay)
        x = self._x
        if x_rest == 0.0:
            x *= decay
        else:
            x -= x_rest
            x *= decay
            x += x_rest
        self.version += 1

    def _step(self, V: np.ndarray, dt: float, *, split_ok: bool) -> float | None:
        """One exact-exponential step at frozen rates; None (nothing changed) if it must be split."""
        p = self.preset
        x = self._x
        g_rel = np.multiply(self.contrast, x)
        np.subtract(np.float32(1.0), g_rel, out=g_rel)  # G/g_max
        j_rel = np.abs(V)
        j_rel *= g_rel
        g_rel *= self.g_max
        power = float(np.dot(np.square(V), g_rel))
        T_film = physics.film_temperature(power, p)
        k_film = physics.relaxation_rate(T_film, p)
        j_rel *= np.float32(self._jrel_per_V)
        rho = np.multiply(j_rel, self.th)
        idx = np.flatnonzero(rho >= np.float32(p.creep_onset))
        if idx.size:
            idx = idx[self.mobility[idx] > 0]

        K_before = self._pending
        K_total = K_before + k_film * dt
        if idx.size == 0:
            self.film_temperature_K = T_film
            self._pending = K_total
            return K_total * self._m_max
        r_up, r_down, k, lam = self._rates(idx, j_rel[idx], rho[idx], T_film, V)
        lam_dt = float(lam.max()) * dt
        if split_ok and lam_dt > _MAX_STEP:
            self._split_hint = lam_dt
            return None

        self.film_temperature_K = T_film
        x_rest = p.rest_state
        x_m = x[idx].astype(np.float64)
        if K_before:
            x_m = x_rest + (x_m - x_rest) * np.exp(-self.mobility[idx] * K_before)
        if K_total * self._m_max >= _F32_TINY:
            self._pending = 0.0
            self._relax_dense(K_total)
        else:
            self._pending = K_total
        new = physics.soft_bound_step(x_m, r_up, r_down, k, x_rest, dt)
        np.clip(new, 0.0, 1.0, out=new)
        change = float(np.max(np.abs(new - x_m)))
        x[idx] = new
        self.version += 1
        return max(change, K_total * self._m_max)

    def _rates(self, idx, j_rel, rho, T_film, V):
        p = self.preset
        j_rel = j_rel.astype(np.float64)
        rho = rho.astype(np.float64)
        T = physics.device_temperature(T_film, j_rel, p)
        v = physics.wall_speed(rho, self.th[idx], T, p)
        m = self.mobility[idx].astype(np.float64)
        r = v * m * self._rate_scale
        if p.cycle_noise > 0:
            r *= self._pool[self._pool_offset + idx]
        k = m * physics.relaxation_rate(T, p)
        if p.relax_drive_suppression:
            k *= physics.driven_relaxation_factor(rho, p)
        if p.polarity == "bipolar":
            up = V[idx] > 0
            r_up = np.where(up, r, 0.0)
            r_down = r - r_up
        else:
            r_up, r_down = r, 0.0
        return r_up, r_down, k, r + k
