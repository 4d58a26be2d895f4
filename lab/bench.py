"""A bench: the instruments of a bench file, opened by role, on real VISA or on the simulated twin.

``Bench.open(config)`` opens every instrument through ``drivers.open_instrument`` with the
bench's VISA library (pyvisa-py ``@py`` by default). ``simulate=True`` (or a bench file
marked ``simulated = true``) builds the simulated twin of the bench file instead and opens
the *same resource strings* through the in-process simulated VISA library, so the real
drivers run byte for byte; ``server=`` opens them over loopback sockets from a
:class:`sim_backend.server.SimServer`. The bench owns the clock the drivers sleep on (the
twin's virtual clock in a dry run) and nothing else: safety and routing live above it.

:class:`PaperBench` is the third backend: no instrument at all, for dry checks. It
answers measurements from a nominal uniform conductance, adds up bench time, and
integrates the charge and energy the devices would take.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

import drivers
from sim_backend import load_preset
from sim_backend.twin import build_twin

from lab.config import DEFAULT_BENCH, BenchConfig, load_bench
from lab.errors import ConfigError, HopbenchError
from lab.lock import LOCAL_PREFIX, BenchLock, identity_key, instrument_key
from lab.matrices import SEPARATOR, MatrixGroup, mainframes_touched
from lab.models import capability
from lab.operations import BenchInfo
from lab.timing import Clock, PaperClock, TimingModel, TwinClock, WallClock

log = logging.getLogger("hopbench.bench")

DEFAULT_VISA_LIBRARY = "@py"


def twin_spec(config: BenchConfig) -> dict[str, Any]:
    """The plain-dict spec of the bench's simulated twin (see sim_backend.twin)."""
    arr = config.array
    topo: dict[str, Any] = {"kind": arr.topology, "n": arr.n}
    if arr.topology == "crossbar":
        topo["tied"] = arr.tied
    wired = _crosspoints_by_matrix(config)
    insts: list[dict[str, Any]] = []
    for inst in config.instruments:
        entry: dict[str, Any] = {"name": inst.name, "model": inst.model, "resource": inst.resource}
        cap = capability(inst.model)  # the one table of datasheet limits: the twin obeys it too
        if inst.kind == "smu":
            entry["limits"] = {"v_max": cap.v_max, "i_max": cap.i_limit_max,
                               "nplc_min": cap.nplc_range[0], "nplc_max": cap.nplc_range[1]}
            entry["channels"] = {b.channel: bus for bus, b in config.buses.items() if b.instrument == inst.name}
            if not entry["channels"]:
                continue  # an SMU no bus uses is not part of the circuit
        else:
            entry["limits"] = {"max_cards": cap.max_cards}
            entry["cards"] = inst.cards
            if inst.settling_time_s is not None:
                entry["settling_time_s"] = inst.settling_time_s
            if inst.name in wired:
                entry["crosspoints"] = wired[inst.name]
        insts.append(entry)
    sim = config.simulation
    lines = {str(k): list(v) for k, v in config.wiring.trigger_lines.items()}
    return {
        "topology": topo,
        "preset": _preset(sim),
        "seed": sim.seed,
        "contact_resistance_ohm": sim.contact_resistance_ohm,
        "source_resistance_ohm": sim.source_resistance_ohm,
        "realtime": sim.realtime,
        "read_noise": sim.read_noise,
        "instruments": insts,
        **({"trigger_lines": lines} if lines else {}),
    }


def _crosspoints_by_matrix(config: BenchConfig) -> dict[str, dict[str, list[str]]]:
    """Per mainframe, its own channel ids (as the instrument names them) -> [bus, line]."""
    lay = config.layout
    out: dict[str, dict[str, list[str]]] = {name: {} for name in config.matrix_names}
    for (bus, line), xp in lay.crosspoint.items():
        if config.multi_matrix:
            name, _, channel = xp.partition(SEPARATOR)
        else:
            name, channel = config.wiring.matrix, xp
        out[name][channel] = [bus, lay.lines[line]]
    return out


