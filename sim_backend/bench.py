"""The simulated bench: source buses, switch-matrix relays and the device array as one circuit.

Simulated instruments act on it (levels, outputs, relays, measurements); the device physics
integrates the voltages the circuit actually puts across each device over virtual time.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .adjoints import DRIFT, UnitResponses
from .array import DeviceArray
from .blas import single_thread_for
from .circuit import Circuit, CircuitSolution, Source
from .clock import VirtualClock
from .kept_solutions import REFERENCES, KeptSolutions
from .presets import DevicePreset, FilmPreset, load_preset
from .read_noise import MARGIN_SIGMAS, current_change, current_sigmas
from .thinfilm import FilmArray
from .topology import Topology

_CHUNK_CHANGE = 0.02  # state change per chunk before a floating circuit is re-solved
TIMELINE_MAX = 100_000  # level changes the applied timeline keeps (the oldest drop out)
KEPT_OWN_BYTES = 32 << 20  # most the solutions kept across configurations hold in conductances


@dataclass
class _Solved:
    """A configuration's last solve: what it was solved at, and what carrying it needs."""

    config: int  # the configuration version
    version: int  # the state version
    G: np.ndarray  # the conductances (S)
    sol: CircuitSolution
    clear: bool | None = None  # no source in or near its limit (None: not yet asked)
    drift_version: int | None = None  # the state version ``drift`` is for
    drift: dict[str, float | None] = field(default_factory=dict)  # bus → its current's first-order change


