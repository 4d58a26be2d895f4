"""The bench file: a TOML description of one bench, validated whole before anything opens.

Sections (see ``data/benches/*.toml`` for complete files)::

    name = "sim-film35"            simulated = true: the bench exists only as a twin
    [[instruments]]                name, model (lab.models.MODELS), resource, visa_library
                                   (default "@py"), timeout_ms, read/write_termination;
                                   SMUs: channels (default: all); matrix: cards, settling_time_s
    [buses.<bus>]                  instrument, channel, role = drive|sense|guard, compliance_A
    [array]                        topology = film|crossbar, n, tied, line_names, g_nominal_S
    [wiring]                       matrix = <instrument>, or [<instrument>, ...]: several mainframes
                                   joined on shared rows; contact_resistance_ohm (calibrated bus-to-line
                                   series resistance; reads correct for its voltage drops)
    [wiring.rows]                  <bus> = "A".."H"          (one matrix row per bus, on every mainframe)
    [wiring.lines]                 <line> = [slot, column]   (crosspoint "<slot><row><column:02>"), or on
                                   several mainframes [matrix, slot, column] ("<matrix>:<slot><row><column:02>")
    [limits]                       v_max_V, power_max_W, g_max_expected_S, pulse_width_max_s,
                                   v_read_max_V, v_read_default_V, v_threshold_V, forbidden_lines
    [simulation]                   preset, seed, contact_resistance_ohm, source_resistance_ohm, realtime,
                                   read_noise
    [timing]                       nplc, line_frequency_Hz, command_latency_s, measure_overhead_s

Types are checked field by field (pydantic, strict: ``simulated = "no"`` or ``n = true`` is an
error, and every number finite: ``power_max_W = inf`` is no limit), then the file is checked
for consistency (every line wired, no crosspoint used twice, every bus backed by an existing
channel, rows/columns/slots the matrix has, limits within what the models can do). Every
error names its field. A bench file is read only from a regular file of at most
MAX_BENCH_FILE_BYTES; ``simulation.preset`` is a shipped preset's name or a file of the
preset folder, never an arbitrary path.
"""
from __future__ import annotations

import math
import re
import stat
import tomllib
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
from pydantic import (
    BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, StrictFloat, StrictInt, ValidationError, field_validator,
    model_validator,
)

from lab.errors import ConfigError
from lab.models import MODELS, capability
from lab.wiring import wiring_mainframes, wiring_problems
from lab.layout import Crosspoints, Layout
from sim_backend.presets import PRESETS, DevicePreset, preset_names

Role = Literal["drive", "sense", "guard"]
_NAME = r"^[A-Za-z_][A-Za-z0-9_\-]*$"


# Types are strict (``simulated = "no"`` or ``n = true`` is an error, not a guess) and every
# number finite: an infinite limit is no limit (``power_max_W = inf`` let anything through).
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# The lowest read voltage a bench may use: the supported SMUs source their smallest range
# (200 mV; 20 mV on a 2450) with ~5 µV resolution but a ±200-400 µV offset accuracy, so below
# ~1 mV a read is mostly offset error (≥ 20 %) and its conductance meaningless.
V_READ_MIN_V = 1e-3
MAX_BENCH_FILE_BYTES = 1_000_000  # the largest shipped bench file is ~10 kB


