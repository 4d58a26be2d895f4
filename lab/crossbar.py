"""Crossbar access: device-level intentions turned into routed, cold-switched instrument actions.

Buses are source-meter channels; the switch matrix joins any bus to any line. This module
decides which line goes on which bus and in what order, and asks the
:class:`lab.safety.GuardedActuator` (never an instrument) to do it:

- apply / pulse: lines grouped by voltage level, one drive bus per distinct non-zero
  level, the other lines on the guard bus at 0 V (or floating);
- guarded read: the selected line on a drive bus at v_read, measured lines on sense buses
  at 0 V, every other line on the guard bus at 0 V, so each sense current is exactly
  v_read·G of one device (no sneak path). A sense group is held while the drive line
  steps through its partners: 4 relay operations measure one device per sense bus;
- floating read: only the selected pair connected (what a naive two-probe read does; its
  sneak-path error is the proof the guard is needed);
- multiply: the measured neuron at virtual ground on a sense bus, every other neuron at
  s_j·v_read, so I_i = v_read Σ_j G_ij s_j.

Relays change only with every source at 0 V, as a diff (open what must open, then close
what must close), which also makes every change break-before-make.

Reads correct for the bench's calibrated contact resistance R (``wiring.contact_resistance_ohm``:
relay, cable and pad between a bus and a line). The drive line carries the whole row current
(v·Σ_k G_ik ≈ 0.34 mA on the 35-node film: with 1 Ω, 0.34 % of v_read, a sixth of the AMR
window), so the drive bus is measured the first time a line is driven and every device is
computed from the line voltages V_bus − I·R on both sides. Guard lines carry one device's current each, so
they sit near the sense line's own offset; the small sneak current that remains is taken
from the conductances just read. A multiply corrects each neuron's current with the nodal
model of its configuration and the conductances last read (nominal before any read).

A reading clamped at its current limit is never turned into a conductance: the operation
stops with :class:`ComplianceHit` naming the bus (the runner then makes the bench safe).
Buses a read does not measure anyway are measured only when their worst-case current
(every device at ``limits.g_max_expected_S``) could reach their limit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from drivers.errors import ComplianceTripped
from lab.config import BenchConfig
from lab.errors import HopbenchError, RoutingError
from lab.operations import ApplyResult, MatrixResult, MultiplyResult, PairResult
from lab.safety import GuardedActuator

Route = dict[int, str]  # line index -> bus


def clamp_queries(width_s: float, buses: int, command_s: float) -> int:
    """How many compliance queries a pulse held by ``buses`` buses set one after another makes:
    one per bus when they fit in the width with the latency of the first zero, else none (a
    pulse is never lengthened for them)."""
    return buses if width_s >= (1 + buses) * command_s else 0


class ComplianceHit(HopbenchError):
    """A source was clamped at its current limit during an operation: its result is not valid."""

    def __init__(self, operation: str, bus: str, limit: float | None, current: float | None, what: str) -> None:
        self.operation = operation
        self.bus = bus
        seen = [f"{limit:g} A" if limit is not None else "", f"read {current:.4g} A" if current is not None else ""]
        seen_text = f" ({', '.join(x for x in seen if x)})" if any(seen) else ""
        super().__init__(f"{operation}: bus {bus} was clamped at its current limit{seen_text} during {what}; "
                         f"the line was not at the voltage asked for, so no result is returned")


@dataclass(frozen=True)
class ReadConfig:
    """One relay configuration of a matrix read: ``drive`` at v_read, ``targets`` measured."""

    drive: int
    sense: tuple[tuple[str, int], ...]  # (sense bus, line) held at 0 V for the whole group
    targets: tuple[tuple[str, int, int], ...]  # (sense bus, line, device index) to measure


def plan_guarded_reads(config: BenchConfig, devices: Sequence[int]) -> list[ReadConfig]:
    """Relay configurations covering ``devices`` with the guarded scheme, few relay changes.

    Lines are taken S at a time (S = sense buses) as a sense group; every line outside the
    group that shares a device with it is then driven in turn, so between two
    configurations only the drive line changes (4 relay operations for S devices).
    Devices inside a group are read last, driving each member against the others.
    """
    lay = config.layout
    sense_buses = lay.by_role("sense")
    n_s = len(sense_buses)
    partners: dict[int, dict[int, int]] = {}
    for d in devices:
        a, b = (int(x) for x in lay.devices[int(d)])
        partners.setdefault(a, {})[b] = int(d)
        partners.setdefault(b, {})[a] = int(d)
    if config.array.topology == "crossbar":  # columns as sense groups: no column-column devices
        n = config.array.n
        order = [x for x in range(n, 2 * n) if x in partners] + [x for x in range(n) if x in partners]
    else:
        order = sorted(partners)
    configs: list[ReadConfig] = []

    def take(a: int, b: int) -> int:
        d = partners[a].pop(b)
        partners[b].pop(a)
        return d

    for start in range(0, len(order), n_s):
        group = order[start:start + n_s]
        if not any(partners[m] for m in group):
            continue
        slot = {m: sense_buses[j] for j, m in enumerate(group)}
        sense = tuple((slot[m], m) for m in group)
        gset = set(group)
        for d_line in order:
            if d_line in gset:
                continue
            targets = tuple((slot[m], m, take(d_line, m)) for m in group if m in partners[d_line])
            if targets:
                configs.append(ReadConfig(d_line, sense, targets))
        for k, a in enumerate(group):
            targets = tuple((slot[m], m, take(a, m)) for m in group[k + 1:] if m in partners[a])
            if targets:
                rest = tuple((bus, m) for bus, m in sense if m != a)
                configs.append(ReadConfig(a, rest, targets))
    return configs


def plan_floating_reads(config: BenchConfig, devices: Sequence[int]) -> list[ReadConfig]:
    """One device per configuration, only its two lines connected; shared drive lines kept."""
    lay = config.layout
    sense_bus = lay.by_role("sense")[0]
    pairs = sorted((tuple(int(x) for x in lay.devices[int(d)]), int(d)) for d in devices)
    return [ReadConfig(a, ((sense_bus, b),), ((sense_bus, b, d),)) for (a, b), d in pairs]


def cells_matrix(config: BenchConfig, values: np.ndarray) -> np.ndarray:
    """(n_neurons, n_neurons) by device cell; a film's matrix is symmetric."""
    n = config.array.n
    m = np.full((n, n), np.nan)
    cells = config.layout.device_cells
    m[cells[:, 0], cells[:, 1]] = values
    if config.array.topology == "film":
        m[cells[:, 1], cells[:, 0]] = values
    return m