def _preset(sim: Any) -> Any:
    """The preset name, or its validated contents with the bench's overrides applied."""
    if not sim.preset_overrides:
        return sim.preset
    base = load_preset(sim.preset).model_dump()
    unknown = sorted(set(sim.preset_overrides) - set(base))
    if unknown:
        raise ConfigError(sim.preset, [(f"simulation.preset_overrides.{unknown[0]}", "not a field of the preset")])
    return load_preset({**base, **sim.preset_overrides}).model_dump()


def bench_info(config: BenchConfig, simulated: bool) -> BenchInfo:
    lay = config.layout
    lim = config.limits
    return BenchInfo(
        line_names=lay.lines,
        neuron_lines=lay.neuron_lines,
        devices=lay.devices,  # the layout's read-only arrays themselves, not copies
        device_cells=lay.device_cells,
        topology=config.array.topology,
        v_max=lim.v_max_V,
        v_read_max=lim.v_read_max_V,
        max_pulse_width_s=lim.pulse_width_max_s,
        default_v_read=lim.v_read,
        simulated=simulated,
    )


def _open_driver(inst: Any, resource: str, library: Any) -> Any:

    kw: dict[str, Any] = {
        "timeout": inst.timeout_ms,
        "read_termination": inst.read_termination,
        "write_termination": inst.write_termination,
        "name": inst.name,
    }
    if inst.kind == "matrix":
        kw["cards"] = inst.cards
        if inst.settling_time_s is not None:
            kw["settling_time_s"] = inst.settling_time_s
    return drivers.open_instrument(inst.model, resource, visa_library=library, **kw)


@dataclass
class _Opened:
    drivers: dict[str, Any]
    channels: dict[str, Any]
    matrix: Any  # the one matrix driver, or a MatrixGroup of several mainframes
    matrices: dict[str, Any]  # mainframe name -> its driver