class InstrumentConfig(_Strict):
    name: str = Field(pattern=_NAME)
    model: str
    resource: str = Field(min_length=1)
    visa_library: str | None = None  # None = the bench default ("@py")
    timeout_ms: StrictInt = Field(5000, gt=0, le=600_000)
    read_termination: str = "\n"
    write_termination: str = "\n"
    channels: tuple[str, ...] | None = None  # SMU: channels in use (default: all of the model)
    cards: StrictInt | None = None  # matrix: installed cards, slots 1..cards
    settling_time_s: StrictFloat | None = Field(None, ge=0.0, le=1.0)  # matrix: relay settling

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in MODELS:
            raise ValueError(f"unknown model {v!r}; known: {', '.join(sorted(MODELS))}")
        return v

    @model_validator(mode="after")
    def _fits_model(self) -> "InstrumentConfig":
        cap = capability(self.model)
        if cap.kind == "smu":
            if self.cards is not None or self.settling_time_s is not None:
                raise ValueError(f"cards/settling_time_s are for switch matrices, not the SMU {self.model}")
            bad = [c for c in self.channels or () if c not in cap.channels]
            if bad:
                raise ValueError(f"channels {bad} do not exist on {self.model} (it has {list(cap.channels)})")
        else:
            if self.channels is not None:
                raise ValueError(f"channels are for SMUs, not the matrix {self.model}")
            if self.cards is None:
                raise ValueError(f"cards: required for the matrix {self.model} (1..{cap.max_cards})")
            if not 1 <= self.cards <= cap.max_cards:
                raise ValueError(f"cards: {self.model} holds 1..{cap.max_cards} cards, not {self.cards}")
        return self

    @property
    def kind(self) -> str:
        return capability(self.model).kind

    def channel_ids(self) -> tuple[str, ...]:
        return self.channels if self.channels is not None else capability(self.model).channels


class BusConfig(_Strict):
    instrument: str
    channel: str
    role: Role
    compliance_A: StrictFloat = Field(gt=0.0)


# The largest arrays a bench file may describe. A crossbar's n is its rows (2n lines, n² devices):
# 256 is 512 lines, 8 fully wired 707B mainframes. A film's n is its contacts (n lines, n(n-1)/2
# pairs on one meshed film): the film solver and a contact grid stay at one matrix's size.
N_MAX = {"crossbar": 256, "film": 96}


class ArrayConfig(_Strict):
    topology: Literal["film", "crossbar"]
    n: StrictInt = Field(ge=2, le=max(N_MAX.values()))
    tied: StrictBool = False  # crossbar: row i and column i belong to neuron i
    line_names: tuple[str, ...] | None = None  # default: C0.. (film), R0.., K0.. (crossbar)
    g_nominal_S: StrictFloat | None = Field(None, gt=0.0)  # typical device conductance, for estimates

    @field_validator("n")
    @classmethod
    def _n_for_topology(cls, v: int, info: Any) -> int:
        topology = info.data.get("topology")
        if topology in N_MAX and v > N_MAX[topology]:
            raise ValueError(f"a {topology} has at most n={N_MAX[topology]}, got {v}")
        return v

    @model_validator(mode="after")
    def _check(self) -> "ArrayConfig":
        if self.tied and self.topology == "film":
            raise ValueError("tied: only a crossbar has rows and columns to tie")
        if self.line_names is not None:
            if len(self.line_names) != self.n_lines:
                raise ValueError(f"line_names: {self.topology} of n={self.n} has {self.n_lines} lines, "
                                 f"got {len(self.line_names)} names")
            if len(set(self.line_names)) != len(self.line_names):
                raise ValueError("line_names: names repeat")
        return self

    @property
    def n_lines(self) -> int:
        return self.n if self.topology == "film" else 2 * self.n

    def lines(self) -> tuple[str, ...]:
        if self.line_names is not None:
            return self.line_names
        if self.topology == "film":
            return tuple(f"C{i}" for i in range(self.n))
        return tuple(f"R{i}" for i in range(self.n)) + tuple(f"K{i}" for i in range(self.n))

    def devices(self) -> np.ndarray:
        """(D, 2) read-only int32 line indices per device, in the simulator's order."""
        n = self.n
        if self.topology == "film":
            a, b = np.triu_indices(n, 1)
            d = np.stack([a, b], axis=1).astype(np.int32)
        else:
            r, c = np.divmod(np.arange(n * n, dtype=np.int32), np.int32(n))
            d = np.stack([r, n + c], axis=1).astype(np.int32)
        d.setflags(write=False)
        return d

    def device_cells(self) -> np.ndarray:
        """(D, 2) read-only int32 (i, j) matrix cell per device; a film's are its lines."""
        d = self.devices()
        if self.topology == "film":
            return d
        cells = np.stack([d[:, 0], d[:, 1] - np.int32(self.n)], axis=1).astype(np.int32)
        cells.setflags(write=False)
        return cells

    def neuron_lines(self) -> tuple[tuple[int, ...], ...]:
        if self.topology == "crossbar" and self.tied:
            return tuple((i, self.n + i) for i in range(self.n))
        return tuple((i,) for i in range(self.n))


