"""Pieces shared by the protocols: pattern choice, voltage encodings, matrix bookkeeping.

Everything here maps between neurons, lines and devices of a :class:`BenchInfo`; nothing
computes or programs a weight.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lab.operations import BenchInfo

from .patterns import DEFAULT_SET, PatternSet, load_patterns


class PatternChoice(BaseModel):
    """Which patterns: glyphs of a shipped set by name, or explicit ±1 vectors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    set: str = Field(DEFAULT_SET, description="pattern set the glyph names come from (a shipped set, e.g. font5x7)")
    names: tuple[str, ...] | None = Field(None,
        description="glyphs of the set to use, e.g. [\"L\", \"T\", \"X\", \"O\"] (give names or vectors)")
    vectors: tuple[tuple[int, ...], ...] | None = Field(None,
        description="explicit ±1 patterns, one list per pattern, one entry per neuron (instead of names)")

    @model_validator(mode="after")
    def _one_source(self) -> "PatternChoice":
        if (self.names is None) == (self.vectors is None):
            raise ValueError("patterns: give either 'names' (glyphs of 'set') or 'vectors', not both or neither")
        if self.vectors is not None:
            if not self.vectors:
                raise ValueError("patterns.vectors is empty")
            n = len(self.vectors[0])
            for k, v in enumerate(self.vectors):
                if len(v) != n:
                    raise ValueError(f"patterns.vectors[{k}] has {len(v)} entries, vectors[0] has {n}")
                if any(x not in (-1, 1) for x in v):
                    raise ValueError(f"patterns.vectors[{k}] has entries other than -1 and +1")
        if self.names is not None:
            if not self.names:
                raise ValueError("patterns.names is empty")
            load_patterns(self.set, self.names)  # names the missing glyph now, not mid-run
        return self

    def load(self) -> tuple[tuple[str, ...], np.ndarray]:
        if self.vectors is not None:
            x = np.array(self.vectors, dtype=float)
            return tuple(f"p{k}" for k in range(len(x))), x
        ps: PatternSet = load_patterns(self.set, self.names)
        return ps.names, ps.patterns.astype(float)

    def for_bench(self, bench: BenchInfo) -> tuple[tuple[str, ...], np.ndarray]:
        names, x = self.load()
        if x.shape[1] != bench.n_neurons:
            raise ValueError(
                f"patterns have {x.shape[1]} pixels but the bench has {bench.n_neurons} neurons"
            )
        return names, x


def glyphs(*names: str, set: str = DEFAULT_SET) -> PatternChoice:
    return PatternChoice(set=set, names=tuple(names))


class CueChoice(BaseModel):
    """Noisy cues: ``per_pattern`` copies of each stored pattern with ``flip_fraction`` of bits flipped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_pattern: int = Field(20, ge=1, description="noisy cues made from each stored pattern")
    flip_fraction: float = Field(0.1, ge=0.0, le=1.0, description="fraction of a cue's bits flipped from its pattern")
    seed: int = Field(0, description="seed of the bit flips")


# ------------------------------------------------------------------ topology helpers


def cell_lines(bench: BenchInfo) -> tuple[dict[int, int], dict[int, int]]:
    """Row line of each neuron i and column line of each neuron j, read off the devices.

    In a film both are the neuron's own contact.
    """
    rows: dict[int, int] = {}
    cols: dict[int, int] = {}
    for (a, b), (i, j) in zip(bench.devices.tolist(), bench.device_cells.tolist()):
        rows.setdefault(i, a)
        cols.setdefault(j, b)
    if bench.topology == "film":
        for i, lines in enumerate(bench.neuron_lines):
            rows[i] = cols[i] = lines[0]
    return rows, cols


def field_terms(bench: BenchInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(output neuron, input neuron, device) of every term of an in-materio multiply.

    A Multiply measures output neuron i with input j at s_j·v, so I_i = v Σ_j F_ij s_j with
    F_ij the summed conductance of the devices carrying current from j into i: in a film
    and a tied crossbar the device(s) between i and j (either orientation, never i with
    itself); in an untied crossbar, whose rows are inputs and columns outputs, the device
    at row j, column i (the diagonal included).
    """
    outs, ins, devs = [], [], []
    untied = bench.topology == "crossbar" and all(len(lines) == 1 for lines in bench.neuron_lines)
    for d, (i, j) in enumerate(bench.device_cells.tolist()):
        if untied:
            outs.append(j)
            ins.append(i)
            devs.append(d)
        elif i != j:
            outs += [i, j]
            ins += [j, i]
            devs += [d, d]
    return np.array(outs, dtype=int), np.array(ins, dtype=int), np.array(devs, dtype=int)