class Bench:
    """Opened instruments by role: ``channels`` by bus, ``matrix``, ``clock``, ``info``.

    ``matrix`` is the switch-matrix role: the driver of the one matrix, or a
    :class:`~lab.matrices.MatrixGroup` over several mainframes; ``matrices`` names each
    mainframe's own driver (cleanup reads every one back)."""

    def __init__(self, config: BenchConfig, opened: _Opened, clock: Clock, *, simulated: bool,
                 twin: Any = None, command_log: list | None = None, lock_keys: Iterable[str] = ()) -> None:
        self.config = config
        self.instruments = opened.drivers
        self.channels = opened.channels
        self.matrix = opened.matrix
        self.matrices = opened.matrices
        self.clock = clock
        self.simulated = simulated
        self.twin = twin
        self.command_log = command_log
        self.info = bench_info(config, simulated)
        self.timing = TimingModel.from_config(config)
        self.lock_keys = tuple(lock_keys)
        self._identity_keys: list[str] | None = None
        self.held_lock: BenchLock | None = None  # taken by open(lock=True), released by close()
        self.closed_ = False

    # -------------------------------------------------------------- opening
    @classmethod
    def open(cls, config: BenchConfig | str | Path = DEFAULT_BENCH, simulate: bool | None = None, *,
             server: Any = None, twin: Any = None, resources: Mapping[str, str] | None = None,
             visa_library: Any = None, lock: bool = False) -> "Bench":
        """Open a bench.

        :param simulate: None = as the bench file says (``simulated``); True = on the twin.
        :param server: a started SimServer, or {instrument name: resource} of one running
            elsewhere (another process): the instruments are reached over its sockets/ptys.
        :param twin: with ``server``, the twin it serves (for truth in tests); not required.
        :param resources: replace resource strings by instrument name (a real bench).
        :param visa_library: replace every instrument's VISA library.
        :param lock: take the instruments' locks (by address) before opening any of them, and
            hold them until :meth:`close`: opening already talks to an instrument (identity,
            error queue, connect rule), which must not happen to an instrument another runner drives.
        """
        cfg = config if isinstance(config, BenchConfig) else load_bench(config)
        resources = dict(resources or {})
        command_log = None
        lock_keys: list[str] = []
        if server is not None:
            if isinstance(server, Mapping):
                resources.update(server)
            else:
                resources.update(server.resources)
                command_log = server.command_log
            library_for = lambda inst: "@py"  # noqa: E731 - sockets and ptys go through pyvisa-py
            clock: Clock = WallClock()
            simulated = True
        elif simulate or (simulate is None and cfg.simulated):
            twin = build_twin(twin_spec(cfg))
            lib = twin.visa_library()
            library_for = lambda inst: lib  # noqa: E731
            clock = TwinClock(twin.bench)
            simulated = True
            command_log = lib.command_log
            lock_keys = [f"{LOCAL_PREFIX}twin-{os.getpid()}-{id(twin):x}"]  # no other process reaches it
        else:
            if cfg.simulated:
                raise ConfigError(cfg.source, [("simulated", "this bench exists only as a simulated twin; "
                                                              "open it with simulate=True or a server")])
            library_for = lambda inst: inst.visa_library or DEFAULT_VISA_LIBRARY  # noqa: E731
            clock = WallClock()
            simulated = False
        if visa_library is not None:
            library_for = lambda inst: visa_library  # noqa: E731
        res = {inst.name: resources.get(inst.name, inst.resource) for inst in cfg.instruments}
        if not lock_keys:
            lock_keys = sorted({instrument_key(r) for r in res.values()})
        held = None
        if lock and not all(k.startswith(LOCAL_PREFIX) for k in lock_keys):
            held = BenchLock(lock_keys, bench=cfg.name, simulated=simulated).acquire()
        try:
            opened = cls._open_all(cfg, res, library_for)
        except BaseException:
            if held is not None:
                held.release()
            raise
        for name, drv in opened.drivers.items():
            if hasattr(drv, "sleep"):
                drv.sleep = clock.sleep  # pulses take bench time: virtual in a dry run
        bench = cls(cfg, opened, clock, simulated=simulated, twin=twin, command_log=command_log,
                    lock_keys=lock_keys)
        bench.held_lock = held
        return bench

    @staticmethod
    def _open_all(cfg: BenchConfig, res: Mapping[str, str], library_for: Any) -> _Opened:
        used = {b.instrument for b in cfg.buses.values()} | set(cfg.matrix_names)
        opened: dict[str, Any] = {}
        try:
            for inst in cfg.instruments:
                if inst.name not in used:
                    continue
                try:
                    opened[inst.name] = _open_driver(inst, res[inst.name], library_for(inst))
                except Exception as exc:
                    raise HopbenchError(f"cannot open instrument {inst.name!r} ({inst.model}) at "
                                        f"{res[inst.name]}: {type(exc).__name__}: {exc}") from exc
            channels = {}
            for bus, b in cfg.buses.items():
                channels[bus] = opened[b.instrument].channels()[b.channel]
            matrices = {name: opened[name] for name in cfg.matrix_names}
            matrix = MatrixGroup(matrices) if cfg.multi_matrix else opened[cfg.wiring.matrix]
            return _Opened(opened, channels, matrix, matrices)
        except BaseException:
            for drv in opened.values():
                _close_driver(drv)
            raise

    # -------------------------------------------------------------- identity
    def identity_keys(self) -> list[str]:
        """Lock keys of the instruments' ``*IDN?`` identities (those that answer with a serial).

        Asked only on a real bench: a simulator's instruments share made-up serials, and a
        twin or a sim server is reached at one address anyway.
        """
        if self.simulated:
            return []
        if self._identity_keys is None:
            keys = set()
            for name, drv in self.instruments.items():
                try:
                    idn = str(drv.id)
                except Exception as exc:  # noqa: BLE001 - an instrument without *IDN? keeps its address key
                    log.info("%s: no identity for the bench lock (%s)", name, exc)
                    continue
                key = identity_key(idn)
                if key is not None:
                    keys.add(key)
            self._identity_keys = sorted(keys)
        return list(self._identity_keys)

    def describe(self) -> dict[str, Any]:
        """What the lock owner file says about this bench."""
        return {"bench": self.config.name, "simulated": self.simulated}

    # -------------------------------------------------------------- use
    def backend(self) -> "InstrumentBackend":
        return InstrumentBackend(self)

    def truth(self) -> np.ndarray | None:
        """The twin's true device conductances (S), or None on a real bench."""
        if self.twin is None:
            return None
        return np.asarray(self.twin.bench.true_conductances(), dtype=float).copy()

    def close(self) -> None:
        if self.closed_:
            return
        self.closed_ = True
        try:
            for drv in self.instruments.values():
                _close_driver(drv)
        finally:
            if self.held_lock is not None:
                self.held_lock.release()

    def __enter__(self) -> "Bench":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_driver(drv: Any) -> None:
    """Close the VISA session only (a matrix driver's close() would switch relays)."""
    try:
        drv.adapter.close()
    except Exception as exc:  # noqa: BLE001 - closing must not hide the real error
        log.warning("closing %s failed: %s", getattr(drv, "name", drv), exc)


