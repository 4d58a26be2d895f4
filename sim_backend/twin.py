"""The simulated twin of a bench: one simulated bench plus its simulated instruments.

:func:`build_twin` takes a plain dict (the instrument and wiring part of a bench file,
no config objects, so the simulator stays usable on its own)::

    {"topology": {"kind": "film", "n": 35},          # or {"kind": "crossbar", "n": 8, "tied": true}
     "preset": "film-amr", "seed": 1234,
     "contact_resistance_ohm": 1.0, "source_resistance_ohm": 0.0, "realtime": false,
     "read_noise": "small_signal",                    # or "every_device"
     "instruments": [
       {"name": "smu1", "model": "keithley2636b", "resource": "TCPIP::192.168.1.21::5025::SOCKET",
        "channels": {"a": "drive_pos", "b": "drive_neg"},
        "limits": {"v_max": 202.0, "i_max": 1.515, "nplc_min": 0.001, "nplc_max": 25.0}},
       {"name": "matrix", "model": "keithley707b", "resource": "TCPIP::192.168.1.20::5025::SOCKET",
        "cards": 3, "crosspoints": {"1A01": ["drive_pos", "C0"]}, "settling_time_s": 0.003,
        "limits": {"max_cards": 6}}]}

An optional ``"trigger_lines": {"1": ["smu1", "smu2"]}`` wires digital I/O line 1 of the
instruments named (2600B models) together, as a bench's DB-25 digital I/O cable does
(:mod:`sim_backend.triggers`): a source armed on the line's trigger starts when any member
asserts it, all at the same virtual instant.

Source-meter channels name the buses they drive; matrix crosspoints join a bus to a device
line. Several matrix entries with crosspoints are mainframes joined on shared rows (a large
array): each names its crosspoints by its own channel ids, and on the simulated bench they
are qualified by the instrument's name (``"m2:1A01"``), so the same channel of two mainframes
is two crosspoints; with one matrix the bench keeps the plain ids. ``limits`` (optional) are
what the model can do, in place of the simulator's datasheet defaults (see
:mod:`sim_backend.instruments`). The twin's instruments are reached in process
(:meth:`Twin.visa_library`) or over sockets and pseudo-terminals
(:meth:`sim_backend.server.SimServer.from_twin`) by the bench file's own resource strings.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import PresetError, SimulatedBench, crossbar, film, load_preset
from .instruments import MODELS, create
from .instruments.base import SimInstrument
from .instruments.keithley707b import Keithley707B
from .triggers import TriggerLine, build_lines
from .visa_library import SimVisaLibrary

_CHANNEL_ID = re.compile(r"^([1-6])([A-H])(0[1-9]|1[0-2])$")
_TOP_KEYS = {
    "topology", "preset", "seed", "contact_resistance_ohm", "source_resistance_ohm", "realtime",
    "read_noise", "instruments", "trigger_lines",
}


class TwinSpecError(ValueError):
    """The twin spec is malformed; the message names the offending field."""


@dataclass
class Twin:
    bench: Any  # SimulatedBench
    instruments: dict[str, SimInstrument]
    by_resource: dict[str, SimInstrument]
    spec: dict[str, Any] = field(default_factory=dict)
    trigger_lines: dict[int, TriggerLine] = field(default_factory=dict)

    def visa_library(self) -> SimVisaLibrary:
        """A fresh in-process VISA library serving these instruments by their resource strings."""
        return SimVisaLibrary(self.by_resource)

    @property
    def matrices(self) -> dict[str, Keithley707B]:
        return {n: i for n, i in self.instruments.items() if isinstance(i, Keithley707B)}


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise TwinSpecError(f"twin spec: {where} is missing '{key}'")
    return mapping[key]


def _topology(spec: Mapping[str, Any]) -> Any:
    topo = _require(spec, "topology", "the spec")
    if not isinstance(topo, Mapping):
        raise TwinSpecError(f"twin spec: topology must be a table, got {topo!r}")
    kind = _require(topo, "kind", "topology")
    n = _require(topo, "n", "topology")
    if not isinstance(n, int) or isinstance(n, bool):
        raise TwinSpecError(f"twin spec: topology.n must be an integer, got {n!r}")
    keys = {"film": {"kind", "n"}, "crossbar": {"kind", "n", "tied"}}
    if kind not in keys:
        raise TwinSpecError(f"twin spec: topology.kind must be 'film' or 'crossbar', got {kind!r}")
    extra = set(topo) - keys[kind]
    if extra:
        raise TwinSpecError(f"twin spec: topology has unknown keys {sorted(extra)} for a {kind}")
    try:
        return film(n) if kind == "film" else crossbar(n, tied=bool(topo.get("tied", False)))
    except ValueError as exc:
        raise TwinSpecError(f"twin spec: topology: {exc}") from None


def _instrument_entries(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = _require(spec, "instruments", "the spec")
    if not isinstance(entries, (list, tuple)) or not entries:
        raise TwinSpecError("twin spec: instruments must be a non-empty list")
    names: set[str] = set()
    resources: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"instruments[{i}]"
        if not isinstance(entry, Mapping):
            raise TwinSpecError(f"twin spec: {where} must be a table, got {entry!r}")
        name = _require(entry, "name", where)
        model = _require(entry, "model", f"{where} ({name})")
        resource = _require(entry, "resource", f"{where} ({name})")
        if name in names:
            raise TwinSpecError(f"twin spec: {where}: duplicate instrument name {name!r}")
        if resource in resources:
            raise TwinSpecError(f"twin spec: {where} ({name}): resource {resource!r} used twice")
        if model not in MODELS:
            raise TwinSpecError(
                f"twin spec: {where} ({name}): unknown model {model!r}; simulated models: "
                f"{', '.join(sorted(MODELS))}"
            )
        names.add(name)
        resources.add(resource)
    return list(entries)


def _crosspoints(entry: Mapping[str, Any], where: str, line_names: set[str]) -> dict[str, tuple[str, str]]:
    raw = entry.get("crosspoints", {})
    if not isinstance(raw, Mapping):
        raise TwinSpecError(f"twin spec: {where}.crosspoints must be a table")
    cards = entry.get("cards")
    out: dict[str, tuple[str, str]] = {}
    for channel, target in raw.items():
        m = _CHANNEL_ID.match(str(channel))
        if m is None:
            raise TwinSpecError(
                f"twin spec: {where}.crosspoints: invalid channel id {channel!r} (expected e.g. '1A01')"
            )
        if cards is not None and int(m.group(1)) > int(cards):
            raise TwinSpecError(
                f"twin spec: {where}.crosspoints: channel {channel} is beyond cards={cards}"
            )
        if not isinstance(target, (list, tuple)) or len(target) != 2:
            raise TwinSpecError(
                f"twin spec: {where}.crosspoints[{channel}] must be [bus, line], got {target!r}"
            )
        bus, line = str(target[0]), str(target[1])
        if line not in line_names:
            raise TwinSpecError(
                f"twin spec: {where}.crosspoints[{channel}]: no device line {line!r} in this topology"
            )
        out[str(channel)] = (bus, line)
    return out


def build_twin(spec: Mapping[str, Any]) -> Twin:
    """Build the simulated bench and its instruments from a plain-dict spec."""
    if not isinstance(spec, Mapping):
        raise TwinSpecError(f"twin spec must be a table, got {type(spec).__name__}")
    unknown = set(spec) - _TOP_KEYS
    if unknown:
        raise TwinSpecError(f"twin spec: unknown keys {sorted(unknown)} (known: {sorted(_TOP_KEYS)})")
    topology = _topology(spec)
    try:
        preset = load_preset(_require(spec, "preset", "the spec"))
    except PresetError as exc:
        raise TwinSpecError(f"twin spec: preset: {exc}") from None
    entries = _instrument_entries(spec)
    line_names = set(topology.line_names)

    buses: list[str] = []
    driven: dict[str, str] = {}  # bus -> "instrument.channel" driving it
    crosspoints: dict[str, tuple[str, str]] = {}
    qualified = _qualified(entries)
    for i, entry in enumerate(entries):
        where = f"instruments[{i}] ({entry['name']})"
        cls = MODELS[entry["model"]]
        if issubclass(cls, Keithley707B):
            for channel, (bus, line) in _crosspoints(entry, where, line_names).items():
                if entry["name"] in qualified:
                    channel = f"{entry['name']}:{channel}"
                if channel in crosspoints:
                    raise TwinSpecError(f"twin spec: {where}: crosspoint {channel} wired twice")
                crosspoints[channel] = (bus, line)
                if bus not in buses:
                    buses.append(bus)
        else:
            channels = _require(entry, "channels", where)
            if not isinstance(channels, Mapping) or not channels:
                raise TwinSpecError(f"twin spec: {where}.channels must map channel ids to bus names")
            for channel, bus in channels.items():
                bus = str(bus)
                if bus in driven:
                    raise TwinSpecError(
                        f"twin spec: {where}: bus {bus!r} is already driven by {driven[bus]}"
                    )
                driven[bus] = f"{entry['name']}.{channel}"
                if bus not in buses:
                    buses.append(bus)

    bench = SimulatedBench(
        topology,
        preset,
        seed=int(spec.get("seed", 0)),
        buses=buses,
        crosspoints=crosspoints,
        contact_resistance_ohm=float(spec.get("contact_resistance_ohm", 1.0)),
        source_resistance_ohm=float(spec.get("source_resistance_ohm", 0.0)),
        realtime=bool(spec.get("realtime", False)),
    )
    read_noise = spec.get("read_noise", "small_signal")
    if read_noise not in ("small_signal", "every_device"):
        raise TwinSpecError(f"twin spec: read_noise must be 'small_signal' or 'every_device', got {read_noise!r}")
    bench.small_signal_noise = read_noise == "small_signal"

    instruments: dict[str, SimInstrument] = {}
    by_resource: dict[str, SimInstrument] = {}
    for i, entry in enumerate(entries):
        on = _MainframeRelays(bench, entry["name"]) if entry["name"] in qualified else bench
        inst = _instrument(entry, f"instruments[{i}] ({entry['name']})", on)
        instruments[entry["name"]] = inst
        by_resource[entry["resource"]] = inst
    lines = _trigger_lines(spec, bench, instruments)
    return Twin(bench=bench, instruments=instruments, by_resource=by_resource, spec=dict(spec),
                trigger_lines=lines)


def _qualified(entries: list[Mapping[str, Any]]) -> set[str]:
    """The mainframes whose channels the bench names "<instrument>:<channel>": all of them when
    more than one matrix is wired (has crosspoints), none when one is."""
    wired = {e["name"] for e in entries
             if issubclass(MODELS[e["model"]], Keithley707B) and e.get("crosspoints") is not None}
    return wired if len(wired) > 1 else set()


class _MainframeRelays:
    """The simulated bench as one mainframe of several sees it: its own channel ids, qualified
    by its name on the way to the shared bench; everything else (clock, physics) is the bench's."""

    def __init__(self, bench: Any, name: str) -> None:
        self._bench = bench
        self._prefix = f"{name}:"
        n = len(self._prefix)
        self.crosspoints = {ch[n:] for ch in bench.crosspoints if ch.startswith(self._prefix)}

    def close(self, channels: list[str]) -> None:
        self._bench.close([self._prefix + c for c in channels])

    def open(self, channels: list[str]) -> None:
        self._bench.open([self._prefix + c for c in channels])

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._bench, attr)