class WiringConfig(_Strict):
    # The switch-matrix instrument, or a list of mainframes joined on shared rows: row A..H of
    # every listed mainframe is cabled to the same bus (teed triax), and each mainframe's
    # columns go to different lines. A line then names its mainframe: [matrix, slot, column].
    matrix: str | tuple[str, ...]
    rows: dict[str, str]  # bus -> matrix row letter (the same row on every mainframe)
    # line -> (slot, column) on one matrix; (matrix, slot, column) on several
    lines: dict[str, tuple[StrictInt, StrictInt] | tuple[str, StrictInt, StrictInt]]
    # Series resistance between a bus and a line it joins (relay contact + cabling + contact pad),
    # as calibrated on this bench. The line driving a read carries the whole row current, so it
    # sits I·R below its source; reads measure that current and correct for it. 0 = no correction.
    contact_resistance_ohm: StrictFloat = Field(0.0, ge=0.0, le=1000.0)
    # Digital-I/O trigger lines joined by a cable: line number -> the source-meters on it. The
    # sources of a multi-bus pulse then start and stop together (one trigger edge) instead of
    # one command latency apart. Only models with trigger lines (2600B) can be listed.
    trigger_lines: dict[int, list[str]] = Field(default_factory=dict)

    @field_validator("rows")
    @classmethod
    def _letters(cls, v: dict[str, str]) -> dict[str, str]:
        out = {}
        for bus, letter in v.items():
            if len(letter) != 1 or not letter.isalpha():
                raise ValueError(f"{bus}: row must be one letter, got {letter!r}")
            out[bus] = letter.upper()
        return out


class LimitsConfig(_Strict):
    v_max_V: StrictFloat = Field(gt=0.0)  # max |V| on any line
    power_max_W: StrictFloat = Field(gt=0.0)  # max power in one device (estimated from g_max_expected_S)
    g_max_expected_S: StrictFloat = Field(gt=0.0)  # the largest conductance a device may have
    pulse_width_max_s: StrictFloat = Field(gt=0.0)  # longest time any device may see more than v_read_max_V
    v_read_max_V: StrictFloat = Field(ge=V_READ_MIN_V)  # reads never put more than this across a device
    v_read_default_V: StrictFloat | None = Field(None, ge=V_READ_MIN_V)  # default: half the ceiling
    v_threshold_V: StrictFloat | None = Field(None, gt=0.0)  # device switching threshold, if known
    forbidden_lines: tuple[str, ...] = ()  # never connected to any bus

    @model_validator(mode="after")
    def _order(self) -> "LimitsConfig":
        if self.v_read_max_V > self.v_max_V:
            raise ValueError(f"v_read_max_V={self.v_read_max_V} exceeds v_max_V={self.v_max_V}")
        if self.v_threshold_V is not None and self.v_read_max_V >= self.v_threshold_V:
            raise ValueError(f"v_read_max_V={self.v_read_max_V} must stay below v_threshold_V={self.v_threshold_V}")
        if self.v_read_default_V is not None and self.v_read_default_V > self.v_read_max_V:
            raise ValueError(f"v_read_default_V={self.v_read_default_V} exceeds v_read_max_V={self.v_read_max_V}")
        return self

    @property
    def v_read(self) -> float:
        return self.v_read_default_V if self.v_read_default_V is not None else 0.5 * self.v_read_max_V


