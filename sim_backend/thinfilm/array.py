"""The continuous film as the device array of a simulated bench.

Seen from its n contacts a linear resistive film is exactly a complete graph of pair
conductances G_ij = −K_ij (K its Dirichlet-to-Neumann matrix, :mod:`.dtn`), so the film
joins the circuit through the same n(n−1)/2 pair "devices" as the pair model
(:func:`sim_backend.topology.film`): buses, relays, guards, sneak paths and compliance work
unchanged. What differs is behind the pairs: one texture field and one temperature field on
a mesh, which every pair's current changes and every pair's conductance sees.

Per call of :meth:`FilmArray.advance` with pair voltages (V_a − V_b):
  contact voltages from the pairs (0, i): V_0 = 0, V_i = −(V_0 − V_i) (only differences matter)
  → interior potential from the present factorization, φ_f = −X·V (no new solve)
  → per cell E = −∇φ (2×2 Gauss points), j = σE, Joule power t·∫ j·E dA
  → heat step (:mod:`.heat`) → texture step (:mod:`.texture`) at the new temperature.
The conductance matrix is refactorized lazily, the next time it is asked for, and only when
the state has moved the resistivity of some cell by more than half the read noise (see
``REFRESH_MIN``), so reads at the read voltage do not refactorize the film.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..presets import FilmPreset
from ..topology import Topology
from . import texture
from .disorder import correlated_field, stuck_regions
from .dtn import ContactMap
from .heat import HeatSolver
from .mesh import FilmMesh, perimeter_contacts, Contact

# The factorization goes stale once some cell's resistivity has moved by more than half the
# preset's read noise (relative; never less than REFRESH_MIN): pair conductances then lag the
# truth by less than half a read-noise sigma. Measured on the shipped preset: a 20 ms read at
# its read voltage (0.02 V) warms the hottest cell by 0.03 K (Δρ/ρ 9e-5, max ΔG/G 8e-5), so
# reads do not refactorize the film; a training pulse always does.
REFRESH_MIN = 1e-7
_STEADY = 1e4  # a step longer than this many thermal time constants ends at the steady state
_FIELDS_KEPT = 64  # drive configurations whose fields are kept per factorization (reads repeat)


def film_mesh(p: FilmPreset, n_contacts: int) -> FilmMesh:
    """The preset's mesh: contacts evenly spaced on the perimeter (shifted by the offset)."""
    n = p.cells_per_side
    contacts = perimeter_contacts(n, n_contacts, p.contact_width_fraction)
    if p.contact_offset_fraction:
        shift = int(round(p.contact_offset_fraction * 4 * n / n_contacts))
        contacts = [Contact(c.start + shift, c.stop + shift) for c in contacts]
    return FilmMesh(n, p.side_m, p.thickness_m, contacts)


@dataclass
class _Owed:
    """Relaxation owed to the texture: at the present field for ``tau``, after earlier fields."""

    T: np.ndarray  # the field it is owed at now
    off_map: float  # max|q − q_map| when it began
    from_rest: float  # max|q − q_rest| when it began
    tau: float = 0.0  # seconds at T
    kt: np.ndarray | None = None  # Σ k·τ per cell of the fields left behind
    kt_max: float = 0.0  # Σ max(k)·τ of them