def _trigger_lines(spec: Mapping[str, Any], bench: Any, instruments: Mapping[str, SimInstrument]) -> dict[int, TriggerLine]:
    raw = spec.get("trigger_lines") or {}
    if not isinstance(raw, Mapping):
        raise TwinSpecError(f"twin spec: trigger_lines must map a line number to instrument names, got {raw!r}")
    try:
        lines = build_lines(raw, bench, instruments)
    except (TypeError, ValueError) as exc:
        raise TwinSpecError(f"twin spec: trigger_lines: {exc}") from None
    for line in lines.values():
        for name in line.members:
            inst = instruments[name]
            if not hasattr(inst, "attach_trigger_line"):
                raise TwinSpecError(f"twin spec: trigger_lines: line {line.number}: {name} ({inst.model}) "
                                    "has no simulated trigger lines (the 2600B models do)")
            inst.attach_trigger_line(line)
    return lines


def _instrument(entry: Mapping[str, Any], where: str, bench: Any) -> SimInstrument:
    kwargs: dict[str, Any] = {}
    if issubclass(MODELS[entry["model"]], Keithley707B):
        if entry.get("cards") is not None:  # None: as many as the model holds
            kwargs["cards"] = int(entry["cards"])
        if entry.get("settling_time_s") is not None:
            kwargs["settling_time_s"] = float(entry["settling_time_s"])
    else:
        kwargs["channels"] = dict(entry["channels"])
    limits = entry.get("limits")
    if limits is not None and not isinstance(limits, Mapping):
        raise TwinSpecError(f"twin spec: {where}.limits must be a table, got {limits!r}")
    try:
        return create(entry["model"], entry["name"], bench, limits=limits, **kwargs)
    except ValueError as exc:
        raise TwinSpecError(f"twin spec: {where}: {exc}") from None