class SimulationConfig(_Strict):
    preset: str = "film-amr"  # a shipped preset's name, or a path to a .toml file in the preset folder
    preset_overrides: dict[str, Any] = Field(default_factory=dict)  # preset fields to replace (sweeps)
    seed: StrictInt = Field(0, ge=0)  # numpy's generators take non-negative seeds
    contact_resistance_ohm: StrictFloat = Field(1.0, ge=0.0)
    source_resistance_ohm: StrictFloat = Field(0.0, ge=0.0)
    realtime: StrictBool = False
    # how a dry run's reading carries the read noise: "small_signal" (one Gaussian per reading,
    # σ summed over every device by an adjoint solve per relay configuration) or "every_device"
    # (every conductance drawn and the circuit solved per reading: the same distribution to
    # O(σ²), slower; the random stream hopbench had before it carried noise as a small signal)
    read_noise: Literal["small_signal", "every_device"] = "small_signal"

    @field_validator("preset")
    @classmethod
    def _preset_by_name(cls, v: str) -> str:
        return check_preset(v)

    @field_validator("preset_overrides")
    @classmethod
    def _overrides_typed(cls, v: dict[str, Any]) -> dict[str, Any]:
        """Preset values as strict as the bench file's own: finite numbers, no flag for a number
        (the preset's own check would take inf, and true as 1.0)."""
        for key, value in v.items():
            info = DevicePreset.model_fields.get(key)
            numeric = info is not None and info.annotation in (float, int)
            if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{key} = {value!r}: a number expected")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{key} = {value}: not a finite number")
        return v


class TimingConfig(_Strict):
    nplc: StrictFloat = Field(1.0, ge=0.001, le=25.0)
    line_frequency_Hz: Literal[50, 60] = 50
    command_latency_s: StrictFloat = Field(0.001, ge=0.0, le=1.0)
    measure_overhead_s: StrictFloat = Field(0.0, ge=0.0, le=1.0)


class BenchConfig(_Strict):
    name: str = "bench"
    description: str = ""
    simulated: StrictBool = False  # true: this bench exists only as a simulated twin
    instruments: tuple[InstrumentConfig, ...]
    buses: dict[str, BusConfig]
    array: ArrayConfig
    wiring: WiringConfig
    limits: LimitsConfig
    simulation: SimulationConfig = SimulationConfig()
    timing: TimingConfig = TimingConfig()

    _text: str = PrivateAttr(default="")
    _source: str = PrivateAttr(default="<memory>")

    @model_validator(mode="after")
    def _consistent(self) -> "BenchConfig":
        problems = _consistency(self)
        if problems:
            raise ValueError("\n".join(f"{f}: {m}" for f, m in problems))
        return self

    # -------------------------------------------------------------- derived
    @property
    def text(self) -> str:
        return self._text

    @property
    def source(self) -> str:
        return self._source

    def instrument(self, name: str) -> InstrumentConfig:
        for inst in self.instruments:
            if inst.name == name:
                return inst
        raise KeyError(name)

    @property
    def multi_matrix(self) -> bool:
        """The wiring lists several mainframes (crosspoints are then named "<matrix>:1A01")."""
        return not isinstance(self.wiring.matrix, str)

    @property
    def matrix_names(self) -> tuple[str, ...]:
        m = self.wiring.matrix
        return (m,) if isinstance(m, str) else tuple(m)

    @property
    def matrices(self) -> tuple[InstrumentConfig, ...]:
        """Every switch-matrix mainframe of the wiring, in the order the file lists them."""
        return tuple(self.instrument(n) for n in self.matrix_names)

    @property
    def matrix(self) -> InstrumentConfig:
        """The one switch matrix (a bench of several has :attr:`matrices` instead)."""
        if self.multi_matrix:
            raise ConfigError(self.source, [("wiring.matrix", f"the wiring joins {len(self.matrix_names)} "
                                             f"matrices ({', '.join(self.matrix_names)}): code asking for "
                                             "the one matrix must ask for BenchConfig.matrices")])
        return self.instrument(self.wiring.matrix)

    def sync_line(self, buses: Iterable[str]) -> int | None:
        """A trigger line joining every instrument that drives ``buses``, if the bench has one."""
        owners = {self.buses[b].instrument for b in buses}
        for line, members in sorted(self.wiring.trigger_lines.items()):
            if owners <= set(members):
                return line
        return None

    @cached_property
    def layout(self) -> Layout:
        lines = self.array.lines()
        index = {n: i for i, n in enumerate(lines)}
        spots = {}  # line index -> (what precedes the row letter, column)
        for line, spot in self.wiring.lines.items():
            if len(spot) == 3:  # several mainframes: "<matrix>:<slot><row><column>"
                spots[index[line]] = (f"{spot[0]}:{spot[1]}", int(spot[2]))
            else:
                spots[index[line]] = (f"{spot[0]}", int(spot[1]))
        xps = Crosspoints(self.wiring.rows, spots)
        return Layout(
            lines=lines,
            devices=self.array.devices(),
            device_cells=self.array.device_cells(),
            neuron_lines=self.array.neuron_lines(),
            buses=tuple(self.buses),
            roles={b: c.role for b, c in self.buses.items()},
            crosspoint=xps,
            forbidden=frozenset(index[n] for n in self.limits.forbidden_lines),
        )

    @property
    def g_nominal(self) -> float:
        return self.array.g_nominal_S or 0.5 * self.limits.g_max_expected_S