class SimulatedBench:
    def __init__(
        self,
        topology: Topology,
        preset: DevicePreset | str | Path | Mapping[str, Any],
        *,
        seed: int,
        buses: Sequence[str],
        crosspoints: Mapping[str, tuple[str, str]],
        contact_resistance_ohm: float = 1.0,
        source_resistance_ohm: float = 0.0,
        realtime: bool = False,
    ) -> None:
        if contact_resistance_ohm < 0 or source_resistance_ohm < 0:
            raise ValueError("contact_resistance_ohm and source_resistance_ohm must be ≥ 0")
        if len(set(buses)) != len(buses):
            raise ValueError(f"duplicate bus names in {list(buses)}")
        self.topology = topology
        self.preset = preset if isinstance(preset, (DevicePreset, FilmPreset)) else load_preset(preset)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        # a continuous-film preset builds the meshed film behind the same pair interface
        array_class = FilmArray if isinstance(self.preset, FilmPreset) else DeviceArray
        self.array = array_class(topology, self.preset, self.rng)
        self.clock = VirtualClock()
        self.clock.sleeper = self.advance
        self.contact_resistance_ohm = float(contact_resistance_ohm)
        self.source_resistance_ohm = float(source_resistance_ohm)
        self.realtime = realtime
        self.lock = threading.RLock()

        self._sources = {b: Source(resistance_ohm=self.source_resistance_ohm) for b in buses}
        self.crosspoints: dict[str, tuple[str, str]] = {}
        for ch, (bus, line) in crosspoints.items():
            if bus not in self._sources:
                raise ValueError(f"crosspoint {ch!r} names unknown bus {bus!r} (buses: {list(buses)})")
            topology.line_index(line)  # raises KeyError naming the line
            self.crosspoints[str(ch)] = (bus, line)
        self.circuit = Circuit(topology, self._sources)
        # channel → its circuit link, built once: a read reconfigures hundreds of times
        bus_index = self.circuit.bus_index
        # (in the channels' sorted order: the link order the passive sums follow)
        by_name = sorted(self.crosspoints)
        self._link_rank = {ch: k for k, ch in enumerate(by_name)}
        self._link_table = np.array([(bus_index[self.crosspoints[ch][0]], topology.line_index(self.crosspoints[ch][1]))
                                     for ch in by_name], dtype=float).reshape(-1, 2)
        self._closed_mask = np.zeros(len(by_name), bool)  # by rank: the closed set, kept in step
        self._closed: set[str] = set()
        self.relay_operations = 0
        self.hot_switches = 0
        self._config_version = 0
        self._relays_dirty = False
        self._epoch_at_last_drive = -1
        self._cached: tuple[tuple[int, int], CircuitSolution] | None = None
        self._solved: _Solved | None = None  # the last solve, which may be carried (solve_now)
        self._noise_scales: tuple | None = None  # (solution, noise key, how readings carry the noise, s by bus)
        self._noise_key: tuple = (None, None)  # (preset, its read noise parameters)
        # the read noise's adjoint fields of single buses, and node voltages by what pins the
        # lines, kept across relay configurations (a guarded read drives each line once per
        # sense group)
        kept = 2 * topology.n_lines + 2 * len(buses)
        self._adjoints = UnitResponses(capacity=kept)
        self._kept = KeptSolutions(kept, keep_own=8 * topology.n_devices * kept * REFERENCES <= KEPT_OWN_BYTES)
        self._wiring_version = 0  # relays and outputs: what unkeyed unit responses depend on
        self._chunk_hint = np.inf
        self._wall_last = time.monotonic()
        # Every change of a bus's source level, as (virtual time s, bus, volts), oldest first.
        self.level_timeline: deque[tuple[float, str, float]] = deque(maxlen=TIMELINE_MAX)

    # -- the sample -----------------------------------------------------------
    def sample_state(self) -> dict[str, Any]:
        """The sample's whole dynamic state, enough to continue it in another process: device
        textures, the generator, the virtual clock, the integrator's step hint. Restore it on
        a bench built with the same topology, preset and seed (which fix the device spread)."""
        with self.lock:
            return {**self.array.sample_state(), "rng": self.rng.bit_generator.state,
                    "clock_s": self.clock.now, "chunk_hint": float(self._chunk_hint),
                    "seed": self.seed, "preset": self.preset.name, "n_devices": self.array.n_devices}

    def restore_sample(self, state: Mapping[str, Any]) -> None:
        with self.lock:
            for key, mine in (("n_devices", self.array.n_devices), ("seed", self.seed), ("preset", self.preset.name)):
                if state[key] != mine:
                    raise ValueError(f"the sample's {key} is {state[key]!r}, this simulated bench's {mine!r}: "
                                     "a sample continues only on the bench that made it")
            self.array.restore_sample(state)
            self.rng.bit_generator.state = state["rng"]
            self.clock.advance(max(float(state["clock_s"]) - self.clock.now, 0.0))
            self._chunk_hint = float(state["chunk_hint"])
            self._cached = self._noise_scales = self._solved = None
            self._adjoints.clear()
            self._kept.clear()

    # -- sources -------------------------------------------------------------
    def _source(self, bus: str) -> Source:
        try:
            return self._sources[bus]
        except KeyError:
            raise KeyError(f"unknown bus {bus!r} (buses: {list(self._sources)})") from None

    def _changed(self) -> None:
        self._config_version += 1

    def set_level(self, bus: str, volts: float) -> None:
        self.set_levels({bus: volts})

    def set_levels(self, levels: Mapping[str, float]) -> None:
        """Change several buses' levels at one virtual instant (trigger-synchronised sources)."""
        with self.lock:
            sources = {bus: self._source(bus) for bus in levels}  # all names checked before any change
            now = self.clock.now
            for bus, volts in levels.items():
                source = sources[bus]
                if source.level_V != float(volts):
                    self.level_timeline.append((now, bus, float(volts)))
                source.level_V = float(volts)
            self._changed()

    def play(self, changes: Iterable[tuple[float, str, float]]) -> float:
        """Apply level changes ``(offset s from now, bus, volts)`` on the virtual clock.

        Changes with the same offset take effect together (one :meth:`set_levels`); the
        physics integrates the levels in between. Returns the virtual time at the end.
        """
        with self.lock:
            t0 = self.clock.now
            at: dict[float, dict[str, float]] = {}
            for offset, bus, volts in changes:
                if offset < 0:
                    raise ValueError(f"a level change cannot precede its trigger (offset {offset} s)")
                self._source(bus)
                at.setdefault(float(offset), {})[bus] = float(volts)
            for offset in sorted(at):
                if t0 + offset > self.clock.now:
                    self.advance(t0 + offset - self.clock.now)
                self.set_levels(at[offset])
            return self.clock.now

    def timeline_since(self, t0: float) -> list[tuple[float, str, float]]:
        """The recorded level changes at or after virtual time ``t0``."""
        with self.lock:
            return [e for e in self.level_timeline if e[0] >= t0]

    def set_compliance(self, bus: str, amps: float) -> None:
        if not amps > 0:
            raise ValueError(f"compliance of bus {bus!r} must be > 0 A, got {amps}")
        with self.lock:
            self._source(bus).compliance_A = float(amps)
            self._changed()

    def set_output(self, bus: str, on: bool) -> None:
        with self.lock:
            self._source(bus).output = bool(on)
            self.circuit.reset_modes()
            self._wiring_version += 1
            self._changed()

    def bus_state(self, bus: str) -> dict[str, Any]:
        with self.lock:
            s = self._source(bus)
            return {
                "level": s.level_V,
                "compliance": s.compliance_A,
                "output": s.output,
                "resistance_ohm": s.resistance_ohm,
            }

    @property
    def buses(self) -> tuple[str, ...]:
        return tuple(self._sources)

    # -- relays --------------------------------------------------------------
    def _check_channels(self, channels: Iterable[str]) -> list[str]:
        chans = [str(c) for c in channels]
        unknown = [c for c in chans if c not in self.crosspoints]
        if unknown:
            raise KeyError(f"unknown crosspoint channel(s) {unknown}")
        return chans

    def _switch(self, chans: Iterable[str], close: bool) -> None:
        changed = [c for c in chans if (c in self._closed) != close]
        if not changed:
            return
        live = any(s.output and s.level_V != 0.0 for s in self._sources.values())
        self.relay_operations += len(changed)
        if live:
            self.hot_switches += len(changed)
        if close:
            self._closed.update(changed)
        else:
            self._closed.difference_update(changed)
        self._closed_mask[np.fromiter(map(self._link_rank.__getitem__, changed), np.intp, len(changed))] = close
        self._relays_dirty = True
        self._wiring_version += 1
        self._changed()

    def close(self, channels: Iterable[str]) -> None:
        with self.lock:
            self._switch(self._check_channels(channels), True)

    def open(self, channels: Iterable[str]) -> None:
        with self.lock:
            self._switch(self._check_channels(channels), False)

    def open_all(self) -> None:
        with self.lock:
            self._switch(list(self._closed), False)

    def closed(self) -> set[str]:
        with self.lock:
            return set(self._closed)

    # -- circuit -------------------------------------------------------------
    def _configure(self) -> None:
        if self._relays_dirty:
            rows = np.flatnonzero(self._closed_mask)  # the closed channels in sorted order
            links = np.empty((rows.size, 3))
            links[:, :2] = self._link_table[rows]
            links[:, 2] = self.contact_resistance_ohm
            self.circuit.configure(links)
            self._relays_dirty = False

    def true_conductances(self) -> np.ndarray:
        with self.lock:
            return self.array.conductance()

    def steady_temperature_K(self, line_voltages: Mapping[str, float]) -> dict[str, float | None]:
        """Thermal estimate for a pre-flight: the hottest steady temperature the sample would
        reach if these line voltages (V by line name; lines not named at 0 V) were held, its
        Curie point (None for pair presets, which have none) and the peak reached so far."""
        with self.lock:
            V = np.zeros(self.topology.n_lines)
            for name, volts in line_voltages.items():
                V[self.topology.line_index(name)] = float(volts)
            dev = self.topology.devices
            if isinstance(self.array, FilmArray):
                return {"steady_K": self.array.steady_temperature(V), "curie_K": self.preset.curie_K,
                        "peak_K": self.array.peak_temperature_K}
            power = float(np.sum(self.array.conductance() * (V[dev[:, 0]] - V[dev[:, 1]]) ** 2))
            return {"steady_K": self.preset.ambient_K + self.preset.substrate_K_per_W * power,
                    "curie_K": None, "peak_K": None}

    # False: the circuit is solved afresh whenever the state version moves (the reference)
    carry_drift = True

    def solve_now(self) -> CircuitSolution:
        """The circuit at the present levels, relays and true conductances.

        Within one configuration, a solution is carried while no conductance has moved by more
        than ``DRIFT`` of itself since it was solved (a read's relaxation and read disturb move
        them by ~1e-7 per reading): its line and device voltages are then those of the present
        conductances to within DRIFT times the coupling through the contacts (R·ΣG), which is
        what the physics integrates (a write's own chunks re-solve only after a 2 % change),
        and a reading adds the first-order change of its bus current (``_drift_current``), the
        same Tellegen expansion its read noise is carried by, so only a term of order DRIFT²
        is left out. A new configuration that holds every line as one solved before (a drive
        line in the next sense group) takes that one's node voltages (``kept_solutions``)."""
        with self.lock:
            self._configure()
            key = (self._config_version, self.array.version)
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]  # before conductance(): it forces the packed state back
            G = self._true_conductances()
            key = (self._config_version, self.array.version)  # (fetching G may merge packed state)
            solved = self._solved
            if solved is not None and solved.config == key[0] and self.carry_drift and self._carries(G):
                sol = solved.sol
            else:
                pins = self.circuit.pin_key() if self.recall_solutions and self._skip_unchanged_solves else None
                sol = self._recalled(G, key, pins)
                if sol is None:
                    sol = self.circuit.solve(G)
                    self._solved = _Solved(*key, G, sol)  # (G: a fresh array per state, never written)
                    if pins is not None and not any(sol.in_compliance.values()):
                        # (every node its own group where a pin key is: the groups' voltages are these)
                        v = np.concatenate([sol.line_v, np.fromiter(sol.bus_v.values(), float)])
                        self._kept.put(pins, G, key[1], v, sol.structured)
            self._cached = (key, sol)
            return sol

    # False: every configuration is solved (the reference for the solutions kept across them)
    recall_solutions = True

    def _recalled(self, G: np.ndarray, key: tuple[int, int], pins: bytes | None) -> CircuitSolution | None:
        """This configuration's solution from node voltages another with its pin key ``pins``
        was solved for (``kept_solutions``): exact at the conductances they were solved at,
        carried within DRIFT of them as a configuration's own solution is; None if there is none."""
        got = self._kept.get(pins, G, key[1])
        if got is None:
            return None
        hit, exact = got
        sol = self.circuit.solution_from(hit.G, hit.v, hit.structured)
        if sol is None:
            return None
        self._solved = _Solved(*key, G, sol) if exact else _Solved(key[0], hit.version, hit.G, sol)
        if not exact and not (self.carry_drift and self._carries(G)):
            return None
        self._kept.recalled += 1
        return sol

    def _carries(self, G: np.ndarray) -> bool:
        """Whether the configuration's solution may stand for conductances G: none moved by
        more than DRIFT of itself, no source in its limit, and none so near it that the
        currents' first-order change (≤ DRIFT·Σ|device currents|, a unit response lying
        within 0..1 V) could reach it."""
        solved = self._solved
        sol, G0 = solved.sol, solved.G
        if solved.clear is None:
            shift = DRIFT * float(np.abs(sol.device_i).sum()) * (1 + 1e-6)
            solved.clear = not any(sol.in_compliance.values()) and all(
                abs(sol.bus_current[b]) + shift < s.compliance_A
                for b, s in self._sources.items() if s.output)
        if not solved.clear or G.shape != G0.shape:
            return False
        return not bool(np.any(np.abs(G - G0) > DRIFT * np.abs(G0)))

    def _drift_current(self, sol: CircuitSolution, bus: str) -> float | None:
        """I_b(G) − I_b(G0) to first order, Σ_k ΔV_k·ΔU_bk·(G_k − G0_k), for a solution carried
        from G0 to the present conductances G (0.0 if it was solved at them); None if the bus
        has no unit response (not pinned by its source alone)."""
        solved = self._solved
        version = self.array.version
        if solved is None or solved.sol is not sol or solved.version == version:
            return 0.0
        if solved.drift_version != version:  # (repeated readings of one state: the same change)
            solved.drift_version, solved.drift = version, {}
        if bus not in solved.drift:
            G = self._true_conductances()
            u = self._adjoints.get(self.circuit, G, version, self._wiring_version, [self.circuit.bus_index[bus]])
            solved.drift[bus] = None if u is None else current_change(self.circuit, sol, G - solved.G, u[:, 0])
        return solved.drift[bus]

    def _true_conductances(self) -> np.ndarray:
        """The present conductances for the circuit: a pair array's shared view (no copy)."""
        return self.array.conductance_view() if type(self.array) is DeviceArray else self.array.conductance()

    def _driven(self) -> bool:
        return any(s.output and s.level_V != 0.0 for s in self._sources.values())

    # -- time ----------------------------------------------------------------
    def advance(self, dt: float) -> None:
        """Integrate the physics at the present levels/relays for dt seconds of virtual time."""
        if dt < 0:
            raise ValueError(f"dt must be ≥ 0, got {dt}")
        with self.lock:
            if dt > 0:  # (the solves and the read power's dot product over N² devices ask for one BLAS thread)
                self._integrate(dt)
            self.clock.advance(dt)

    # False: re-solve the circuit at every chunk even when nothing changed (tests' reference)
    _skip_unchanged_solves = True

    def _integrate(self, dt: float) -> None:
        """Physics over dt at the present levels. The circuit is solved again only when what it
        depends on changed: the relays and levels, or the conductances a reader sees (the
        array's ``version``). At read level nothing can move (every device below its creep
        onset, the relaxation one closed-form exponent that bumps ``version`` only once it shows
        in float32), so a command's latency costs no solve, and the whole interval is one step:
        exact, not an approximation, so a skipped solve leaves the same state bit for bit."""
        if not self._driven():
            self.array.advance(None, dt)
            return
        continuing = self._epoch_at_last_drive == self._config_version
        self._epoch_at_last_drive = self._config_version
        remaining = dt
        while remaining > 0:
            if not self._skip_unchanged_solves:
                self._cached = self._solved = None
            sol = self.solve_now()
            device_v = self._array_voltages(sol)
            if sol.fast_path:  # device voltages do not depend on the conductances
                self.array.advance(device_v, remaining, continuing=continuing)
                return
            h = min(remaining, self._chunk_hint)
            if remaining - h < 1e-12 * dt:
                h = remaining
            change = self.array.advance(device_v, h, continuing=continuing)
            continuing = True
            remaining -= h
            if remaining > 0 and not getattr(self.array, "can_move", True):
                # nothing can move under this drive: no feedback of G on V to follow
                h, remaining = remaining, 0.0
                change = max(change, self.array.advance(device_v, h, continuing=True))
            if change > _CHUNK_CHANGE:
                self._chunk_hint = h * _CHUNK_CHANGE / change
            elif change < _CHUNK_CHANGE / 4:
                self._chunk_hint = min(self._chunk_hint * 2, np.inf)

    def _array_voltages(self, sol: CircuitSolution) -> np.ndarray:
        """The solution's device voltages as the array takes them: a pair array converts them to
        float32 on every step, so a solution reused over many readings is converted once."""
        if type(self.array) is not DeviceArray:
            return sol.device_v
        hit = getattr(self, "_voltages32", None)
        if hit is None or hit[0] is not sol:
            v32 = np.array(sol.device_v, dtype=np.float32)
            v32.flags.writeable = False  # the same drive for as long as the solution stands
            hit = self._voltages32 = (sol, v32)
        return hit[1]

    def sync_realtime(self) -> None:
        """Realtime mode: advance virtual time by the wall time since the last sync."""
        with self.lock:
            now = time.monotonic()
            elapsed, self._wall_last = now - self._wall_last, now
            if self.realtime and elapsed > 0:
                self.advance(elapsed)

    # -- measurement ---------------------------------------------------------
    # False: every reading solves the circuit with its own draw of every device's read noise
    # (the reference the small-signal reading is tested against)
    small_signal_noise = True

    def _small_signal_reading(self, bus: str) -> tuple[float, float, bool] | None:
        """The reading as the solution's current plus one Gaussian of the read noise carried
        to it (``read_noise``); None where that does not hold (a source in or near its limit)."""
        if type(self.array) is DeviceArray:
            self.array.x  # noqa: B018 - merges a pulse's packed state back: the version is current
        sol = self.solve_now()
        # the solution, and the read noise of the preset (a swapped one may change σ): a carried
        # solution keeps its σ, as the unit responses are kept (``adjoints``: within ~2·DRIFT)
        p = self.array.preset  # (frozen: its noise key is asked once per preset object)
        if self._noise_key[0] is not p:
            self._noise_key = (p, (getattr(p, "read_noise_window", None), getattr(p, "read_noise_rel", None)))
        key = self._noise_key[1]
        hit = self._noise_scales
        if hit is None or hit[0] is not sol or hit[1] != key:
            hit = self._noise_scales = (sol, key, *self._noise_verdict(sol))
        _, _, verdict, scales = hit
        if verdict == "exact":
            return None
        drift = self._drift_current(sol, bus)
        if drift is None:
            return None
        current = sol.bus_current[bus] + drift
        if verdict == "noisy":  # (no draw without read noise, as the exact reading draws none)
            s = scales.get(bus)
            if s is None:
                s = self._bus_sigma(sol, bus)
                if s is None:
                    return None
                scales[bus] = s
            current += s * float(self.rng.standard_normal())
        return sol.bus_v[bus], current, False

    def _noise_verdict(self, sol: CircuitSolution) -> tuple[str, dict[str, float]]:
        """How readings of this solution carry the read noise: "exact" (every device drawn:
        a source is in its limit, or within MARGIN_SIGMAS of its σ of it), "quiet" (there is no
        read noise) or "noisy" (one draw of the bus's σ); and the σ found on the way.

        Every sourcing bus's s_b is bounded by s_max = ‖σ_k·ΔV_k‖ (a unit response lies
        between 0 and 1 V, so |ΔU_bk| ≤ 1): a bus whose current is further than 8 s_max from
        its limit is clear without its own field, which is solved only for the buses measured
        and for any the bound cannot clear."""
        sigma = self.array.read_sigma()
        if any(sol.in_compliance.values()):
            return "exact", {}
        if not np.any(sigma):
            return "quiet", {}
        w = sol.device_v * sigma if np.ndim(sigma) else sol.device_v
        s_max = float(np.sqrt(w @ w)) * (1.0 if np.ndim(sigma) else float(sigma)) * (1 + 1e-9)
        scales: dict[str, float] = {}
        for b, src in self._sources.items():
            if not src.output or abs(sol.bus_current[b]) + MARGIN_SIGMAS * s_max < src.compliance_A:
                continue
            s = self._bus_sigma(sol, b)
            if s is None or abs(sol.bus_current[b]) + MARGIN_SIGMAS * s >= src.compliance_A:
                return "exact", {}  # a clamp is within reach of the noise: every reading drawn exactly
            scales[b] = s
        # the buses whose fields are kept (a sense group's, a drive line's) in one pass: a
        # reading then finds its σ ready (the others are solved for when first read)
        idx = self.circuit.bus_index
        G = self._true_conductances()
        ready = [i for i in self._adjoints.kept(self.circuit, G, self.array.version,
                                                [idx[b] for b, src in self._sources.items() if src.output])
                 if self.circuit.bus_names[i] not in scales]
        if ready:
            u = self._adjoints.get(self.circuit, G, self.array.version, self._wiring_version, ready)
            if u is not None:
                scales.update(zip((self.circuit.bus_names[i] for i in ready),
                                  current_sigmas(self.circuit, sol, sigma, u).tolist()))
        return "noisy", scales

    def _bus_sigma(self, sol: CircuitSolution, bus: str) -> float | None:
        """s_b (A) of one bus at this solution; None if its node is not pinned by it alone."""
        G = self._true_conductances()
        i = self.circuit.bus_index[bus]
        u = self._adjoints.get(self.circuit, G, self.array.version, self._wiring_version, [i])
        if u is None:
            return None
        return float(current_sigmas(self.circuit, sol, self.array.read_sigma(), u)[0])

    def measure(self, bus: str, integration_s: float) -> tuple[float, float, bool]:
        """(voltage V, current A, in compliance) of a bus after integrating for integration_s.

        The reading solves the circuit with one noisy draw of the conductances, so repeated
        reads scatter by the read noise while the state itself is untouched.
        """
        with self.lock:
            source = self._source(bus)
            self.advance(integration_s)
            self._configure()
            if self.small_signal_noise and source.output:
                with single_thread_for(self.topology.n_devices):
                    reading = self._small_signal_reading(bus)
                if reading is not None:
                    return reading
            G = self.array.read_conductance(self.rng)
            sol = self.circuit.solve(G)
            if not source.output:
                return sol.bus_v[bus], 0.0, False
            return sol.bus_v[bus], sol.bus_current[bus], sol.in_compliance[bus]
