"""Operations: the messages a protocol's ``steps()`` generator yields to the runner.

A protocol never touches an instrument. It yields these immutable objects; the runner
checks each against the bench limits, executes it through the crossbar layer, and sends
the result back into the generator (``result = yield op``). Lines and neurons are
indices into :class:`BenchInfo`'s ``line_names`` and ``neuron_lines``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal, Mapping

import numpy as np

Scheme = Literal["guarded", "floating"]
Others = Literal["ground", "float"]


def _frozen_map(m: Mapping[int, float]) -> tuple[tuple[int, float], ...]:
    return tuple(sorted((int(k), float(v)) for k, v in dict(m).items()))


def index_pairs(value: Any, what: str) -> np.ndarray:
    """A (D, 2) read-only int32 table of index pairs; an array already so is kept, not copied.

    Tuples of 2-tuples of Python ints cost ~64 B per device against 8 here, and the bench
    layer's tables are shared (views of :class:`lab.layout.Layout`'s) rather than copied.
    """
    if isinstance(value, np.ndarray) and value.dtype == np.int32 and value.ndim == 2 and value.shape[1] == 2:
        if not value.flags.writeable:
            return value
        out = value.view()  # read-only through this view; the caller's own array is left alone
    else:
        a = np.asarray(value)
        if a.size == 0:
            a = a.reshape(0, 2)
        if a.ndim != 2 or a.shape[1] != 2:
            raise ValueError(f"{what}: expected (index a, index b) pairs, got an array of shape {a.shape}")
        if a.dtype.kind not in "iu":
            if a.dtype.kind != "f" or not np.array_equal(a, np.round(a)):
                raise ValueError(f"{what}: indices must be integers, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() > np.iinfo(np.int32).max):
            raise ValueError(f"{what}: indices must lie in 0..{np.iinfo(np.int32).max}")
        out = a.astype(np.int32)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class BenchInfo:
    """What a protocol may know of the bench: topology, neurons and limits, no models.

    ``devices`` and ``device_cells`` are read-only (D, 2) int32 arrays (tuples of pairs
    are accepted and converted). Equality compares every field by value; a BenchInfo is
    not hashable (its tables are arrays): key a cache by ``id``.
    """

    line_names: tuple[str, ...]
    neuron_lines: tuple[tuple[int, ...], ...]  # the line(s) each neuron owns
    devices: np.ndarray  # (D, 2) int32 (line_a, line_b) per device
    device_cells: np.ndarray  # (D, 2) int32 (i, j) cell of the N×N matrix per device
    topology: str  # "film" or "crossbar"
    v_max: float  # V, max |V| on any line
    v_read_max: float  # V, read ceiling (below the switching threshold)
    max_pulse_width_s: float
    default_v_read: float  # V
    simulated: bool = False

    def __post_init__(self) -> None:
        devices = index_pairs(self.devices, "BenchInfo.devices")
        cells = devices if self.device_cells is self.devices else index_pairs(self.device_cells, "BenchInfo.device_cells")
        if cells.shape != devices.shape:
            raise ValueError(f"BenchInfo.device_cells: {len(cells)} cells for {len(devices)} devices")
        object.__setattr__(self, "devices", devices)
        object.__setattr__(self, "device_cells", cells)

    _SCALARS = ("line_names", "neuron_lines", "topology", "v_max", "v_read_max", "max_pulse_width_s",
                "default_v_read", "simulated")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BenchInfo):
            return NotImplemented
        return (all(getattr(self, f) == getattr(other, f) for f in self._SCALARS)
                and np.array_equal(self.devices, other.devices)
                and np.array_equal(self.device_cells, other.device_cells))

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        # through __init__, so an unpickled copy (a Dask worker's) has read-only tables again
        return (BenchInfo, tuple(getattr(self, f.name) for f in fields(self)))

    @property
    def n_lines(self) -> int:
        return len(self.line_names)

    @property
    def n_neurons(self) -> int:
        return len(self.neuron_lines)

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    def neuron_voltages(self, values: "np.ndarray | list[float]") -> dict[int, float]:
        """Line voltages that put ``values[i]`` on every line of neuron i."""
        out: dict[int, float] = {}
        for i, lines in enumerate(self.neuron_lines):
            for line in lines:
                out[line] = float(values[i])
        return out


class Operation:
    """Base of all operations. ``kind`` names it in logs and in the archive."""

    kind: str = "operation"
    state_changing: bool = False  # never retried blindly


@dataclass(frozen=True)
class Apply(Operation):
    """Hold ``line_voltages`` (V, by line index) for ``duration_s``, then return to 0 V.

    Lines not listed are held at 0 V (``others="ground"``) or left floating.
    """

    line_voltages: tuple[tuple[int, float], ...]
    duration_s: float
    others: Others = "ground"
    kind = "apply"
    state_changing = True

    @classmethod
    def of(cls, line_voltages: Mapping[int, float], duration_s: float, others: Others = "ground") -> "Apply":
        return cls(_frozen_map(line_voltages), float(duration_s), others)

    def voltages(self) -> dict[int, float]:
        return dict(self.line_voltages)


@dataclass(frozen=True)
class Pulse(Operation):
    """A train of ``count`` pulses of ``width_s`` at ``line_voltages``, one every ``period_s``.

    Between pulses every line is at 0 V. ``period_s`` None means back to back
    (period = 2 × width).
    """

    line_voltages: tuple[tuple[int, float], ...]
    width_s: float
    count: int = 1
    period_s: float | None = None
    others: Others = "ground"
    kind = "pulse"
    state_changing = True

    @classmethod
    def of(
        cls,
        line_voltages: Mapping[int, float],
        width_s: float,
        count: int = 1,
        period_s: float | None = None,
        others: Others = "ground",
    ) -> "Pulse":
        return cls(_frozen_map(line_voltages), float(width_s), int(count), period_s, others)

    def voltages(self) -> dict[int, float]:
        return dict(self.line_voltages)

    @property
    def period(self) -> float:
        return self.period_s if self.period_s is not None else 2.0 * self.width_s


@dataclass(frozen=True)
class ReadPair(Operation):
    """Conductance of the device between lines ``a`` and ``b``."""

    a: int
    b: int
    v_read: float | None = None  # None = the bench's default read voltage
    repeats: int = 1
    scheme: Scheme = "guarded"
    kind = "read_pair"


@dataclass(frozen=True)
class ReadMatrix(Operation):
    """Conductance of every device (or of ``devices``, by device index)."""

    devices: tuple[int, ...] | None = None
    v_read: float | None = None
    repeats: int = 1
    scheme: Scheme = "guarded"
    kind = "read_matrix"


@dataclass(frozen=True)
class Multiply(Operation):
    """In-materio matrix-vector product: neurons at ``v_read·pattern``, measure each neuron.

    Each measured neuron is held at 0 V (virtual ground) while every other neuron sits
    at ±v_read, so its current is ``v_read · Σ_j G_ij s_j``.
    """

    pattern: tuple[int, ...]  # ±1 per neuron
    neurons: tuple[int, ...] | None = None  # which neurons to measure; None = all
    v_read: float | None = None
    kind = "multiply"


@dataclass(frozen=True)
class Wait(Operation):
    seconds: float
    kind = "wait"


@dataclass(frozen=True)
class Checkpoint(Operation):
    """A safe point: the archive flushes, and ``state`` is what a resume restarts from."""

    state: Mapping[str, Any] = field(default_factory=dict)
    kind = "checkpoint"


@dataclass(frozen=True)
class Note(Operation):
    text: str
    kind = "note"


@dataclass(frozen=True)
class Record(Operation):
    """Protocol-level results to archive (recall traces, accuracies ...), nothing sent."""

    stream: str
    values: Mapping[str, Any]
    kind = "record"


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class ApplyResult:
    line_voltages: np.ndarray  # (n_lines,) V actually set; NaN for floating lines
    duration_s: float  # total time at level (width × count for pulses)
    bus_currents: Mapping[str, float]  # A, measured once while at level (may be empty)
    # (t s from the operation's start, bus, V) at each level change, as the commands took
    # effect (a command's level holds from the end of its latency); buses not listed stay at 0 V
    timeline: tuple[tuple[float, str, float], ...] = ()


@dataclass(frozen=True)
class PairResult:
    g: float  # S
    g_std: float  # S, standard error of the mean (NaN for one read: its scatter is unknown)
    current: float  # A, mean measured current
    v_read: float


@dataclass(frozen=True)
class MatrixResult:
    g: np.ndarray  # (n_devices,) S, NaN where not read
    g_std: np.ndarray  # (n_devices,) S
    matrix: np.ndarray  # (n_neurons, n_neurons) S by device cell; NaN where no device
    matrix_std: np.ndarray
    v_read: float


@dataclass(frozen=True)
class MultiplyResult:
    currents: np.ndarray  # (n_neurons,) A; NaN for neurons not measured
    pattern: np.ndarray  # (n_neurons,) ±1
    v_read: float


ALL_OPERATIONS = (Apply, Pulse, ReadPair, ReadMatrix, Multiply, Wait, Checkpoint, Note, Record)