def check_preset(v: str) -> str:
    """A preset is a shipped name or a file of the preset folder: a bench file must not make
    the program read (and echo in errors) an arbitrary file such as /etc/shadow or /dev/zero."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", v) and not v.endswith(".toml"):
        if v not in preset_names():
            raise ValueError(f"unknown device preset {v!r}; shipped presets: {', '.join(preset_names())}")
        return v
    folder = PRESETS.resolve()
    try:
        path = Path(v).resolve()
    except (OSError, RuntimeError, ValueError):
        path = None
    if path is None or path.suffix != ".toml" or path.parent != folder or not path.is_file():
        raise ValueError(f"{v!r}: a preset is a shipped preset's name ({', '.join(preset_names())}) or a .toml "
                         f"file in the preset folder {folder}")
    return v


def _consistency(cfg: BenchConfig) -> list[tuple[str, str]]:
    """Cross-field checks; each problem is (field path, message)."""
    p: list[tuple[str, str]] = []
    insts = {}
    for k, inst in enumerate(cfg.instruments):
        if inst.name in insts:
            p.append((f"instruments[{k}].name", f"instrument name {inst.name!r} used twice"))
        insts[inst.name] = inst
    resources = [i.resource for i in cfg.instruments]
    for r in {r for r in resources if resources.count(r) > 1}:
        p.append(("instruments.resource", f"resource {r!r} given to more than one instrument"))
    p += _bus_problems(cfg, insts)
    mainframes, bad = wiring_mainframes(cfg, insts)
    if bad:
        return p + bad
    p += wiring_problems(cfg, mainframes)
    names = cfg.array.lines()
    for k, line in enumerate(cfg.limits.forbidden_lines):
        if line not in names:
            p.append((f"limits.forbidden_lines[{k}]", f"no line named {line!r}"))
    return p


def _bus_problems(cfg: BenchConfig, insts: dict[str, Any]) -> list[tuple[str, str]]:
    """Every bus backed by its own channel of an existing source-meter that can drive it."""
    p: list[tuple[str, str]] = []
    used: dict[tuple[str, str], str] = {}
    for bus, b in cfg.buses.items():
        f = f"buses.{bus}"
        inst = insts.get(b.instrument)
        if inst is None:
            p.append((f"{f}.instrument", f"no instrument named {b.instrument!r} (have {sorted(insts)})"))
            continue
        cap = capability(inst.model)
        if cap.kind != "smu":
            p.append((f"{f}.instrument", f"{b.instrument!r} is a {inst.model}, not a source-meter"))
            continue
        if b.channel not in inst.channel_ids():
            p.append((f"{f}.channel", f"{b.instrument} ({inst.model}) has no channel {b.channel!r} "
                                      f"(has {list(inst.channel_ids())})"))
        key = (b.instrument, b.channel)
        if key in used:
            p.append((f"{f}.channel", f"{b.instrument}:{b.channel} already backs bus {used[key]!r}"))
        used[key] = bus
        if b.compliance_A > cap.i_max:
            p.append((f"{f}.compliance_A", f"{b.compliance_A} A exceeds what a {inst.model} can source "
                                           f"({cap.i_max} A)"))
        if cfg.limits.v_max_V > cap.v_max:
            p.append(("limits.v_max_V", f"{cfg.limits.v_max_V} V exceeds what {b.instrument} ({inst.model}, "
                                        f"bus {bus}) can output ({cap.v_max} V)"))
    roles = [b.role for b in cfg.buses.values()]
    for role in ("drive", "sense", "guard"):
        if role not in roles:
            p.append(("buses", f"no bus with role {role!r}: a bench needs at least one drive, sense and guard bus"))
    return p


# ------------------------------------------------------------------ loading


def _field_path(loc: tuple[Any, ...], data: Any) -> str:
    """'instruments[1](smu2).timeout_ms' instead of 'instruments.1.timeout_ms'."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            try:
                node = node[item]
                if isinstance(node, dict) and "name" in node:
                    label += f"({node['name']})"
            except (IndexError, KeyError, TypeError):
                node = None
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
            try:
                node = node[item]
            except (KeyError, TypeError, IndexError):
                node = None
    return "".join(parts) or "<file>"


