"""The device array: per-device state, spread and noise, integrated under applied voltages.

State is float32 (x ∈ [0, 1] plus four per-device parameters, 20 B/device) so a 1024²
crossbar fits in cache-friendly arrays.

Relaxation at the film temperature is the same exponential for every device up to its
mobility, so idle time is accumulated in one scalar exponent and applied when the state is
next looked at: a long wait and many short reads then give the same state, even in float32.

A drive configuration (the voltages across the devices) usually stays the same over many
steps (a pulse split by the circuit, or repeated presentations). Its devices that can move
are packed once (see ``Drive``) and integrated there. The packed state stays packed across
the 0 V gaps of a pulse train (their relaxation is owed as one exponent, ``Drive.idle``) and
while the state is looked at (copied out, not unpacked); it is merged back when the drive
changes or the state is set. A drive under which no device can reach its creep onset (a read)
is not packed at all: its one effect, the read power heating the film, sets the rate of the
shared relaxation (``_below_onset``).

Two kernels run the same update: numpy (the reference, and the fallback without numba) and
numba (``kernels.py``, the ``fast`` extra). ``HOPBENCH_KERNEL=numpy|numba|auto`` or the
``kernel`` argument picks one; auto takes numba when it imports and the array is large
(``AUTO_NUMBA_DEVICES``). They agree to a few float32 ulps, not bit for bit.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import physics
from .blas import single_thread_for
from .presets import DevicePreset
from .topology import Topology
from .drive import _MAX_DG, _MAX_SUBSTEPS, POLY_MAX_LAM, Drive, exact_steps, exp_neg, relax
from .kernel_choice import AUTO_NUMBA_DEVICES, KERNELS, kernel_name, load_kernel  # noqa: F401 - re-exported

_F32_TINY = 2.0**-26  # relative change invisible in float32 state
_BLOCK = 1 << 15  # packed devices per block: the scratch of one block stays in L2
_COMPARE_MAX = 1 << 12  # packed devices up to which a step checks whether it moved any (a copy)


class DeviceArray:
    def __init__(self, topology: Topology, preset: DevicePreset, rng: np.random.Generator,
                 *, kernel: str | None = None) -> None:
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
        self._set_onsets()
        self._pending = 0.0  # accumulated film-temperature relaxation exponent (unit mobility)
        self._pool = np.ones(0, f32)
        self._pool_offset = 0
        self._pool_cursor = 0
        self._packed_noise: np.ndarray | None = None  # the pool gathered for self._drive's packing
        self._packed_noise_drive: Drive | None = None
        self.film_temperature_K = p.ambient_K
        self._drive: Drive | None = None
        self._scratch = np.empty((3, min(_BLOCK, D)), f32)
        self._exact_law = False  # float64 rate law for every device (reference for tests)
        self._keep_packed = True  # False: unpack at every idle gap (the reference for tests)
        self._retry_voltages = 0  # new drives to pack afresh before trying repack_voltages again
        self.version = 0  # bumps whenever the state a reader sees (x, conductance) changes
        self._g_cache: tuple[int, np.ndarray] | None = None  # (version, conductances) of the last read
        self.kernel = kernel_name(kernel)  # asked for; loaded on the first step that needs it
        self._kernel_module: Any = False
        self._ones = np.ones(0, f32)  # cycle-noise factors of a noiseless preset (numba path)

    @property
    def preset(self) -> DevicePreset:
        return self._preset

    @preset.setter
    def preset(self, value: DevicePreset) -> None:
        """A swapped preset takes what is derived from it along (the onsets, a kept read drive)."""
        self._preset = value
        if hasattr(self, "_jrel_per_V"):
            self._set_onsets()

    def _set_onsets(self) -> None:
        """The lowest and highest creep onset voltage of a device that can move (at x = 0, where
        its current density is largest): below the lowest none does; per device when needed."""
        p = self._preset
        jd = self.jd_rel[self.mobility > 0].astype(np.float64)
        self._v_onset_min, self._v_onset_max = ((p.creep_onset * jd.min() / self._jrel_per_V * (1 - 1e-6),
                                                 p.creep_onset * jd.max() / self._jrel_per_V)
                                                if jd.size else (np.inf, np.inf))
        self._v_onset: np.ndarray | None = None
        self._quiet: tuple | None = None  # (V, version, film K, relaxation rate) of the last read-level drive

    @property
    def _k(self) -> Any:
        """The compiled kernel module, or None for the numpy path (imported on first use)."""
        if self._kernel_module is False:
            small = self.kernel == "auto" and self.n_devices < AUTO_NUMBA_DEVICES
            self._kernel_module = None if small else load_kernel(self.kernel)
        return self._kernel_module

    @property
    def kernel_in_use(self) -> str:
        return "numpy" if self._k is None else "numba"

    # -- state --------------------------------------------------------------
    @property
    def n_devices(self) -> int:
        return self._x.shape[0]

    @property
    def x(self) -> np.ndarray:
        self._flush()
        self._sync()
        return self._x

    @x.setter
    def x(self, value: np.ndarray) -> None:
        value = np.asarray(value, dtype=np.float64)
        if value.shape != self._x.shape:
            raise ValueError(f"state must have shape {self._x.shape}, got {value.shape}")
        if np.any((value < 0) | (value > 1)):
            raise ValueError("state x must lie in [0, 1]")
        if self._drive is not None:
            self._drive.live = False
            self._drive.idle = 0.0
        self._pending = 0.0
        self._x[:] = value
        self.version += 1

    def sample_state(self) -> dict[str, Any]:
        """What a sample carries from one run to the next: the texture of every device and
        the pending relaxation, plus the cycle-noise pool (so a continued run draws the same
        noise an uninterrupted one would). The device-to-device spread is not included: it is
        the seed's, and a restored array must be built from the same seed and preset."""
        self._write_back()
        # a checkpoint is a clean boundary: the next pulse packs afresh here as it will after a
        # restore, and the next change of voltages tries to keep that packing at once. The
        # retry back-off of _drive_for is part of the history a restore must continue (the
        # packing sets which devices take the exact law, hence float rounding): it restarts
        # here as on a fresh array.
        self._drive = None
        self._retry_voltages = 0
        self.version += 1  # the state was merged back: a solve cached on the old version is stale
        return {"x": self._x.copy(), "pending": float(self._pending), "pool": self._pool.copy(),
                "pool_offset": int(self._pool_offset), "pool_cursor": int(self._pool_cursor),
                "film_temperature_K": float(self.film_temperature_K)}

    def restore_sample(self, state: Mapping[str, Any]) -> None:
        x = np.asarray(state["x"], dtype=np.float32)
        if x.shape != self._x.shape:
            raise ValueError(f"sample state holds {x.shape[0]} devices; this array has {self._x.shape[0]}")
        if self._drive is not None:
            self._drive.live = False
        self._drive = None
        self._retry_voltages = 0  # as sample_state left it
        self._x[:] = x
        self._pending = float(state["pending"])
        self._pool = np.asarray(state["pool"], dtype=np.float32).copy()
        self._pool_offset = int(state["pool_offset"])
        self._pool_cursor = int(state["pool_cursor"])
        self._packed_noise = None
        self.film_temperature_K = float(state["film_temperature_K"])
        self.version += 1

    def conductance(self) -> np.ndarray:
        """True conductance of every device (S, float64): a fresh array the caller may keep."""
        return self.conductance_view().copy()

    def conductance_view(self) -> np.ndarray:
        """The true conductances, shared: kept until ``version`` moves (a read asks for them at
        every reading while the state stands still). Read-only: a write raises."""
        x = self.x  # first: flushing or syncing the packed state may bump the version
        hit = self._g_cache
        if hit is not None and hit[0] == self.version:
            return hit[1]
        # g_max·(1 − contrast·x) in float64, in three passes over one buffer (the float32
        # operands are widened exactly inside each ufunc, as astype would)
        g = np.multiply(self.contrast, x, dtype=np.float64)
        np.subtract(1.0, g, out=g)
        g = np.multiply(self.g_max, g, out=g, dtype=np.float64)
        g.flags.writeable = False
        self._g_cache = (self.version, g)
        return g

    def read_conductance(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """One noisy read-out of every device: true G plus read noise (state untouched)."""
        g = self.conductance_view()
        sigma = self.preset.read_noise_window * self.window_S
        if sigma > 0:
            noise = (rng or self.rng).standard_normal(g.shape[0])
            noise *= sigma
            noise += g  # the sum g + noise, rounded alike either way round
            return noise
        return g.copy()

    def read_sigma(self) -> float:
        """σ of one device's read noise (S), the same for every device."""
        return float(self.preset.read_noise_window * self.window_S)

    @property
    def stuck(self) -> np.ndarray:
        return self.mobility == 0

    @property
    def th(self) -> np.ndarray:
        """Nominal over per-device depinning current density (threshold spread)."""
        return 1.0 / self.jd_rel

    def nbytes(self) -> int:
        arrays = (self._x, self.g_max, self.contrast, self.jd_rel, self.mobility, self._pool, self._scratch, self._ones)
        extra = self._packed_noise.nbytes if self._packed_noise is not None else 0
        extra += self._v_onset.nbytes if self._v_onset is not None else 0
        return sum(a.nbytes for a in arrays) + extra + (self._drive.nbytes() if self._drive is not None else 0)

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
            d = self._drive
            if d is not None and d.live and not self._keep_packed:
                self._write_back()  # and pack afresh at the next pulse
                d = self._drive = None
            # idle relaxation acts on every device alike: the packed ones owe it in d.idle
            K = physics.relaxation_rate(p.ambient_K, p) * dt
            self.film_temperature_K = p.ambient_K
            self._pending += K
            if d is not None and d.live:
                d.idle += K
            self._note_pending()
            return self._pending * self._m_max
        V = np.asarray(device_voltages, dtype=np.float32)
        if V.shape != self._x.shape:
            raise ValueError(f"device_voltages must have shape {self._x.shape}, got {V.shape}")
        quiet = self._quiet
        if quiet is not None and quiet[0] is V and quiet[1] == self.version:
            return self._relax_at(quiet[2], quiet[3], dt)  # the same read-level drive going on
        d = self._drive
        same = d is not None and d.matches(V, self._k)  # the packed drive going on: no onset test
        if not same and self._below_all_onsets(V):
            return self._below_onset(V, dt)
        if not continuing:
            self._new_noise()
        return self._step(self._drive_for(V, same), dt)

    def _below_all_onsets(self, V: np.ndarray) -> bool:
        """Whether no device can move under V: |V_k| below device k's creep onset voltage for
        every movable k (taken a part in 1e-6 low, so a device at the edge goes to the packed
        step, whose test is exact)."""
        if not V.size:
            return True
        top = max(float(V.max()), -float(V.min()))  # (no |V| array for a drive that is not a read's)
        if top < self._v_onset_min:
            return True
        if top >= self._v_onset_max:  # the device at the top is above its own onset, whichever it is
            return False
        absV = np.abs(V)
        if self._v_onset is None:
            v = self.preset.creep_onset * self.jd_rel.astype(np.float64) / self._jrel_per_V * (1 - 1e-6)
            self._v_onset = np.where(self.mobility > 0, v, np.inf).astype(np.float32)
        return not bool(np.any(absV >= self._v_onset))

    def _below_onset(self, V: np.ndarray, dt: float) -> float:
        """A drive under which no device can move: every movable device's current density, even
        at x = 0 where it is largest, below its creep onset (read level). Its whole effect is
        the read power heating the film, Σ V²·G, which sets the rate of the closed-form
        relaxation every device shares: the step a packed drive would take with no device
        packed, without packing one (or drawing the cycle noise of a switching cycle that
        does not happen). A pulse's packing still live ends here, as a new drive's would."""
        p = self.preset
        if self._drive is not None and self._drive.live:
            self._write_back()
        self._drive = None
        g = self.conductance_view()
        w = np.square(V.astype(np.float64))  # (widened, then squared: np.square(V, dtype=float64)'s values, faster)
        with single_thread_for(V.size):  # (once per read-level drive: a command's latency costs no dot)
            power = float(np.dot(w, g))
        T_film = physics.film_temperature(power, p)
        rate = float(physics.relaxation_rate(T_film, p))
        # a read-only V is this drive while the state stands: the caller does not change it after
        # (the simulated bench's are its own copies, one per circuit solution)
        self._quiet = (V, self.version, T_film, rate) if not V.flags.writeable else None
        return self._relax_at(T_film, rate, dt)

    def _relax_at(self, T_film: float, rate: float, dt: float) -> float:
        self.film_temperature_K = T_film
        self._pending += rate * dt
        self._note_pending()
        return self._pending * self._m_max

    @property
    def can_move(self) -> bool:
        """Whether any device of the present drive can move (False: idle or read level only).

        While it is False the state a reader sees changes only by the closed-form relaxation
        (``version`` bumps when that becomes visible in float32), so a caller may skip
        re-solving a circuit for an unchanged configuration."""
        d = self._drive
        return d is not None and d.live and d.M > 0

    def _note_pending(self) -> None:
        """Bump the version when the pending relaxation would now show in what a reader sees."""
        if self._pending * self._m_max >= _F32_TINY:
            self.version += 1

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
        self._packed_noise = None

    def _noise(self, d: Drive) -> np.ndarray | None:
        """Cycle-to-cycle factors of the packed devices of d for the present pulse, in packed order.

        A device's factor is taken from the pool by its device index, not its packed position:
        the realization is then the seed's and the pulse history's alone, the same whatever
        packing (class edges, a kept or a fresh packing, numpy or numba) the drive runs in."""
        if self.preset.cycle_noise == 0:
            return None
        if self._packed_noise is None or self._packed_noise_drive is not d:
            self._packed_noise = self._pool[self._pool_offset + d.idx]
            self._packed_noise_drive = d
        return self._packed_noise

    def _sync(self) -> None:
        """Make _x hold every device's state, the packed ones staying packed."""
        d = self._drive
        if d is None or not d.live:
            return
        if d.idle * self._m_max >= _F32_TINY:  # the rule of _flush: applied once visible
            d.relax_idle(np.float32(self.preset.rest_state), self._m_max, self._k)
            if d.M:
                self.version += 1  # the packed devices relaxed: what a reader sees moved
        if not d.synced:
            d.copy_out(self._x, self._k)

    def _write_back(self) -> None:
        """End the packing: the packed state back into _x, every device owing the same relaxation."""
        d = self._drive
        if d is None or not d.live:
            return
        d.relax_idle(np.float32(self.preset.rest_state), self._m_max, self._k)
        if self._pending > 0:  # idle devices first: the packed ones are overwritten
            K, self._pending = self._pending, 0.0
            self._relax_dense(K)
        d.copy_out(self._x, self._k)
        d.live = False

    def _drive_for(self, V: np.ndarray, same: bool | None = None) -> Drive:
        """The packed drive for V (``same``: whether the present one's voltages are V, if known)."""
        d, k = self._drive, self._k
        if same is None:
            same = d is not None and d.matches(V, k)
        if not same and d is not None and d.live and self._keep_packed:
            if self._retry_voltages == 0:
                same = d.repack_voltages(self, V)
                # a failed try costs a pass: when drives keep changing structure, try less often
                self._retry_voltages = 0 if same else 8
            else:
                self._retry_voltages -= 1
        if not same:
            self._write_back()  # (a failed repack_voltages leaves y, idx and up intact)
            self._flush(force=True)
            d = self._drive = Drive(self, V)
        elif not d.live:
            self._flush(force=True)
        if not d.live:
            d.gather(self._x, k)
        elif d.idle:
            d.relax_idle(np.float32(self.preset.rest_state), self._m_max, k)
            if d.M:
                self.version += 1  # the packed devices relaxed: what a reader sees moved (as in _sync)
        return d

    def _flush(self, *, force: bool = False) -> None:
        K = self._pending
        if K == 0.0 or (not force and K * self._m_max < _F32_TINY):
            return  # invisible in float32 yet: keep accumulating
        self._pending = 0.0
        self._relax_dense(K)

    def _relax_dense(self, K: float) -> None:
        """Relax every device in _x by exp(−m·K) (packed positions are overwritten after)."""
        x_rest = np.float32(self.preset.rest_state)
        x, m = self._x, self.mobility
        small = K * self._m_max < 1e-4  # exp(−mK) = 1 − mK to float32 precision
        if small and self._k is not None:
            self._k.relax_small(x, m, x_rest, np.float32(K))
        else:
            for s in range(0, x.shape[0], _BLOCK):
                e = min(s + _BLOCK, x.shape[0])
                relax(x[s:e], m[s:e], x_rest, K, small, self._scratch[:, :e - s])
        if self._drive is not None:
            self._drive.synced = False
        self.version += 1

    def _step(self, d: Drive, dt: float) -> float:
        """One step of dt with frozen film temperature; returns the largest state change.

        Weakly driven devices (whose restoring hops may still be visible, or which may stop
        at the creep onset) and devices whose conductance moves fast go through the exact
        float64 law (the latter on a finer grid of j); all others through the float32 form
        with no visible relaxation, block by block.
        """
        p = self.preset
        power = d.P0 + float(np.dot(d.u, d.y)) if d.M else d.P_rest
        T_film = physics.film_temperature(power, p)
        k_film = float(physics.relaxation_rate(T_film, p))
        self.film_temperature_K = T_film
        self._pending += k_film * dt
        if d.M == 0:  # nothing moves: only the closed-form relaxation goes on
            self._note_pending()
            return self._pending * self._m_max
        # a few packed devices (a read that can creep the weakest): whether the step moved them
        # in float32, so that a reader's solve is kept while it did not
        y0 = d.y.copy() if d.M <= _COMPARE_MAX else None
        lam_max = self._integrate_packed(d, T_film, dt)
        if y0 is None or not np.array_equal(y0, d.y):
            self.version += 1
            d.synced = False
        else:
            self._note_pending()
        return max(lam_max, self._pending * self._m_max)

    def _integrate_packed(self, d: Drive, T_film: float, dt: float) -> float:
        """The packed devices of d over dt at film temperature T_film; the largest change."""
        p = self.preset

        threshold = p.creep_onset
        if p.relax_attempt_Hz > 0:
            T_hot = T_film + p.self_heating_K_at_depin * d.j_max**2
            visible = float(physics.relaxation_rate(T_hot, p)) * dt * d.m_max / _F32_TINY
            if visible >= 1.0:
                beta = p.relax_drive_suppression
                threshold = max(threshold, math.log(visible) / beta if beta > 0 else math.inf)
        # below depinning the drive of each device is checked as it goes; past it, by class
        P = d.M if self._exact_law else (d.prefix(threshold) if threshold >= 1.0 else 0)
        lam_max = self._exact(d, slice(0, P), T_film, dt) if P else 0.0

        scale = self._rate_scale * dt
        lam_fast = _MAX_DG / d.a_max
        inv_threshold = np.float32(1.0 / threshold)
        d.weak_end = d.prefix(threshold)  # past it every device's least drive is above threshold
        k = self._k
        law = self._block_numba if k is not None else self._block_numpy
        slow: list[np.ndarray] = []
        for lo, hi, creep in ((P, d.q, True), (max(P, d.q), d.M, False)):
            for s in range(lo, hi, _BLOCK):
                e = min(s + _BLOCK, hi)
                lam_max = max(lam_max, law(d, s, e, creep, T_film, scale, inv_threshold, lam_fast, slow))
        if slow:
            lam_max = max(lam_max, self._exact(d, np.unique(np.concatenate(slow)), T_film, dt))
        return lam_max

    def _block_numpy(self, d: Drive, s: int, e: int, creep: bool, T_film: float, scale: float,
                     inv_threshold: np.float32, lam_fast: float, slow: list[np.ndarray]) -> float:
        """The float32 law on packed devices [s, e) with numpy passes (the reference kernel)."""
        p = self.preset
        n = e - s
        j, lam, tmp = self._scratch[0, :n], self._scratch[1, :n], self._scratch[2, :n]
        np.multiply(d.c1[s:e], d.y[s:e], out=j)
        j += d.c0[s:e]
        weak = None
        if creep:
            np.divide(d.jd[s:e], j, out=lam)  # 1/rho
            if float(lam.max()) > inv_threshold:  # weakly driven: exact law
                weak = np.flatnonzero(lam > inv_threshold)
                j[weak] = d.jd[s + weak]  # any drive past the threshold: result discarded
                slow.append(weak + s)
        physics.scaled_speed_above_onset(j, d.jd[s:e], T_film, scale, p, lam, tmp, creep=creep,
                                         inv_rho_given=creep)
        lam *= d.mob[s:e]
        noise = self._noise(d)
        noise = None if noise is None else noise[s:e]
        if noise is not None:
            lam *= noise
        top = self._route(lam, s, weak, lam_fast, slow)
        d.y[s:e] *= exp_neg(lam, top, tmp)
        return top

    def _block_numba(self, d: Drive, s: int, e: int, creep: bool, T_film: float, scale: float,
                     inv_threshold: np.float32, lam_fast: float, slow: list[np.ndarray]) -> float:
        """The float32 law on packed devices [s, e): compiled passes around np.exp."""
        p, k = self.preset, self._k
        n = e - s
        lam, inv = self._scratch[1, :n], self._scratch[2, :n]
        f32 = np.float32
        c0, c1, y, jd, mob = d.c0[s:e], d.c1[s:e], d.y[s:e], d.jd[s:e], d.mob[s:e]
        noise = self._noise(d)
        noise = None if noise is None else noise[s:e]
        if noise is None:
            if self._ones.shape[0] < n:
                self._ones = np.ones(self._scratch.shape[1], f32)
            noise = self._ones[:n]
        weak = None
        if creep:
            if s < d.weak_end:  # only devices before weak_end can be weakly driven
                k.inverse_drive(c0, c1, y, jd, inv)
                if float(inv.max()) > inv_threshold:  # weakly driven: exact law
                    weak = np.flatnonzero(inv > inv_threshold)
                    slow.append(weak + s)
            args = (c0, c1, y, jd, f32(T_film), f32(p.self_heating_K_at_depin), f32(-p.creep_barrier_K),
                    f32(math.log(scale)))
            if p.creep_exponent == 0.25:
                k.creep_exponent_quarter(*args, inv)
            else:
                k.creep_exponent(*args, f32(p.creep_exponent), inv)
            np.exp(inv, out=inv)
            k.push_creep(c0, c1, y, jd, mob, noise, inv, f32(p.flow_slope * scale), lam)
        else:
            k.push_flow(c0, c1, y, jd, mob, noise, f32(scale), f32(p.flow_slope * scale), lam)
        top = self._route(lam, s, weak, lam_fast, slow)
        if top < POLY_MAX_LAM:
            k.decay(y, lam)
        else:
            np.negative(lam, out=lam)
            np.exp(lam, out=lam)
            y *= lam
        return top

    @staticmethod
    def _route(lam: np.ndarray, s: int, weak: np.ndarray | None, lam_fast: float,
               slow: list[np.ndarray]) -> float:
        """Zero λ of the devices the exact law takes (weak drive, fast conductance change);
        returns the largest λ left."""
        if weak is not None:
            lam[weak] = 0.0
        top = float(lam.max())
        if top > lam_fast:  # conductance feedback within the step: finer grid
            fast = np.flatnonzero(lam > lam_fast)
            lam[fast] = 0.0
            slow.append(fast + s)
            top = float(lam.max())
        return top

    def _exact(self, d: Drive, sel: slice | np.ndarray, T_film: float, dt: float) -> float:
        """Exact exponential steps of packed devices `sel` with the float64 law.

        The rates are frozen over each sub-step; sub-steps keep the relative conductance
        change per sub-step below _MAX_DG, so the feedback of G on j is followed.
        """
        p = self.preset
        k = self._k
        if k is not None:
            idx = np.arange(sel.start, sel.stop) if isinstance(sel, slice) else sel
            pool = self._noise(d) if p.cycle_noise else d.y
            return float(k.exact_steps(
                d.y, idx, d.c0, d.c1, d.jd, d.mob, d.up, pool, bool(p.cycle_noise), T_film, dt,
                d.a_max, _MAX_DG, _MAX_SUBSTEPS, p.creep_onset, p.creep_exponent, p.creep_barrier_K,
                p.self_heating_K_at_depin, p.flow_slope, p.relax_attempt_Hz, p.relax_barrier_K,
                p.relax_drive_suppression, self._rate_scale, float(physics.relaxation_rate(float(T_film), p)),
                p.rest_state))
        return exact_steps(d, sel, self._noise(d), T_film, dt, p, self._rate_scale)
