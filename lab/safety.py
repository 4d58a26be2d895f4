"""Safety, in one place: every instrument action is checked here before it is sent.

The crossbar layer never holds an instrument. It gets a :class:`GuardedActuator`, whose
every method first asks the :class:`SafetyGuard` (which tracks what the bench is doing:
levels, outputs, closed relays, time spent above the read ceiling) and only then calls
the backend. The runner alone sets the guard's scope (read or write) from the operation
it is executing, so a read can never put more than the read ceiling across a device.

Operation-level checks (:func:`check_operation`) reject bad protocol parameters with
messages naming the parameter before any action is planned; the action-level checks
below are the authority that nothing gets around.
"""
from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Literal, Mapping, Protocol

import numpy as np

from lab.bounds import DeviceBounds, bus_totals, decide
from lab.cleanup import SafeState, make_safe, secure  # noqa: F401 - part of this module's interface
from lab.config import BenchConfig, Layout
from lab.errors import RetryPolicy, SafetyError
from lab.matrices import mainframes_touched
from lab.models import capability
from lab.relays import ClosedRelays
from lab.timing import Clock, TimingModel

log = logging.getLogger("hopbench.safety")

Scope = Literal["idle", "read", "write"]
TOL = 1e-9


class Backend(Protocol):
    """What actually executes actions: the instruments, or a paper bench in a dry check."""

    clock: Clock

    def set_voltage(self, bus: str, volts: float) -> None: ...
    def set_current_limit(self, bus: str, amps: float) -> None: ...
    def set_nplc(self, bus: str, nplc: float) -> None: ...
    def set_autorange(self, bus: str) -> None: ...
    def set_output(self, bus: str, on: bool) -> None: ...
    def measure(self, bus: str) -> Any: ...  # .voltage .current .compliance
    def limit_tripped(self, bus: str) -> bool: ...  # the source is clamped at its current limit now
    def pulse(self, bus: str, volts: float, width_s: float) -> None: ...
    def sync_pulse(self, levels: Mapping[str, float], width_s: float, line: int) -> None: ...
    def close(self, crosspoints: Iterable[str]) -> None: ...
    def open(self, crosspoints: Iterable[str]) -> None: ...
    def open_all(self) -> None: ...