class InstrumentBackend:
    """Actions by bus name on the opened drivers (used only through the safety guard)."""

    def __init__(self, bench: Bench) -> None:
        self._channels = bench.channels
        self._matrix = bench.matrix
        self._instruments = bench.instruments
        self._config = bench.config
        self.clock = bench.clock

    def set_voltage(self, bus: str, volts: float) -> None:
        self._channels[bus].set_voltage(volts)

    def set_current_limit(self, bus: str, amps: float) -> None:
        self._channels[bus].set_current_limit(amps)

    def set_nplc(self, bus: str, nplc: float) -> None:
        self._channels[bus].set_nplc(nplc)

    def set_autorange(self, bus: str) -> None:
        self._channels[bus].set_current_range(None)

    def set_output(self, bus: str, on: bool) -> None:
        self._channels[bus].set_output(on)

    def measure(self, bus: str) -> Any:
        return self._channels[bus].measure()

    def limit_tripped(self, bus: str) -> bool:
        return bool(self._channels[bus].limit_tripped)

    def pulse(self, bus: str, volts: float, width_s: float) -> None:
        self._channels[bus].pulse(volts, width_s)

    def sync_pulse(self, levels: Mapping[str, float], width_s: float, line: int) -> None:
        """Arm every bus on trigger ``line``, fire it from the first bus's instrument, and wait
        for the others: the sources step together and return to 0 V together."""
        owners = {bus: self._config.buses[bus].instrument for bus in levels}
        for bus, volts in levels.items():
            self._channels[bus].arm_sync_pulse(volts, width_s, line=line)
        master = owners[next(iter(levels))]
        self._instruments[master].fire_trigger_line(line, width_s)
        for name in sorted(set(owners.values()) - {master}):
            self._instruments[name].wait_complete(width_s)

    def close(self, crosspoints: Iterable[str]) -> None:
        self._matrix.close(list(crosspoints))

    def open(self, crosspoints: Iterable[str]) -> None:
        self._matrix.open(list(crosspoints))

    def open_all(self) -> None:
        self._matrix.open_all()


@dataclass(frozen=True)
class PaperReading:
    voltage: float
    current: float
    compliance: bool = False