class FilmArray:
    """A continuous film with the DeviceArray interface SimulatedBench uses."""

    def __init__(self, topology: Topology, preset: FilmPreset, rng: np.random.Generator,
                 mesh: FilmMesh | None = None) -> None:
        if topology.kind != "film":
            raise ValueError(f"the continuous film preset {preset.name!r} needs a film topology, got a {topology.kind}")
        self.topology = topology
        self.preset = p = preset
        self.rng = rng
        self.mesh = m = mesh if mesh is not None else film_mesh(p, topology.n)
        if m.n_contacts != topology.n:
            raise ValueError(f"mesh has {m.n_contacts} contacts, topology {topology.n}")
        C = m.n_cells
        n = m.n
        # disorder, drawn in a fixed order so a seed fixes the whole film
        self.rho_rel = 1.0 + p.resistivity_disorder * correlated_field(rng, n, m.h, p.disorder_correlation_m)
        self.jd = p.j_depin_A_per_m2 * np.maximum(
            1.0 + p.pinning_disorder * correlated_field(rng, n, m.h, p.disorder_correlation_m), 0.05)
        stuck_field = correlated_field(rng, n, m.h, p.disorder_correlation_m)
        self.stuck = stuck_regions(stuck_field, p.stuck_fraction)
        self.mobility = np.where(self.stuck, 0.0, 1.0)
        angle = rng.uniform(0.0, np.pi, C)  # domain axis of a cell's residual order
        self.q_rest = p.rest_order * np.stack([np.cos(2 * angle), np.sin(2 * angle)], axis=1)
        self.q = self.q_rest + (p.initial_order - p.rest_order) * np.stack([np.cos(2 * angle), np.sin(2 * angle)], axis=1)
        self.T = np.full(C, p.ambient_K)
        self.peak_temperature_K = p.ambient_K
        self.heat = HeatSolver(n, p)
        self._noise = np.ones(C)
        self._a = topology.devices[:, 0]
        self._b = topology.devices[:, 1]
        self._first = np.array([topology.device_index(0, i) for i in range(1, topology.n)], dtype=np.intp)
        self._map: ContactMap | None = None
        self._sigma = None  # conductivity the present factorization was made with
        self._map_state: tuple[np.ndarray, np.ndarray] | None = None
        self._G: np.ndarray | None = None
        self.version = 0
        self.last_fields: dict[str, np.ndarray] = {}
        self._fields_of: ContactMap | None = None
        self._fields: dict[bytes, dict[str, Any]] = {}
        self._jd_min = float(self.jd.min())
        self._moving = False
        self._q_moved = False
        self._T_kept: dict[int, tuple[np.ndarray, np.ndarray | None, dict]] = {}
        self._T_ambient = np.full(C, p.ambient_K)  # the one cooled field (kept: see _at_temperature)
        self._T_ambient.flags.writeable = False
        self._power_kept: tuple | None = None
        self._owed: _Owed | None = None  # relaxation owed to q (see _owe)

    # -- the texture: relaxation owed while nothing reads q, applied in closed form --------
    @property
    def q(self) -> np.ndarray:
        """The nematic order of each cell, (C, 2)."""
        if self._owed is not None:
            self._settle()
        return self._q

    @q.setter
    def q(self, value: np.ndarray) -> None:
        self._owed = None
        self._q = value

    owe_relaxation = True  # False: each interval's relaxation applied to q in turn (the reference)

    def _settle(self) -> None:
        """Apply the relaxation owed. Relaxing toward q_rest at a rate k(T(t)) of each cell's own
        is dq/dt = −k(t)(q − q_rest): q − q_rest shrinks by exp(−∫k dt), with ∫k dt = Σ k(T_i)·τ_i
        over the fields it stood at, exactly (the rates do not depend on q)."""
        owed, self._owed = self._owed, None
        kt = self._rate(owed.T) * owed.tau
        if owed.kt is not None:
            kt += owed.kt
        if float(kt.max(initial=0.0)) > 1e-15:
            self._q = self.q_rest + (self._q - self.q_rest) * np.exp(-kt)[:, None]

    def _rate(self, T: np.ndarray) -> np.ndarray:
        """k(T) per cell (1/s), the present field's kept (see _at_temperature)."""
        if T is self.T:
            return self._at_temperature("relax", lambda: texture.relax_rate(self.T, self.preset) * self.mobility)
        return texture.relax_rate(T, self.preset) * self.mobility

    def _k_max(self) -> float:
        """The largest relaxation rate (1/s) at the present temperature field."""
        k = self._rate(self.T)
        return self._at_temperature("relax_max", lambda: float(k.max()))

    def _owe(self, dt: float) -> float:
        """Owe dt more of relaxation at the present field; returns a bound of the step's |Δq|.
        A field left behind adds its k·τ to the owed sum (one pass), so q is touched only when
        something reads it (a read's commands alternate between two fields, none reads q)."""
        owed = self._owed
        k_max = self._k_max()
        if owed is None:
            q, q0 = self._q, (self._map_state[0] if self._map_state is not None else None)
            off_map = float(np.abs(q - q0).max()) if q0 is not None and q.size else 0.0
            owed = self._owed = _Owed(self.T, off_map, float(np.abs(q - self.q_rest).max()) if q.size else 0.0)
        elif owed.T is not self.T:
            if owed.tau > 0:
                k = self._rate(owed.T)
                owed.kt = k * owed.tau if owed.kt is None else owed.kt + k * owed.tau
                owed.kt_max += float(k.max(initial=0.0)) * owed.tau
            owed.T, owed.tau = self.T, 0.0
        owed.tau += dt
        return owed.from_rest * -np.expm1(-k_max * dt) * (1 + 1e-12)

    def _owed_off_map(self) -> float:
        """A bound of max|q − q_map| with the relaxation owed applied (|q − q_start| ≤
        |q_start − q_rest|·(1 − exp(−Σ max(k)·τ)) cell by cell)."""
        owed = self._owed
        off_map, from_rest = owed.off_map, owed.from_rest
        kt = owed.kt_max + self._k_max() * owed.tau
        return (off_map + from_rest * -np.expm1(-kt)) * (1 + 1e-12) + 4 * np.spacing(max(off_map, from_rest, 1.0))

    # -- the interface SimulatedBench uses ---------------------------------------------
    @property
    def n_devices(self) -> int:
        return self.topology.n_devices

    @property
    def film_temperature_K(self) -> float:
        return self._at_temperature("mean", lambda: float(self.T.mean()))

    @property
    def can_move(self) -> bool:
        """Whether some cell's texture moved under the last drive (False: idle or read level),
        so a caller may skip re-solving the circuit for an unchanged configuration."""
        return self._moving

    def contact_map(self) -> ContactMap:
        """The factorized film at the present state."""
        if self._map is None:
            self._sigma = texture.conductivity(self.q, self.T, self.rho_rel, self.preset)
            self._map = ContactMap(self.mesh, *self._sigma)
            self._map_state = (self.q.copy(), self.T.copy())
            self._G = self._map.pair_conductances(self.topology.devices)
        return self._map

    def matrix(self) -> np.ndarray:
        """The contacts' Dirichlet-to-Neumann matrix K (S): I = K·V."""
        return self.contact_map().K.copy()

    def conductance(self) -> np.ndarray:
        """Pair conductances G_ab = −K_ab in the topology's device order (S)."""
        self.contact_map()
        return self._G.copy()

    def read_conductance(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """One noisy read-out: true G times (1 + read_noise_rel·ξ) per pair (state untouched)."""
        g = self.conductance()
        s = self.preset.read_noise_rel
        if s > 0:
            g *= 1.0 + s * (rng or self.rng).standard_normal(g.shape[0])
        return g

    def read_sigma(self) -> float | np.ndarray:
        """σ of each pair conductance's read noise (S): read_noise_rel·|G|, or 0.0 without noise."""
        s = self.preset.read_noise_rel
        return np.abs(self.conductance()) * s if s > 0 else 0.0

    def relax(self, dt: float) -> None:
        self.advance(None, dt)

    def contact_voltages(self, device_voltages: np.ndarray) -> np.ndarray:
        v = np.zeros(self.topology.n)
        v[1:] = -np.asarray(device_voltages, dtype=np.float64)[self._first]
        return v

    def fields(self, contact_v: np.ndarray) -> dict[str, np.ndarray]:
        """Per-cell fields of a drive at the present state: E, j at the Gauss points
        (V/m, A/m², shape (C, 4, 2)), the centre current density (C, 2) and the Joule power
        of each cell (W) = t·∫ j·E dA, exact for the bilinear potential."""
        cm = self.contact_map()
        contact_v = np.asarray(contact_v, dtype=np.float64)
        key = contact_v.tobytes()
        if self._fields_of is not cm:  # fields are the factorization's: drop them with it
            self._fields_of, self._fields = cm, {}
        hit = self._fields.get(key)
        if hit is not None:
            return hit
        phi = cm.node_potentials(contact_v)
        E = -self.mesh.cell_gradients(phi)
        sxx, syy, sxy = self._sigma
        jx = sxx[:, None] * E[..., 0] + sxy[:, None] * E[..., 1]
        jy = sxy[:, None] * E[..., 0] + syy[:, None] * E[..., 1]
        m = self.mesh
        power = m.t * m.h**2 * np.mean(jx * E[..., 0] + jy * E[..., 1], axis=1)
        jc = np.stack([jx.mean(axis=1), jy.mean(axis=1)], axis=1)
        out = {"phi": phi, "E": E, "j": np.stack([jx, jy], axis=-1), "j_centre": jc, "power": power,
               "j_max": float(np.sqrt((jc * jc).sum(axis=1).max()))}
        if len(self._fields) >= _FIELDS_KEPT:
            self._fields.pop(next(iter(self._fields)))
        self._fields[key] = out
        return out

    def advance(self, device_voltages: np.ndarray | None, dt: float, *, continuing: bool = False) -> float:
        """Integrate heat and texture for dt seconds with these pair voltages (V_a − V_b).

        ``continuing=True``: the same pulse goes on (the per-pulse noise is not redrawn).
        Returns the largest relative resistivity change of a cell caused by the texture in
        this step (the circuit's step control; heating is quasi-static on its time scale).
        """
        if dt < 0:
            raise ValueError(f"dt must be ≥ 0, got {dt}")
        if dt == 0:
            return 0.0
        p = self.preset
        T_old = self.T
        r = qt = None
        if device_voltages is None or not np.any(device_voltages):
            if dt > _STEADY * self.heat.time_constant_s:
                self.T = self._T_ambient  # cooled to the substrate (to τ/dt)
            else:
                self.T = self.heat.step(T_old, np.zeros_like(T_old), dt)
        else:
            dv = np.asarray(device_voltages, dtype=np.float64)
            if dv.shape != (self.n_devices,):
                raise ValueError(f"device_voltages must have shape {(self.n_devices,)}, got {dv.shape}")
            if not continuing and p.cycle_noise > 0:
                self._noise = np.exp(p.cycle_noise * self.rng.standard_normal(self.T.shape[0])
                                     - 0.5 * p.cycle_noise**2)
            f = self.fields(self.contact_voltages(dv))
            T_map = self._map_state[1]
            if dt > _STEADY * self.heat.time_constant_s:
                # the film is at its steady state for this drive (to τ/dt): one solve per drive
                steady = f.get("steady")
                if steady is None:
                    steady = f["steady"] = self.heat.step(T_map, f["power"], 10.0 * dt, T_ref=T_map)
                self.T = steady
            else:
                self.T = self.heat.step(T_old, f["power"], dt, T_ref=T_map)
            # the factorization's σ was at T_map: rescale the local current density by TCR
            scale = self._at_temperature("scale", lambda: texture.resistivity_scale(T_map, p)
                                         / texture.resistivity_scale(self.T, p))
            scale_max = self._at_temperature("scale_max", lambda: float(scale.max()))
            if f["j_max"] * scale_max >= p.creep_onset * self._jd_min:  # some cell can move
                jc = f["j_centre"] * scale[:, None]
                j_abs = np.hypot(jc[:, 0], jc[:, 1])
                r = texture.drive_rate(j_abs, self.jd, self.T, p) * self.mobility * self._noise
                qt = texture.target_order(jc[:, 0], jc[:, 1])
            kept = self._power_kept
            if kept is None or kept[0] is not f or kept[1] is not scale:
                kept = self._power_kept = (f, scale, {"power": f["power"] * scale})
            self.last_fields = kept[2]
        dq = 0.0
        self._moving = r is not None
        if r is not None:
            k = self._rate(self.T)
            q_new = texture.step_order(self.q, qt, r, k, self.q_rest, dt)
            dq = float(np.abs(q_new - self.q).max()) if self.q.size else 0.0
            self.q = q_new
        elif p.relax_attempt_Hz > 0 and self.owe_relaxation:  # pinned everywhere: relaxation only, owed
            dq = self._owe(dt)
        elif p.relax_attempt_Hz > 0:
            k = self._rate(self.T)
            # (max(k·dt) is max(k)·dt exactly: rounding is monotone)
            if self._k_max() * dt > 1e-15:
                decay = self._at_temperature(("decay", dt), lambda: np.exp(-(k * dt))[:, None])
                q_new = self.q_rest + (self.q - self.q_rest) * decay
                dq = float(np.abs(q_new - self.q).max())
                self.q = q_new
        self.peak_temperature_K = max(self.peak_temperature_K, self._at_temperature("max", lambda: float(self.T.max())))
        self._maybe_stale(dq > 0.0)
        return 0.5 * p.amr_ratio * dq

    keep_temperature_passes = True  # False: every pass made afresh (the reference tests compare with)

    def _at_temperature(self, name: Any, fn: Callable[[], Any]) -> Any:
        """fn(), a function of the temperature field and of the factorization's, kept while both
        are the same arrays: at read level the film alternates between the ambient field (at
        0 V) and a drive's steady field, each the same array command after command, so their
        per-cell passes (TCR scale, Néel–Arrhenius rates, the decay over a command's latency)
        are made once, with the values they would have each time."""
        if not self.keep_temperature_passes:
            return fn()
        T_map = self._map_state[1] if self._map_state is not None else None
        key = id(self.T)
        kept = self._T_kept.get(key)
        if kept is None or kept[0] is not self.T or kept[1] is not T_map:
            if len(self._T_kept) >= 4:
                self._T_kept.pop(next(iter(self._T_kept)))
            kept = self._T_kept[key] = (self.T, T_map, {})
        values = kept[2]
        if name not in values:
            if len(values) > 16:  # (decays for many different dt: keep the newest)
                values.pop(next(k for k in values if isinstance(k, tuple)))
            values[name] = fn()
        return values[name]

    def _maybe_stale(self, texture_moved: bool) -> None:
        if self._map is None:
            self.version += 1
            return
        q0, T0 = self._map_state
        p = self.preset
        dT = self._at_temperature("dT", lambda: float(np.abs(self.T - T0).max()))
        # bound of the relative resistivity change from TCR and from the AMR's Ms(T)²
        dTdrho = p.tcr_per_K + p.amr_ratio * 2.0 * p.curie_K / (p.curie_K**2 - p.ambient_K**2)
        limit = max(0.5 * p.read_noise_rel, REFRESH_MIN)
        if self._owed is not None:  # bounded first: q is applied only if the bound cannot clear it
            if 0.5 * p.amr_ratio * self._owed_off_map() + dTdrho * dT <= limit:
                self._q_moved = True
                return
            texture_moved = True
        dq = float(np.abs(self.q - q0).max()) if texture_moved or self._q_moved else 0.0
        self._q_moved = dq > 0.0
        if 0.5 * p.amr_ratio * dq + dTdrho * dT > limit:
            self._map = None
            self._q_moved = False
            self.version += 1

    # -- the sample ----------------------------------------------------------------------
    def sample_state(self) -> dict[str, Any]:
        """Texture and temperature fields and the peak temperature the film reached (a run
        that heated it past T_C says so in its archive). The disorder is the seed's: restore
        on a film built from the same seed. The per-pulse noise is not kept: it is redrawn
        from the bench's generator (whose state the bench keeps) when the next pulse starts."""
        return {"q": self.q.copy(), "T": self.T.copy(),
                "peak_temperature_K": float(self.peak_temperature_K),
                "film_temperature_K": self.film_temperature_K}

    def restore_sample(self, state: Mapping[str, Any]) -> None:
        q = np.asarray(state["q"], dtype=np.float64)
        if q.shape != self.q.shape:
            raise ValueError(f"sample state holds a texture of {q.shape[0]} cells; this film has {self.q.shape[0]}")
        self.q = q.copy()
        self.T = np.asarray(state["T"], dtype=np.float64).copy()
        self._noise = np.ones_like(self.T)
        self.peak_temperature_K = float(state["peak_temperature_K"])
        self._map = None
        self.version += 1

    # -- estimates -------------------------------------------------------------------------
    def steady_temperature(self, contact_v: np.ndarray) -> float:
        """Peak steady-state cell temperature (K) if these contact voltages were held."""
        f = self.fields(contact_v)
        T = self.heat.step(self.T, f["power"], 1.0, T_ref=self._map_state[1], iterations=6)
        return float(T.max())