def field_matrix(bench: BenchInfo, values: "np.ndarray | float") -> np.ndarray:
    """F_ij = Σ of per-device ``values`` over the devices feeding input j into output i."""
    outs, ins, devs = field_terms(bench)
    v = np.broadcast_to(np.asarray(values, dtype=float), (bench.n_devices,))
    f = np.zeros((bench.n_neurons, bench.n_neurons))
    np.add.at(f, (outs, ins), v[devs])
    return f


_CELLS: dict[int, tuple] = {}


def _cells_tables(cells: np.ndarray, n: int) -> tuple:
    """A bench's device-cell index tables, built once per bench (a read per epoch of a long
    training would otherwise rebuild them every time): (cells (D, 2), flat
    index of (i, j) and of (j, i) in an n×n matrix, off-diagonal mask, the count matrix when
    every device is read)."""
    hit = _CELLS.get(id(cells))
    if hit is None or hit[0] is not cells:
        if len(_CELLS) > 64:
            _CELLS.clear()
        c = np.asarray(cells, dtype=np.intp).reshape(-1, 2)
        ij, ji = c[:, 0] * n + c[:, 1], c[:, 1] * n + c[:, 0]
        off = c[:, 0] != c[:, 1]
        full = (np.bincount(ij[off], None, n * n) + np.bincount(ji[off], None, n * n)).reshape(n, n)
        hit = _CELLS[id(cells)] = (cells, c, ij, ji, off, full)
    return hit


def symmetric_matrix(bench: BenchInfo, g: np.ndarray) -> np.ndarray:
    """(N, N) matrix of device conductances, symmetrised, NaN on the diagonal and where no device.

    A crossbar has a device at (i, j) and at (j, i); the matrix shows their mean.
    """
    global _SYMMETRIC_LAST
    n = bench.n_neurons
    g = np.asarray(g, dtype=float)
    tables = _cells_tables(bench.device_cells, n)
    # a plan that reads the same conductances again (a pre-flight hands every epoch's read the
    # same result) gets a copy of the last matrix: the key is the bytes, not the object
    key = (g.shape, g.tobytes())
    last = _SYMMETRIC_LAST
    if last is not None and last[0] is tables and last[1] == key:
        return last[2].copy()
    _, _, ij, ji, off, full = tables
    ok = off & np.isfinite(g)
    v = g[ok]
    # at most two devices per cell, one from each pass: their sum is order-free
    total = (np.bincount(ij[ok], v, n * n) + np.bincount(ji[ok], v, n * n)).reshape(n, n)
    if ok.sum() == off.sum():
        count = full
    else:
        count = (np.bincount(ij[ok], None, n * n) + np.bincount(ji[ok], None, n * n)).reshape(n, n)
    with np.errstate(invalid="ignore"):
        m = total / count
    m[count == 0] = np.nan
    np.fill_diagonal(m, np.nan)
    _SYMMETRIC_LAST = (tables, key, m.copy())
    return m


_SYMMETRIC_LAST: tuple | None = None  # (cell tables, (g shape, g bytes), matrix) of the last call


def device_index(bench: BenchInfo) -> dict[tuple[int, int], int]:
    """Device by matrix cell; a film device answers for (i, j) and (j, i)."""
    out: dict[tuple[int, int], int] = {}
    for d, (i, j) in enumerate(bench.device_cells.tolist()):
        out[(i, j)] = d
        if bench.topology == "film":
            out[(j, i)] = d
    return out


def device_between(bench: BenchInfo, a: int, b: int) -> int:
    """The device joining lines a and b (in either order)."""
    dev = bench.devices
    hit = np.flatnonzero(((dev[:, 0] == a) & (dev[:, 1] == b)) | ((dev[:, 0] == b) & (dev[:, 1] == a)))
    if hit.size:
        return int(hit[0])
    raise ValueError(
        f"no device joins lines {bench.line_names[a]} and {bench.line_names[b]}"
    )