class PaperBench:
    """A bench on paper: every device at ``g_nominal``, time and dose added up, nothing sent.

    Lines that float are left out of the currents (their potential is not solved for), so
    charge and energy are those of the driven devices.
    """

    def __init__(self, config: BenchConfig, g_nominal: float | None = None) -> None:
        self.config = config
        self.timing = TimingModel.from_config(config)
        self.g = float(g_nominal if g_nominal is not None else config.g_nominal)
        self.clock = PaperClock(self._dose)
        self.guard: Any = None  # set by the runner: where line voltages come from
        lay = config.layout
        self._a = lay.devices[:, 0]
        self._b = lay.devices[:, 1]
        self._n_lines = len(lay.lines)
        self._owner = lay.owner
        self._bus_index = {b: k for k, b in enumerate(lay.buses)}
        self.v_read_max = config.limits.v_read_max_V
        self._n_matrices = len(config.matrix_names)
        self.charge_C = 0.0
        self.energy_J = 0.0
        self.max_device_V = 0.0
        self.write_time_s = 0.0
        # by line voltages: the dose rates and per-line currents (a read asks thousands of times
        # in a few hundred relay configurations)
        self._by_lines: dict[bytes, tuple[float, float, float, np.ndarray | None]] = {}
        # the guard's present line voltages (the object, unchanged until the guard's state
        # changes), their entry above and the bus currents measured in that state
        self._last: tuple[np.ndarray, tuple, dict[str, float]] | None = None

    def _lines_state(self) -> tuple[float, float, float, np.ndarray | None]:
        """(Σ|ΔV|, Σ ΔV², max |ΔV| over devices, per-line current or None) at the present levels."""
        v = self.guard.present_line_voltages()
        last = self._last
        if last is not None and last[0] is v:  # the guard's state has not changed since
            return last[1]
        key = v.tobytes()
        hit = self._by_lines.get(key)
        if hit is None:
            dv = v[self._a] - v[self._b]
            dv = np.where(np.isfinite(dv), dv, 0.0)
            a = np.abs(dv)
            if len(self._by_lines) > 4096:
                self._by_lines.clear()
            hit = self._by_lines[key] = (float(a.sum()), float((a * a).sum()), float(a.max(initial=0.0)), None)
        self._last = (v, hit, {})
        return hit

    def _line_currents(self) -> np.ndarray:
        s_abs, s_sq, peak, out = self._lines_state()
        if out is None:
            v = self.guard.present_line_voltages()
            i_dev = self.g * (v[self._a] - v[self._b])
            i_dev = np.where(np.isfinite(i_dev), i_dev, 0.0)
            out = np.bincount(self._a, weights=i_dev, minlength=self._n_lines)
            out -= np.bincount(self._b, weights=i_dev, minlength=self._n_lines)
            hit = self._by_lines[v.tobytes()] = (s_abs, s_sq, peak, out)
            self._last = (v, hit, {})
        return out

    def _device_v(self) -> np.ndarray:
        v = self.guard.line_voltages()
        dv = v[self._a] - v[self._b]
        return np.where(np.isfinite(dv), dv, 0.0)

    def _dose(self, dt: float) -> None:
        if self.guard is None:
            return
        s_abs, s_sq, peak, _ = self._lines_state()
        if peak == 0.0:
            return
        self.charge_C += float(self.g * s_abs * dt)
        self.energy_J += float(self.g * s_sq * dt)
        self.max_device_V = max(self.max_device_V, peak)
        if peak > self.v_read_max + 1e-9:
            self.write_time_s += dt

    # ---------------------------------------------------------------- backend
    def set_voltage(self, bus: str, volts: float) -> None:
        pass

    def set_current_limit(self, bus: str, amps: float) -> None:
        pass

    def set_nplc(self, bus: str, nplc: float) -> None:
        pass

    def set_autorange(self, bus: str) -> None:
        pass

    def set_output(self, bus: str, on: bool) -> None:
        pass

    def measure(self, bus: str) -> PaperReading:
        out = self._line_currents()
        current = self._last[2].get(bus)  # per bus, while the guard's state stands
        if current is None:
            routed = self.guard.routed_lines()
            if routed is not None:  # the closed crosspoints' lines as arrays, in line order
                lines, bus_of = routed
                lines = lines[bus_of == self._bus_index[bus]]
            else:
                owner = self._owner
                lines = [owner[xp][1] for xp in self.guard.closed if owner[xp][0] == bus]
            current = self._last[2][bus] = float(out[lines].sum()) if len(lines) else 0.0
        self.clock.sleep(self.timing.integration_s)  # a simulated SMU integrates on the clock too
        return PaperReading(self.guard.levels[bus], current)

    def limit_tripped(self, bus: str) -> bool:
        return False  # no instrument to ask: a paper check cannot see a clamp (the twin can)

    def pulse(self, bus: str, volts: float, width_s: float) -> None:
        self.clock.sleep(width_s)

    def sync_pulse(self, levels: Mapping[str, float], width_s: float, line: int) -> None:
        self.clock.sleep(width_s)

    def close(self, crosspoints: Iterable[str]) -> None:
        self._relay_change(crosspoints)

    def open(self, crosspoints: Iterable[str]) -> None:
        self._relay_change(crosspoints)

    def _relay_change(self, crosspoints: Iterable[str]) -> None:
        """Each mainframe the change reaches settles after its own command (as on the twin);
        the commands' latencies are the guard's to charge."""
        self.clock.sleep(mainframes_touched(crosspoints) * self.timing.relay_settling_s)

    def open_all(self) -> None:
        self.clock.sleep(self._n_matrices * self.timing.relay_settling_s)