class SafetyGuard:
    """The bench limits and what the bench is doing now, as far as commands sent tell."""

    fast_bounds_min_devices = 4096  # below, the N² current bound is the faster (a few numpy passes)

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.limits = config.limits
        self.layout: Layout = config.layout
        lay = self.layout
        self.bus_index = {b: k for k, b in enumerate(lay.buses)}
        self.compliance_max = {b: c.compliance_A for b, c in config.buses.items()}
        self.hardware_current = {b: _hardware_current(config, b) for b in config.buses}
        matrix = min((m.model for m in config.matrices), key=lambda m: capability(m).v_max or math.inf)
        self.v_line_max = min(self.limits.v_max_V, capability(matrix).v_max or math.inf)
        self._v_line_why = ("limits.v_max_V" if self.v_line_max == self.limits.v_max_V
                            else f"the {matrix} relays' signal rating")
        self._owner = lay.owner  # crosspoint -> (bus, line index); KeyError for a channel not wired
        self._owner_of = lay.owner_of  # the same, None for a channel not wired
        self._dev_a = lay.devices[:, 0]
        self._bounds = DeviceBounds(lay.devices[:, 0], lay.devices[:, 1], len(lay.lines))
        self.closed = ClosedRelays(self._owner.__getitem__, self.bus_index, len(lay.lines))
        self._bus_lines: tuple[tuple[int, str], np.ndarray] | None = None  # (relays, bus): its lines
        self.scope: Scope = "idle"
        self.reset_state()

    # -------------------------------------------------------------- state
    def reset_state(self) -> None:
        """What a freshly made-safe bench looks like."""
        self.levels = {b: 0.0 for b in self.layout.buses}
        self.outputs = {b: False for b in self.layout.buses}
        self.compliance: dict[str, float | None] = {b: None for b in self.layout.buses}
        self.closed.clear()
        self.write_elapsed = 0.0
        self.changed()

    def changed(self) -> None:
        """Levels, outputs or relays changed: the cached device-voltage verdict is stale."""
        self._writing: bool | None = None
        self._pending: tuple[str, float, bool, np.ndarray] | None = None
        self._line_v: np.ndarray | None = None

    def commit_level(self, bus: str, volts: float) -> None:
        """Record a level the guard just checked; reuse that check's verdict and line voltages
        (nothing changed since: every change clears the pending check)."""
        pending = self._pending
        self.levels[bus] = volts
        self.changed()
        if pending is not None and pending[:2] == (bus, volts):
            self._writing = pending[2]
            self._line_v = pending[3]

    @contextmanager
    def scoped(self, scope: Scope) -> Iterator[None]:
        old, self.scope = self.scope, scope
        try:
            yield
        finally:
            self.scope = old

    @property
    def ceiling(self) -> float:
        """Largest voltage any device may see in the present scope."""
        return math.inf if self.scope == "write" else self.limits.v_read_max_V

    def line_voltages(self, levels: Mapping[str, float] | None = None) -> np.ndarray:
        """(n_lines,) V per line at the closed relays and these levels (the present ones by
        default); NaN where a line floats (no relay, or its bus output off)."""
        present = levels is None
        if present and self._line_v is not None:  # asked many times per state: kept until changed()
            return self._line_v.copy()
        levels = self.levels if levels is None else levels
        v = np.full(len(self.layout.lines), np.nan)
        routed = self.closed.routed()
        if routed is None:  # two crosspoints on one line: the last one iterated wins, as ever
            for xp in self.closed:
                bus, line = self._owner[xp]
                if self.outputs[bus]:
                    v[line] = levels[bus]
        else:
            lines, bus_of, used = routed
            buses = self.layout.buses
            level = np.full(len(buses), np.nan)
            on = np.zeros(len(buses), bool)
            for k in used:
                if self.outputs[buses[k]]:
                    on[k] = True
                    level[k] = levels[buses[k]]
            sel = on[bus_of]
            v[lines[sel]] = level[bus_of[sel]]
        if present:
            self._line_v = v.copy()
            self._line_v.flags.writeable = False
        return v

    def _line_voltages_with(self, bus: str, volts: float) -> np.ndarray:
        """:meth:`line_voltages` with ``bus`` at ``volts`` and the other levels as they are: the
        present ones with that bus's lines changed (a read asks at every level it sets)."""
        routed = self.closed.routed()
        if routed is None:
            levels = dict(self.levels)
            levels[bus] = volts
            return self.line_voltages(levels)
        v = self.present_line_voltages().copy()
        if self.outputs[bus]:
            key = (self.closed.version, bus)
            hit = self._bus_lines
            if hit is None or hit[0] != key:
                lines, bus_of = routed[:2]
                hit = self._bus_lines = (key, lines[bus_of == self.bus_index[bus]])
            v[hit[1]] = volts
        return v

    def present_line_voltages(self) -> np.ndarray:
        """:meth:`line_voltages` now, shared and read-only: the same object until :meth:`changed`
        (levels, outputs and relays all change through it), so callers may key caches on it."""
        if self._line_v is None:
            self.line_voltages()
        return self._line_v

    def routed_lines(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(line, bus index) of every closed crosspoint in line order, or None if two of them
        share a line. Shared: callers must not write into them."""
        routed = self.closed.routed()
        return None if routed is None else routed[:2]

    def device_voltage_bound(self, line_v: np.ndarray) -> np.ndarray:
        """(D,) the largest |V| each device can see; a floating line lies between the driven extremes."""
        return self._bounds.device_voltage(line_v)

    def _worst_device(self, line_v: np.ndarray) -> tuple[int, float]:
        return self._bounds.worst_device(line_v)

    def bus_current_bounds(self) -> dict[str, float]:
        """The largest |I| each bus with an output on could carry now, every device at g_max_expected_S."""
        per_line = self._bounds.line_currents(self.line_voltages(), self.limits.g_max_expected_S)
        buses = self.layout.buses
        routed = self.closed.routed()
        if routed is None:
            out = {b: 0.0 for b in buses if self.outputs[b]}
            for xp in self.closed:
                bus, line = self._owner[xp]
                if bus in out:
                    out[bus] += float(per_line[line])
            return out
        on = np.array([self.outputs[b] for b in buses], dtype=bool)
        acc = bus_totals(per_line, *routed[:2], on)
        return {b: float(acc[k]) for k, b in enumerate(buses) if on[k]}

    def buses_reaching_limit(self) -> list[str]:
        """The buses with an output on and a current limit whose :meth:`bus_current_bounds`
        reaches it, in bus order: the exact bounds' verdict, from the O(N log N) bounds unless
        a limit lies within their error (a read asks at every reading)."""
        buses = self.layout.buses
        limits = np.array([self.compliance[b] if self.outputs[b] and self.compliance[b] is not None
                           else np.nan for b in buses], dtype=float)
        if np.isnan(limits).all():
            return []
        routed = self.closed.routed()
        fast = None
        if routed is not None and len(self._dev_a) >= self.fast_bounds_min_devices:
            g_max = self.limits.g_max_expected_S
            loose = self._bounds.line_currents_loose(self.present_line_voltages(), g_max)
            if loose is not None:  # a read's: one line driven, every bus far from its limit
                lines, bus_of = routed[:2]
                on = np.array([self.outputs[b] for b in buses], dtype=bool)
                sel = on[bus_of]
                bound = np.bincount(bus_of[sel], loose[lines[sel]], len(buses)) * (1 + 1e-9)
                if not (bound >= limits).any():  # (NaN limits: no limit)
                    return []
            fast = self._bounds.line_currents_fast(self.line_voltages(), g_max)
        if fast is not None:
            on = np.array([self.outputs[b] for b in buses], dtype=bool)
            lines, bus_of = routed[:2]
            sel = on[bus_of]
            n_bus = len(buses)
            verdict = decide(np.bincount(bus_of[sel], fast[0][lines[sel]], n_bus),
                             fast[1] * np.bincount(bus_of[sel], None, n_bus), limits)
            if verdict is not None:
                return [b for k, b in enumerate(buses) if verdict[k]]
        exact = self.bus_current_bounds()
        return [b for k, b in enumerate(buses) if not np.isnan(limits[k]) and exact[b] >= limits[k]]

    # -------------------------------------------------------------- checks
    @staticmethod
    def _span(line_v: np.ndarray) -> float:
        """Highest minus lowest driven line voltage: no device can see more (a floating line
        lies between the driven extremes). NaN if no line is driven."""
        return float(np.fmax.reduce(line_v)) - float(np.fmin.reduce(line_v)) if line_v.size else 0.0

    def _check_devices(self, line_v: np.ndarray, what: str) -> float:
        """The largest voltage a device can see, or a bound on it at most the read ceiling;
        SafetyError if it is above what the scope allows."""
        span = self._span(line_v)
        if span <= min(self.ceiling, self.limits.v_read_max_V) + TOL and \
                span * span * self.limits.g_max_expected_S <= self.limits.power_max_W * (1 + 1e-9):
            return span  # every device within every limit: which one is the worst does not matter
        worst, vmax = self._worst_device(line_v)
        a, b = (self.layout.lines[i] for i in self.layout.devices[worst]) if len(self._dev_a) else ("", "")
        if vmax > self.ceiling + TOL:
            raise SafetyError("limits.v_read_max_V", f"{what} would put {vmax:.4g} V across device {a}-{b}, "
                              f"above the read ceiling {self.limits.v_read_max_V} V in a {self.scope} operation")
        p = vmax * vmax * self.limits.g_max_expected_S
        if p > self.limits.power_max_W * (1 + 1e-9):
            raise SafetyError("limits.power_max_W", f"{what} would dissipate up to {p:.3g} W in device {a}-{b} "
                              f"({vmax:.4g} V at g_max_expected_S={self.limits.g_max_expected_S} S), "
                              f"above {self.limits.power_max_W} W")
        return vmax

    def writing(self) -> bool:
        """Some device now sees more than the read ceiling."""
        if self._writing is None:
            if not any(v != 0.0 for v in self.levels.values()):  # no source drives: nothing sees a voltage
                self._writing = False
                return False
            line_v = self.present_line_voltages()
            span = self._span(line_v)
            vmax = span if span <= self.limits.v_read_max_V else self._worst_device(line_v)[1]
            self._writing = bool(len(self._dev_a)) and vmax > self.limits.v_read_max_V + TOL
        return self._writing

    def check_level(self, bus: str, volts: float) -> None:
        self._known(bus)
        if not math.isfinite(volts) or abs(volts) > self.v_line_max + TOL:
            raise SafetyError("limits.v_max_V", f"bus {bus}: {volts} V exceeds the line limit "
                              f"±{self.v_line_max} V ({self._v_line_why})")
        if volts != 0.0 and not self.outputs[bus]:
            raise SafetyError(f"buses.{bus}", "a level is only set with the output on (outputs turn on at 0 V)")
        line_v = self._line_voltages_with(bus, volts)
        vmax = self._check_devices(line_v, f"bus {bus} at {volts} V")
        line_v.flags.writeable = False  # (the present line voltages once committed)
        self._pending = (bus, volts, vmax > self.limits.v_read_max_V + TOL, line_v)

    def check_pulse(self, bus: str, volts: float, width_s: float) -> None:
        if not (width_s > 0 and width_s <= self.limits.pulse_width_max_s * (1 + 1e-9)):
            raise SafetyError("limits.pulse_width_max_s", f"pulse width {width_s} s on bus {bus} is not in "
                              f"(0, {self.limits.pulse_width_max_s}] s")
        self.check_level(bus, volts)

    def check_hold(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise SafetyError("duration", f"cannot hold for {seconds} s")
        if self.writing() and self.write_elapsed + seconds > self.limits.pulse_width_max_s * (1 + 1e-9):
            raise SafetyError("limits.pulse_width_max_s", f"devices would stay above the read ceiling for "
                              f"{self.write_elapsed + seconds:.4g} s, longer than "
                              f"{self.limits.pulse_width_max_s} s")

    def check_compliance(self, bus: str, amps: float) -> None:
        self._known(bus)
        cmax = self.compliance_max[bus]
        if not (0 < amps <= cmax * (1 + 1e-9)):
            raise SafetyError(f"buses.{bus}.compliance_A", f"current limit {amps} A not in (0, {cmax}] A")
        hw, why = self.hardware_current[bus]
        if amps > hw * (1 + 1e-9):
            raise SafetyError(f"buses.{bus}.compliance_A", f"current limit {amps} A exceeds {hw:g} A, {why}")

    def check_output(self, bus: str, on: bool) -> None:
        self._known(bus)
        if on and self.compliance[bus] is None:
            raise SafetyError(f"buses.{bus}.compliance_A", "output on before its current limit was set")
        if on and self.levels[bus] != 0.0:
            raise SafetyError(f"buses.{bus}", f"output on at {self.levels[bus]} V; outputs turn on at 0 V only")

    def check_switch(self, target: set[str]) -> tuple[list[str], list[str]]:
        """Check a relay change to exactly ``target``; return it as (ids to open, ids to close), sorted."""
        hot = [b for b in self.layout.buses if self.outputs[b] and self.levels[b] != 0.0]
        if hot:
            raise SafetyError("cold switching", f"relays change only with every source at 0 V; "
                              f"{', '.join(f'{b}={self.levels[b]} V' for b in hot)}")
        closed = self.closed
        to_open, to_close = closed.ids - target, target - closed.ids
        # the common case from the change alone (the closed set was checked when it closed);
        # any fault is named by the loop over the whole target below
        after = closed.lines_after(to_open, to_close)
        if after is not None and max(after.values(), default=0) <= 1 and closed.shared_lines.issubset(after) \
                and not any(after.get(ln, closed.count(ln)) for ln in self.layout.forbidden):
            return sorted(to_open), sorted(to_close)
        per_line: dict[int, str] = {}
        for xp in target:
            owner = self._owner_of(xp)
            if owner is None:
                raise SafetyError("wiring", f"crosspoint {xp} joins no bus to any line of this bench")
            line = owner[1]
            name = self.layout.lines[line]
            if line in self.layout.forbidden:
                raise SafetyError("limits.forbidden_lines", f"line {name} must never be connected ({xp})")
            if line in per_line:
                raise SafetyError("two sources on one line", f"line {name} would join buses "
                                  f"{self.layout.owner[per_line[line]][0]} and {self.layout.owner[xp][0]}")
            per_line[line] = xp
        return sorted(to_open), sorted(to_close)

    def _known(self, bus: str) -> None:
        if bus not in self.bus_index:
            raise SafetyError("buses", f"no bus named {bus!r}")


class GuardedActuator:
    """The only way the crossbar layer reaches instruments: every call is checked first.

    Counts commands, relay operations and the timing model's bench time; charges each
    command's latency to the clock (a no-op on a real bench, where it passes by itself).
    """

    def __init__(self, guard: SafetyGuard, backend: Backend, timing: TimingModel,
                 retry: RetryPolicy | None = None) -> None:
        self._guard = guard
        self._backend = backend
        self.timing = timing
        self.clock = backend.clock
        self.retry = retry or RetryPolicy()
        self.layout = guard.layout
        self.limits = guard.limits
        self.commands = 0
        self.relay_operations = 0
        self.measurements = 0
        self.retries = 0
        self.estimated_s = 0.0

    # -- read-only views for the crossbar
    @property
    def closed(self) -> frozenset[str]:
        return frozenset(self._guard.closed.ids)

    def closed_exactly(self, crosspoints: set[str]) -> bool:
        """Whether exactly these crosspoints are closed (no copy of the closed set made)."""
        return crosspoints == self._guard.closed.ids

    def level(self, bus: str) -> float:
        return self._guard.levels[bus]

    def output(self, bus: str) -> bool:
        return self._guard.outputs[bus]

    def line_voltages(self) -> np.ndarray:
        return self._guard.line_voltages()

    def current_limit(self, bus: str) -> float | None:
        return self._guard.compliance[bus]

    def current_bounds(self) -> dict[str, float]:
        return self._guard.bus_current_bounds()

    def buses_reaching_limit(self) -> list[str]:
        return self._guard.buses_reaching_limit()

    # -- accounting
    def _spent(self, seconds: float, charge: float = 0.0) -> None:
        """``seconds`` of bench time by the model; ``charge`` of it not simulated elsewhere."""
        self.estimated_s += seconds
        if self._guard.writing():
            self._guard.write_elapsed += seconds
        if charge > 0:
            self.clock.charge(charge)

    def _command(self) -> None:
        self.commands += 1
        self._spent(self.timing.command_s, self.timing.command_s)

    # -- actions
    def set_level(self, bus: str, volts: float) -> None:
        volts = float(volts)
        if self._guard.levels[bus] == volts:
            return
        was_writing = self._guard.writing()
        self._guard.check_level(bus, volts)
        self._guard.commit_level(bus, volts)  # assumed applied even if the send fails: stricter checks later
        self._backend.set_voltage(bus, volts)
        if not self._guard.writing():
            self._guard.write_elapsed = 0.0
        elif not was_writing:
            self._guard.write_elapsed = 0.0
        self._command()

    def set_compliance(self, bus: str, amps: float) -> None:
        self._guard.check_compliance(bus, amps)
        self._backend.set_current_limit(bus, amps)
        self._guard.compliance[bus] = amps
        self._command()

    def set_nplc(self, bus: str, nplc: float) -> None:
        self._guard._known(bus)
        self._backend.set_nplc(bus, nplc)
        self._command()

    def set_autorange(self, bus: str) -> None:
        self._guard._known(bus)
        self._backend.set_autorange(bus)
        self._command()

    def set_output(self, bus: str, on: bool) -> None:
        self._guard.check_output(bus, on)
        if on:
            self._guard.outputs[bus] = True  # a failed send may still have turned it on
            self._guard.changed()
            self._backend.set_output(bus, True)
        else:
            self._backend.set_output(bus, False)
            self._guard.outputs[bus] = False
            self._guard.changed()
        self._command()

    def measure(self, bus: str) -> Any:
        """A reading of ``bus``; a timeout is retried (a measurement changes nothing)."""
        self._guard._known(bus)
        if not self._guard.outputs[bus]:
            raise SafetyError(f"buses.{bus}", "measuring a bus whose output is off")
        self._guard.check_hold(self.timing.integration_s)

        def on_retry(attempt: int, exc: BaseException) -> None:
            self.retries += 1
            log.warning("measure on bus %s timed out (attempt %d): %s; retrying", bus, attempt, exc)

        reading = self.retry.call(lambda: self._backend.measure(bus), on_retry)
        self.measurements += 1
        self.commands += 1
        # the integration itself advanced a simulated clock; only the latency is charged here
        self._spent(self.timing.measure_s, self.timing.command_s + self.timing.measure_overhead_s)
        return reading

    def limit_tripped(self, bus: str) -> bool:
        """Whether ``bus``'s source is clamped at its current limit now: one status query, no
        integration (a pulse held by several buses asks it of each while they all drive)."""
        self._guard._known(bus)
        self._guard.check_hold(self.timing.command_s)

        def on_retry(attempt: int, exc: BaseException) -> None:
            self.retries += 1
            log.warning("compliance query on bus %s timed out (attempt %d): %s; retrying", bus, attempt, exc)

        tripped = bool(self.retry.call(lambda: self._backend.limit_tripped(bus), on_retry))
        self._command()
        return tripped

    def pulse(self, bus: str, volts: float, width_s: float) -> None:
        """One pulse on one bus, timed by its driver; the bus returns to 0 V."""
        if self._guard.levels[bus] != 0.0:
            raise SafetyError(f"buses.{bus}", "a pulse starts from 0 V")
        self._guard.check_pulse(bus, float(volts), float(width_s))
        self._guard.commit_level(bus, float(volts))
        # if the pulse fails the level stays recorded as non-zero: relays stay locked until cleanup
        self._backend.pulse(bus, float(volts), float(width_s))
        self._guard.commit_level(bus, 0.0)
        self._guard.write_elapsed = 0.0
        self.commands += 2
        self.estimated_s += self.timing.pulse_s(width_s)
        self.clock.charge(2 * self.timing.command_s)

    def sync_pulse(self, levels: Mapping[str, float], width_s: float, line: int) -> None:
        """One pulse on several buses started by one trigger edge; all return to 0 V together.

        Every level is checked as it would stand with the others (the devices see them all at
        once), and each bus must start from 0 V, as for a single-bus pulse.
        """
        for bus in levels:
            if self._guard.levels[bus] != 0.0:
                raise SafetyError(f"buses.{bus}", "a pulse starts from 0 V")
        for bus, volts in levels.items():
            self._guard.check_pulse(bus, float(volts), float(width_s))
            # committed before anything is sent: if arming fails, the relays stay locked
            self._guard.commit_level(bus, float(volts))
        self._backend.sync_pulse(dict(levels), float(width_s), int(line))
        for bus in levels:
            self._guard.commit_level(bus, 0.0)
        self._guard.write_elapsed = 0.0
        self.commands += 2 * len(levels) + 1
        self.estimated_s += self.timing.pulse_s(width_s)
        self.clock.charge((len(levels) + 1) * self.timing.command_s)

    def hold(self, seconds: float) -> None:
        """Let ``seconds`` pass at the present levels."""
        self._guard.check_hold(seconds)
        self.clock.sleep(seconds)
        self._spent(seconds)

    def switch(self, target: Iterable[str]) -> int:
        """Make exactly ``target`` closed: open what must open, then close what must close."""
        to_open, to_close = self._guard.check_switch(set(target))
        if to_open:
            self._backend.open(to_open)
            self._guard.closed.difference_update(to_open)
            self._guard.changed()
            self._relays(len(to_open), mainframes_touched(to_open))
        if to_close:
            self._guard.closed.update(to_close)  # assumed closed even if the send fails
            self._guard.changed()
            self._backend.close(to_close)
            self._relays(len(to_close), mainframes_touched(to_close))
        return len(to_open) + len(to_close)

    def open_all(self) -> None:
        self._guard.check_switch(set())
        self._backend.open_all()
        n = len(self._guard.closed)
        self._guard.closed.clear()
        self._guard.changed()
        self._relays(n, len(self._guard.config.matrix_names))  # every mainframe is told

    def _relays(self, n: int, mainframes: int) -> None:
        """One relay change of n crosspoints: one command (and settling) per mainframe it
        reaches, one after the other. Counted as one command of the plan."""
        self.relay_operations += n
        self.commands += 1
        # a simulated matrix advances its own clock by the settling time
        self._spent(mainframes * self.timing.relay_s, mainframes * self.timing.command_s)


def _hardware_current(config: BenchConfig, bus: str) -> tuple[float, str]:
    """The largest current limit the bus's hardware takes at the bench's line limit, and why."""
    b = config.buses[bus]
    model = config.instrument(b.instrument).model
    v = config.limits.v_max_V
    smu = capability(model).i_max_at(v)
    matrix = min((m.model for m in config.matrices), key=lambda m: capability(m).i_max or math.inf)
    carry = capability(matrix).i_max or math.inf
    if carry < smu:
        return carry, f"the carry rating of the {matrix} relays the bus goes through"
    return smu, f"what a {model} can hold at limits.v_max_V={v} V (DC)"