def line_pairs(bench: BenchInfo, pairs: "Sequence[tuple[int | str, int | str]] | None") -> list[tuple[int, int]]:
    """Line indices of the devices named by line pairs; ``None`` is the bench's first device.

    The first device joins lines 0 and 1 on a film (C0-C1) and a row to a column on a crossbar
    (R0-K0): a default of lines (0, 1) would be two rows there, which no device joins.
    """
    if pairs is None:
        a, b = bench.devices[0]
        return [(int(a), int(b))]
    out = [(line_index(bench, a), line_index(bench, b)) for a, b in pairs]
    for a, b in out:
        device_between(bench, a, b)
    return out


def line_index(bench: BenchInfo, line: "int | str") -> int:
    if isinstance(line, str):
        if line not in bench.line_names:
            raise ValueError(f"unknown line {line!r}; the bench has {bench.line_names[0]}..{bench.line_names[-1]}")
        return bench.line_names.index(line)
    if not 0 <= line < bench.n_lines:
        raise ValueError(f"line index {line} out of range 0..{bench.n_lines - 1}")
    return int(line)


# ------------------------------------------------------------------ voltage encodings


def pattern_voltages(bench: BenchInfo, s: Sequence[float], v: float, levels: str = "split") -> dict[int, float]:
    """The pattern on the neuron lines: a device between neurons sees (s_i − s_j)·V.

    "split": lines at s_i·V (two levels, ±V). "single": lines of s_i = +1 at 2V, the others
    at 0 V — the same voltage across every device from one source, so no instant exists in
    which only one of two sources is at its level (sources are set one after the other).
    In a film and a tied crossbar only anti-aligned pairs carry current (2V across them).
    """
    s = np.asarray(s, dtype=float)
    if levels == "single":
        return {line: volts for line, volts in bench.neuron_voltages((s + 1.0) * v).items() if volts != 0.0}
    if levels != "split":
        raise ValueError(f"levels must be 'split' or 'single', got {levels!r}")
    return bench.neuron_voltages(s * v)


def half_select(bench: BenchInfo, a: int, b: int, v: float) -> dict[int, float]:
    """V/2 scheme for the device between lines a and b: a at +V/2, b at −V/2, others 0 V.

    The selected device sees V; half-selected ones see at most V/2, below threshold when
    V < 2·V_threshold.
    """
    return {a: v / 2.0, b: -v / 2.0}


def self_free_groups(errors_or_all: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Split neurons in two random halves; pulsing one half's columns with its own rows at 0 V
    never touches a self-coupling (row i, column i), and reaches each other weight half the time."""
    idx = np.flatnonzero(errors_or_all)
    half = rng.random(idx.size) < 0.5
    return [g for g in (idx[half], idx[~half]) if g.size]


def outer_product_phases(
    bench: BenchInfo, s_row: Sequence[float], s_col: Sequence[float], v: float
) -> list[tuple[dict[int, float], int]]:
    """Crossbar V/2 phases that put +V on every device with s_row_i·s_col_j = +1 and −V on the others.

    Four phases (row sign × column sign); in each, selected rows sit at ±V/2 and selected
    columns at ∓V/2 while all other lines are at 0 V, so no unselected device sees more
    than V/2. Returns (line voltages, sign of the selected devices) per phase, skipping
    empty phases.
    """
    if bench.topology != "crossbar":
        raise ValueError("outer-product (V/2) programming needs a crossbar: film devices share their contacts")
    rows, cols = cell_lines(bench)
    sr = np.asarray(s_row, dtype=float)
    sc = np.asarray(s_col, dtype=float)
    phases = []
    for r_sign in (1.0, -1.0):
        for c_sign in (1.0, -1.0):
            sel_r = [rows[i] for i in range(len(sr)) if sr[i] == r_sign]
            sel_c = [cols[j] for j in range(len(sc)) if sc[j] == c_sign]
            if not sel_r or not sel_c:
                continue
            polarity = r_sign * c_sign  # +V where the product is +1
            volts = {line: polarity * v / 2.0 for line in sel_r}
            volts.update({line: -polarity * v / 2.0 for line in sel_c})
            phases.append((volts, int(polarity)))
    return phases


def check_voltage(bench: BenchInfo, what: str, volts: Mapping[int, float] | float) -> None:
    """Refuse, before anything is touched, a plan that exceeds the bench's |V| limit."""
    values = volts.values() if isinstance(volts, Mapping) else [volts]
    worst = max((abs(v) for v in values), default=0.0)
    if worst > bench.v_max + 1e-12:
        raise ValueError(f"{what}: {worst:g} V exceeds the bench limit v_max = {bench.v_max:g} V")