class Crossbar:
    """Routes operations over the guarded actuator; owns no instrument."""

    def __init__(self, actuator: GuardedActuator, config: BenchConfig) -> None:
        self.act = actuator
        self.config = config
        self.layout = lay = config.layout
        self.drive = lay.by_role("drive")
        self.sense = lay.by_role("sense")
        self.guard_bus = lay.by_role("guard")[0]
        self.r_contact = config.wiring.contact_resistance_ohm
        self._groundable = [k for k in range(len(lay.lines)) if k not in lay.forbidden]  # in line order
        # what the contact corrections assume the devices conduct: the last guarded read of
        # each device, nominal until then (the corrections are ~0.5 % of a current, so a
        # device's spread matters there but its drift since the read does not)
        self.g_estimate = np.full(len(lay.devices), config.g_nominal)
        self._last_target: tuple[Route, set[str]] | None = None  # the last route and its crosspoints

    # ------------------------------------------------------------ basics
    def prepare(self) -> None:
        """From a safe bench (everything off and open): limits, integration time, outputs on at 0 V."""
        nplc = self.config.timing.nplc
        for bus, b in self.config.buses.items():
            self.act.set_compliance(bus, b.compliance_A)
            self.act.set_nplc(bus, nplc)
            self.act.set_autorange(bus)
        for bus in self.layout.buses:
            self.act.set_output(bus, True)

    def zero(self) -> None:
        for bus in self.layout.buses:
            self.act.set_level(bus, 0.0)

    def _target(self, route: Route, moved: Iterable[int] | None = None) -> set[str]:
        """The crosspoints of ``route``: from the last route's by the lines that changed (a read
        moves one line of 2N per configuration), else formatted afresh. ``moved``: lines outside
        which ``route`` is the last route (the caller knows; then only they are compared)."""
        xp = self.layout.crosspoint
        last = self._last_target
        if last is None:
            target = {xp[(bus, line)] for line, bus in route.items()}
        elif moved is not None:
            old, target = last  # (both kept for the next call alone: updated in place)
            for line in moved:
                was, now = old.get(line), route.get(line)
                if was != now:
                    if was is not None:
                        target.discard(xp[(was, line)])
                        del old[line]
                    if now is not None:
                        target.add(xp[(now, line)])
                        old[line] = now
            return target
        else:
            old, target = last[0], set(last[1])
            for line, bus in old.items() - route.items():  # (set operations on the items, in C)
                target.discard(xp[(bus, line)])
            for line, bus in route.items() - old.items():
                target.add(xp[(bus, line)])
        self._last_target = (dict(route), target)
        return target

    def configure(self, route: Route, levels: dict[str, float], moved: Iterable[int] | None = None) -> None:
        """Route lines onto buses (cold), then set the bus levels; unlisted buses stay at 0 V.
        ``moved``: the lines outside which ``route`` is the last one configured, if known."""
        target = self._target(route, moved)
        if not self.act.closed_exactly(target):
            self.zero()
            self.act.switch(target)
        for bus in self.layout.buses:
            if bus not in levels:
                self.act.set_level(bus, 0.0)
        for bus, v in levels.items():
            self.act.set_level(bus, v)

    def _ground_rest(self, route: Route, others: str = "ground") -> Route:
        if others == "ground":
            guard = self.guard_bus
            for line in self._groundable:
                if line not in route:
                    route[line] = guard
        return route

    def plan_levels(self, volts: dict[int, float], others: str = "ground") -> tuple[Route, dict[str, float]]:
        """Lines grouped by level onto drive buses (highest level first), zeros on the guard bus."""
        levels = sorted({round(float(v), 9) for v in volts.values() if v != 0.0}, reverse=True)
        if len(levels) > len(self.drive):
            raise RoutingError("line_voltages", f"{len(levels)} distinct non-zero levels {levels} need as many "
                               f"drive buses; the bench has {len(self.drive)} ({', '.join(self.drive)})")
        bus_of = {v: self.drive[k] for k, v in enumerate(levels)}
        route: Route = {}
        for line, v in volts.items():
            route[int(line)] = bus_of[round(float(v), 9)] if v != 0.0 else self.guard_bus
        return self._ground_rest(route, others), {bus_of[v]: v for v in levels}

    def _line_array(self) -> np.ndarray:
        return self.act.line_voltages()

    # ------------------------------------------------------------ writes
    def apply(self, volts: dict[int, float], duration_s: float, others: str = "ground") -> ApplyResult:
        route, levels = self.plan_levels(volts, others)
        self.configure(route, {})
        for bus, v in levels.items():
            self.act.set_level(bus, v)
        line_v = self._line_array()
        t_meas = len(levels) * self.act.timing.measure_s
        currents: dict[str, float] = {}
        if levels and duration_s >= t_meas:
            self.act.hold(duration_s - t_meas)
            for bus in levels:
                currents[bus] = float(self._reading(bus, "apply", "the write").current)
        else:
            self.act.hold(duration_s)
        self.zero()
        return ApplyResult(line_v, float(duration_s), currents)

    def pulse(self, volts: dict[int, float], width_s: float, count: int = 1, period_s: float | None = None,
              others: str = "ground") -> ApplyResult:
        """``count`` pulses of ``width_s`` at full drive, ``period_s`` apart.

        One bus: the driver times the pulse on the instrument. Several buses: their levels are
        set one command after another, and a command's level holds from the end of its
        latency, so all buses are at full drive from the last level set until the first zero
        takes effect: the hold is shortened by one command latency to make that time the width
        asked. Within it each bus is asked whether its source is clamped at its current limit
        (one query each, the hold shortened by as many latencies; a clamp stops the operation
        with :class:`ComplianceHit` once every bus is back at 0 V), if the width holds the
        queries: a shorter pulse is not lengthened for them, and goes unasked. The buses set
        first and zeroed last see part of the drive for (buses − 1) latencies on each side;
        ``timeline`` records what was applied. A bench whose sources share a trigger line
        (``[wiring.trigger_lines]``) arms every bus and fires one edge instead: all buses step
        together, hold exactly the width, and step back together.
        """
        route, levels = self.plan_levels(volts, others)
        self.configure(route, {})
        period = period_s if period_s is not None else 2 * width_s
        gap = max(period - width_s, 0.0)
        line_v = None
        clock, t0 = self.act.clock, self.act.clock.now()
        timeline: list[tuple[float, str, float]] = []
        line = self.config.sync_line(levels) if len(levels) > 1 else None
        for k in range(count):
            if line is not None:  # one trigger edge starts every bus: exactly the width at full drive
                t = clock.now() - t0
                self._sync_pulse(levels, width_s, line, k)
                timeline += [(t, bus, v) for bus, v in levels.items()]
                timeline += [(t + width_s, bus, 0.0) for bus in levels]
            elif len(levels) == 1:
                (bus, v), = levels.items()
                timeline.append((clock.now() - t0, bus, v))
                self._pulse(bus, v, width_s, k)
                timeline.append((timeline[-1][0] + width_s, bus, 0.0))
            else:
                for bus, v in levels.items():
                    self._timed_level(bus, v, timeline, t0)
                if line_v is None:
                    line_v = self._line_array()
                # each source is asked, while all of them drive, whether it is clamped, when the
                # queries fit inside the width (a pulse is never lengthened for them): a clamped
                # drive is then reported, not recorded as applied
                queries = clamp_queries(width_s, len(levels), self.act.timing.command_s)
                self.act.hold(max(width_s - (1 + queries) * self.act.timing.command_s, 0.0))
                clamped = [bus for bus in list(levels)[:queries] if self.act.limit_tripped(bus)]
                for bus in levels:
                    self._timed_level(bus, 0.0, timeline, t0)
                if clamped:
                    raise ComplianceHit("pulse", clamped[0], self.act.current_limit(clamped[0]), None,
                                        f"pulse {k + 1} ({width_s:g} s) held by buses {', '.join(levels)} one after "
                                        f"another (clamped: {', '.join(clamped)})")
            if k < count - 1:
                self.act.hold(gap)
        if line_v is None:  # driver-timed or triggered pulses: report the levels the lines saw
            line_v = self._line_array()
            for line, bus in route.items():
                if bus in levels:
                    line_v[line] = levels[bus]
        return ApplyResult(line_v, float(width_s) * count, {}, tuple(timeline))

    def _sync_pulse(self, levels: dict[str, float], width_s: float, line: int, k: int) -> None:
        try:
            self.act.sync_pulse(levels, width_s, line)
        except ComplianceTripped as exc:
            bus = next(iter(levels))
            raise ComplianceHit("pulse", bus, self.act.current_limit(bus), None,
                                f"synchronised pulse {k + 1} ({width_s:g} s, trigger line {line}): {exc}") from exc

    def _timed_level(self, bus: str, volts: float, timeline: list[tuple[float, str, float]], t0: float) -> None:
        if self.act.level(bus) != volts:
            self.act.set_level(bus, volts)
            timeline.append((self.act.clock.now() - t0, bus, volts))

    def _pulse(self, bus: str, volts: float, width_s: float, k: int) -> None:
        try:
            self.act.pulse(bus, volts, width_s)
        except ComplianceTripped as exc:
            raise ComplianceHit("pulse", bus, self.act.current_limit(bus), None,
                                f"pulse {k + 1} ({volts:g} V, {width_s:g} s): {exc}") from exc

    def wait(self, seconds: float) -> None:
        self.zero()
        self.act.hold(seconds)

    # ------------------------------------------------------------ reads
    def _reading(self, bus: str, operation: str, what: str):  # noqa: ANN202 - a driver's reading object
        r = self.act.measure(bus)
        if getattr(r, "compliance", False):
            raise ComplianceHit(operation, bus, self.act.current_limit(bus), float(r.current), what)
        return r

    def _line_v(self, r) -> float:  # noqa: ANN001
        """The line's voltage behind the bus's contact resistance (current flows bus -> line)."""
        return float(r.voltage) - self.r_contact * float(r.current)

    def _check_unmeasured(self, measured: set[str], operation: str, what: str) -> None:
        """Measure only the buses whose worst-case current could reach their limit."""
        for bus in self.act.buses_reaching_limit():
            if bus not in measured:
                self._reading(bus, operation, what)

    def _sample(self, bus: str, v_drive: float, repeats: int, operation: str, what: str
                ) -> tuple[float, float, float, float]:
        """(G, its standard error, mean current, mean sense-line voltage) from ``repeats`` readings."""
        if repeats == 1:  # the common case, thousands of times per read: no arrays
            r = self._reading(bus, operation, what)
            cur1 = float(r.current)
            v1 = self._line_v(r)
            return -cur1 / (v_drive - v1), float("nan"), cur1, v1  # one reading: no scatter known
        g = np.empty(repeats)
        cur = np.empty(repeats)
        v_line = np.empty(repeats)
        for k in range(repeats):
            r = self._reading(bus, operation, what)
            cur[k] = float(r.current)  # negative: flows into the sense source
            v_line[k] = self._line_v(r)
            g[k] = -cur[k] / (v_drive - v_line[k])
        # One reading carries no estimate of its own scatter: its uncertainty is unknown (NaN),
        # not 0. The instrument's specified accuracy is no substitute: it bounds a systematic
        # gain/offset error (a few 0.01 % of reading and range on a 2636B), not the read noise, which
        # is what a standard error describes (repeats >= 2 measure it).
        std = float(np.std(g, ddof=1) / np.sqrt(repeats)) if repeats > 1 else float("nan")
        return float(np.mean(g)), std, float(np.mean(cur)), float(np.mean(v_line))

    def _g_matrix(self, g: np.ndarray) -> np.ndarray:
        """(n_lines, n_lines) conductance between lines, 0 where no device joins them."""
        lay = self.layout
        n = len(lay.lines)
        a, b = lay.devices[:, 0], lay.devices[:, 1]
        gm = np.zeros((n, n))
        gm[a, b] = g
        gm[b, a] = g
        return gm

    def _guard_offsets(self, g: np.ndarray, reads: list[tuple[int, int, int, float, float]]) -> None:
        """Second order in R, in place: the guard lines are not at 0 V either.

        Each guard line k carries its device's current from the drive line, so it sits at
        v_k ≈ R·G_dk·v_d; the sense line s then receives Σ_k G_sk (v_k − v_s) besides G_ds's
        own current. With the devices' conductances from this read (nominal where unread)
        that sum is subtracted; what is left is of order (R·ΣG)² ~ 1e-5 of G.
        """
        if not reads:
            return
        gm = self._g_matrix(np.where(np.isfinite(g), g, self.g_estimate))
        dev, d, s = (np.array(col, dtype=np.intp) for col in list(zip(*reads))[:3])
        v_d, v_s = (np.array(col, dtype=float) for col in list(zip(*reads))[3:])
        # Σ_k G_sk (v_k − v_s) − G_sd (v_d − v_s) with v_k = R·G_dk·v_d (k ≠ d), v_d at k = d and
        # no device from a line to itself: R·v_d·(G_s·G_d) − v_s·(Σ_k G_sk − G_sd), all reads at once
        sneak = self.r_contact * v_d * (gm @ gm)[s, d] - v_s * (gm.sum(axis=1)[s] - gm[s, d])
        np.subtract.at(g, dev, sneak / (v_d - v_s))

    def _run_configs(self, configs: list[ReadConfig], v_read: float, repeats: int, guarded: bool,
                     operation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_dev = len(self.layout.devices)
        g = np.full(n_dev, np.nan)
        g_std = np.full(n_dev, np.nan)
        cur = np.full(n_dev, np.nan)
        drive = self.drive[0]
        names = self.layout.lines
        reads: list[tuple[int, int, int, float, float]] = []  # device, drive line, sense line, their V
        # Guarded, a drive line's current (v·Σ_k G_dk) does not depend on which 0 V bus holds each
        # other line: it is measured the first time the line is driven and reused for every
        # configuration and device it drives. A floating read's current depends on the pair.
        drive_v: dict[int, float] = {}
        groundable = set(self._groundable)
        route: Route = {}
        last: ReadConfig | None = None
        for c in configs:
            if guarded and last is not None and last.sense == c.sense and last.drive != c.drive:
                # the next drive line of a sense group: the last one goes back to the guard
                del route[last.drive]
                if last.drive in groundable:
                    route[last.drive] = self.guard_bus
                route[c.drive] = drive
                moved: tuple[int, ...] | None = (last.drive, c.drive)
            else:
                route = {c.drive: drive}
                for bus, line in c.sense:
                    route[line] = bus
                if guarded:
                    self._ground_rest(route)
                moved = None
            last = c
            self.configure(route, {drive: v_read}, moved)
            what = f"the read driven from line {names[c.drive]}"
            v_drive = drive_v.get(c.drive) if guarded else None
            if v_drive is None:
                v_drive = self._line_v(self._reading(drive, operation, what))
                if guarded:
                    drive_v[c.drive] = v_drive
            self._check_unmeasured({drive} | {bus for bus, _, _ in c.targets}, operation, what)
            for bus, line, dev in c.targets:
                g[dev], g_std[dev], cur[dev], v_sense = self._sample(
                    bus, v_drive, repeats, operation, f"the read of {names[c.drive]}-{names[line]}")
                reads.append((dev, c.drive, line, v_drive, v_sense))
        self.zero()
        if guarded and self.r_contact > 0:
            self._guard_offsets(g, reads)
        if guarded:
            known = np.isfinite(g)
            self.g_estimate[known] = g[known]
        return g, g_std, cur

    def read_pair(self, a: int, b: int, v_read: float, repeats: int = 1, scheme: str = "guarded") -> PairResult:
        dev = self.layout.device_index[(a, b)]
        bus = self.sense[0]
        config = ReadConfig(a, ((bus, b),), ((bus, b, dev),))
        g, g_std, cur = self._run_configs([config], v_read, repeats, scheme == "guarded", "read_pair")
        return PairResult(float(g[dev]), float(g_std[dev]), float(cur[dev]), v_read)

    def read_matrix(self, devices: Iterable[int] | None, v_read: float, repeats: int = 1,
                    scheme: str = "guarded") -> MatrixResult:
        forbidden = self.layout.forbidden
        if devices is None:
            devices = [k for k, (a, b) in enumerate(self.layout.devices.tolist())
                       if a not in forbidden and b not in forbidden]
        devices = list(devices)
        if scheme == "guarded":
            configs = plan_guarded_reads(self.config, devices)
        else:
            configs = plan_floating_reads(self.config, devices)
        g, g_std, _ = self._run_configs(configs, v_read, repeats, scheme == "guarded", "read_matrix")
        return MatrixResult(g, g_std, cells_matrix(self.config, g), cells_matrix(self.config, g_std), v_read)

    # ------------------------------------------------------------ multiply
    def multiply(self, pattern: Sequence[int], neurons: Sequence[int] | None, v_read: float) -> MultiplyResult:
        n = self.config.array.n
        s = np.asarray(pattern, dtype=float)
        currents = np.full(n, np.nan)
        wanted = list(range(n)) if neurons is None else [int(i) for i in neurons]
        levels = {+1: v_read, -1: -v_read}
        signs = sorted({int(x) for x in pattern}, reverse=True)
        if len(signs) > len(self.drive):
            raise RoutingError("multiply.pattern", f"a mixed ±1 pattern needs 2 drive buses; the bench has "
                               f"{len(self.drive)}")
        bus_of = {sgn: self.drive[k] for k, sgn in enumerate(signs)}
        bus_levels = {bus_of[sgn]: levels[sgn] for sgn in signs}
        lay = self.layout
        gm = self._g_matrix(self.g_estimate)
        lap = np.diag(gm.sum(1)) - gm
        if self.config.array.topology == "crossbar" and not self.config.array.tied:
            # rows are the inputs, each column a virtual-ground output: I_j = v Σ_i G_ij s_i
            for start in range(0, len(wanted), len(self.sense)):
                chunk = wanted[start:start + len(self.sense)]
                route: Route = {i: bus_of[int(s[i])] for i in range(n)}
                for bus, j in zip(self.sense, chunk):
                    route[n + j] = bus
                self.configure(self._ground_rest(route), bus_levels)
                what = f"the multiply into columns {lay.lines[n + chunk[0]]}..{lay.lines[n + chunk[-1]]}"
                self._check_unmeasured(set(self.sense[:len(chunk)]), "multiply", what)
                lost = self._contact_loss(lap, route, bus_levels)
                for bus, j in zip(self.sense, chunk):
                    currents[j] = -float(self._reading(bus, "multiply", what).current) + lost[bus]
        else:
            sense = self.sense[0]
            for i in wanted:
                route = {}
                for j, lines in enumerate(lay.neuron_lines):
                    for line in lines:
                        route[line] = sense if j == i else bus_of[int(s[j])]
                self.configure(self._ground_rest(route), bus_levels)
                what = f"the multiply into neuron {i}"
                self._check_unmeasured({sense}, "multiply", what)
                lost = self._contact_loss(lap, route, bus_levels)
                currents[i] = -float(self._reading(sense, "multiply", what).current) + lost[sense]
        self.zero()
        return MultiplyResult(currents, s.copy(), v_read)

    def _contact_loss(self, lap: np.ndarray, route: Route, levels: dict[str, float]) -> dict[str, float]:
        """Per sense bus, the current the contact resistances keep from it in this configuration.

        A multiply drives every line at once, each through its own contact: line j sits
        R·I_j off its bus and the sense line R·I_s above 0 V, a gain error of about
        −2R·ΣG (−0.6 % on the 35-node film, ten times the read noise). The bus currents
        alone cannot say how much each line carried, so the loss is taken from the nodal
        model of the configuration (``lap``: the Laplacian of :attr:`g_estimate`).
        """
        if self.r_contact <= 0:
            return {b: 0.0 for b in self.sense}
        n = len(self.layout.lines)
        routed = np.zeros(n, bool)
        v_bus = np.zeros(n)
        for line, bus in route.items():
            routed[line] = True
            v_bus[line] = levels.get(bus, 0.0)
        v_ideal = _solve_lines(lap, v_bus, routed, 0.0)
        v_real = _solve_lines(lap, v_bus, routed, self.r_contact)
        # a bus delivers (lap·v)_l into each of its lines l; a neuron's current is what its sense bus absorbs
        absorbed_lost = lap @ (v_real - v_ideal)
        return {b: float(sum(absorbed_lost[line] for line, bus in route.items() if bus == b)) for b in self.sense}


def _solve_lines(lap: np.ndarray, v_bus: np.ndarray, routed: np.ndarray, r: float) -> np.ndarray:
    """Line voltages: routed lines joined to their bus through ``r`` (pinned if 0), others floating."""
    n = len(v_bus)
    leak = 1e-12 * np.eye(n)  # fixes a line no device or bus reaches
    if r > 0:
        return np.linalg.solve(lap + np.diag(routed / r) + leak, np.where(routed, v_bus / r, 0.0))
    v = np.where(routed, v_bus, 0.0)
    free = ~routed
    if free.any():
        v[free] = np.linalg.solve((lap + leak)[np.ix_(free, free)], -lap[np.ix_(free, routed)] @ v[routed])
    return v