def parse_bench(data: dict[str, Any], source: str = "<memory>", text: str = "") -> BenchConfig:
    try:
        cfg = BenchConfig.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if not err["loc"]:
                for line in msg.splitlines():  # consistency problems carry their own field
                    field, _, m = line.partition(": ")
                    problems.append((field, m))
                continue
            problems.append((_field_path(tuple(err["loc"]), data), msg))
        raise ConfigError(source, problems) from None
    cfg._text = text
    cfg._source = source
    return cfg


def load_bench(path_or_name: str | Path) -> BenchConfig:
    """A bench file by path, or by the name of a shipped bench (``sim-film35``)."""
    path = Path(path_or_name)
    if not path.exists():
        shipped = SHIPPED_BENCHES / f"{path.stem}.toml"
        if path.suffix in ("", ".toml") and shipped.exists() and len(path.parts) == 1:
            path = shipped
        else:
            raise ConfigError(str(path), [("<file>", "no such bench file")])
    text = read_bench_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [("<toml>", str(exc))]) from None
    return parse_bench(data, str(path), text)


def read_bench_text(path: Path) -> str:
    """The text of a bench file: a regular file (not /dev/zero, a fifo or a folder) of at most
    MAX_BENCH_FILE_BYTES, in UTF-8."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(str(path), [("<file>", f"cannot read: {exc.strerror or exc}")]) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(str(path), [("<file>", "not a regular file (a bench file is a TOML text file)")])
    if st.st_size > MAX_BENCH_FILE_BYTES:
        raise ConfigError(str(path), [("<file>", f"{st.st_size} bytes: larger than a bench file can be "
                                                 f"({MAX_BENCH_FILE_BYTES} bytes)")])
    try:
        with open(path, "rb") as fh:  # read no more than the limit, whatever the file does meanwhile
            raw = fh.read(MAX_BENCH_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(path), [("<file>", f"cannot read: {exc.strerror or exc}")]) from None
    if len(raw) > MAX_BENCH_FILE_BYTES:
        raise ConfigError(str(path), [("<file>", f"larger than a bench file can be ({MAX_BENCH_FILE_BYTES} bytes)")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [("<file>", f"not UTF-8 text (byte {exc.start})")]) from None


def loads_bench(text: str, source: str = "<string>") -> BenchConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [("<toml>", str(exc))]) from None
    return parse_bench(data, source, text)


DEFAULT_BENCH = "sim-film35"
# Shipped bench files and sweeps: lab/benches and lab/sweeps in the wheel (links to the
# repository's data/benches and data/sweeps). A package's shipped data lives in it and is
# found with importlib.resources, so an installed wheel and a source checkout agree.
SHIPPED_BENCHES = Path(str(files("lab") / "benches"))
