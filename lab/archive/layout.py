"""The archive's layout, declared once: every table of rows, its fields, units and NeXus place.

A *table* is a set of datasets appended together, one row each per event (a matrix read,
a pulse train, a record ...); its committed row count is one field of ``/entry/committed``.
Every table has a compound log row in ``/entry/log/<name>`` and may have array
*columns* (an NN matrix, a D-vector) that live in an NXdata group so NeXus viewers plot
them. The writer creates, buffers, commits and truncates, and the reader reads, by walking
:data:`TABLES`; adding a table is one entry there.

Layout (version 2; N neurons, D devices, L lines, k = rows so far; units in @units)::

    / @NX_class=NXroot @default=entry @hopbench_layout_version=2
    /entry  NXentry @default=data
        title run_id program_name(@version @git_revision) start_time
        end_time status error          fixed-size, overwritten at finish
        committed                      compound (1,): committed rows per table (the truth)
        instrument/  NXinstrument      bench_text bench_parsed(JSON) simulated sim_preset(JSON)
                                       host v_max v_read_max default_v_read max_pulse_width
        sample/      NXsample          topology n_neurons n_devices n_lines line_names
                                       neuron_lines(JSON) device_lines(D,2) device_cells(D,2)
        protocol/    NXparameters      name parameters(JSON) seeds(JSON)
        data/        NXdata            conductance(k,N,N) conductance_errors(k,N,N) t_bench(k) row col
        devices/     NXdata            g(k,D) g_errors(k,D) truth(k,D) t_bench(k, link) device
        multiply/    NXdata            currents(k,N) pattern(k,N) t_bench(k) neuron
        apply/       NXdata            line_voltages(k,L) t_bench(k) line
        log/         NXcollection      operations reads pairs multiplies applies records
                                       record_values checkpoints resumes (compound rows)
                                       json (UTF-8 bytes; rows point in by json_offset/length)

Files written before ``RunInfo.extra`` was dropped also hold ``protocol/extra`` (always
``{}``); readers ignore it.

Version 1 differs only in ``/entry/committed``: a compound *scalar*, which NeXus readers
(nexusformat) refuse to load; version 2 stores the same row as a one-element array. Both
are read (:func:`read_committed`) and appended to.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

if TYPE_CHECKING:
    import h5py

LAYOUT_VERSION = 2
APPENDABLE_VERSIONS = (1, 2)  # layouts the writer may resume into (they differ in `committed`'s shape only)
LIBVER = ("v110", "v110")
STATUSES = ("running", "complete", "aborted", "failed")
ERROR_BYTES = 8192

_I8, _I4, _F8 = "<i8", "<i4", "<f8"
T_WALL_UNITS = "s (Unix epoch)"

# Index axes of the NXdata groups: name -> (which size it runs over, long_name).
AXES: Mapping[str, tuple[str, str]] = {
    "row": ("n_neurons", "neuron i (row)"),
    "col": ("n_neurons", "neuron j (column)"),
    "device": ("n_devices", "device index"),
    "neuron": ("n_neurons", "neuron"),
    "line": ("n_lines", "line index"),
}


@dataclass(frozen=True)
class Field:
    """One field of a table's compound log row."""

    name: str
    dtype: str
    units: str = ""


@dataclass(frozen=True)
class Column:
    """An array dataset that grows with its table: one row (of shape ``dims``) per table row."""

    path: str  # under /entry, "<NXdata group>/<name>"; the name is the key rows are appended with
    dims: tuple[str, ...]  # AXES names; () = one scalar per row
    dtype: str
    units: str
    long_name: str

    @property
    def key(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def group(self) -> str:
        return self.path.rsplit("/", 1)[0]

    def row_shape(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """The shape of one row, given ``{"n_neurons": N, "n_devices": D, "n_lines": L}``."""
        return tuple(int(sizes[AXES[d][0]]) for d in self.dims)


@dataclass(frozen=True)
class Table:
    """Rows appended together; ``name`` is both the log dataset and the commit counter."""

    name: str
    long_name: str
    fields: tuple[Field, ...]
    columns: tuple[Column, ...] = ()
    record_dim: str = ""  # the reader's name for the row dimension of the columns ("read" ...)

    @property
    def path(self) -> str:
        return f"log/{self.name}"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype([(f.name, f.dtype) for f in self.fields])

    @property
    def field_units(self) -> dict[str, str]:
        return {f.name: f.units for f in self.fields if f.units}

    @property
    def paths(self) -> tuple[str, ...]:
        """Every dataset (under /entry) whose length is this table's committed count."""
        return tuple(c.path for c in self.columns) + (self.path,)


@dataclass(frozen=True)
class Plot:
    """An NXdata group: its signals (the first is @signal, the others @auxiliary_signals), the
    axes after ``t_bench``, and datasets linked in as (name, path under /entry)."""

    name: str
    signals: tuple[str, ...]
    axes: tuple[str, ...]
    links: tuple[tuple[str, str], ...] = ()


# ------------------------------------------------------------------------- the tables

SEQ = Field("seq", _I8)  # row of log/operations this row belongs to
INDEX = Field("index", _I8)  # plan index of the operation
SEGMENT = Field("segment", _I4)  # 0 for the first run, +1 per resume
T_WALL = Field("t_wall", _F8, T_WALL_UNITS)
T_BENCH = Field("t_bench", _F8, "s")
DURATION = Field("duration", _F8, "s")
V_READ = Field("v_read", _F8, "V")
JSON_TEXT = (Field("json_offset", _I8, "byte"), Field("json_length", _I8, "byte"))
EVENT = (SEQ, INDEX, T_WALL, T_BENCH)


def _t_bench(group: str, what: str) -> Column:
    return Column(f"{group}/t_bench", (), _F8, "s", f"bench time of the {what}")


TABLES: tuple[Table, ...] = (
    Table("operations",
          "every executed operation: plan index, times, result row (table,row), JSON {op, settings[, result]}",
          (SEQ, INDEX, SEGMENT, Field("kind", "S16"), T_WALL, T_BENCH, DURATION, Field("table", "S12"),
           Field("row", _I8), *JSON_TEXT)),
    Table("reads", "one row per conductance-matrix read (rows of data/ and devices/)",
          (*EVENT, DURATION, V_READ, Field("n_read", _I4)),
          columns=(
              Column("data/conductance", ("row", "col"), _F8, "S", "conductance matrix (NaN: no device)"),
              Column("data/conductance_errors", ("row", "col"), _F8, "S", "standard error of the conductance"),
              _t_bench("data", "read"),
              Column("devices/g", ("device",), _F8, "S", "measured device conductance (NaN: not read)"),
              Column("devices/g_errors", ("device",), _F8, "S", "standard error of the device conductance"),
              Column("devices/truth", ("device",), _F8, "S", "simulator's true conductance (NaN: real bench)"),
          ), record_dim="read"),
    Table("pairs", "single device reads",
          (*EVENT, Field("a", _I4), Field("b", _I4), Field("device", _I4), Field("g", _F8, "S"),
           Field("g_std", _F8, "S"), Field("current", _F8, "A"), V_READ, Field("truth", _F8, "S"))),
    Table("multiplies", "one row per multiply (rows of multiply/)", (*EVENT, V_READ),
          columns=(
              Column("multiply/currents", ("neuron",), _F8, "A",
                     "neuron current of the in-materio multiply (NaN: not measured)"),
              Column("multiply/pattern", ("neuron",), "i1", "", "input pattern (+1/-1)"),
              _t_bench("multiply", "multiply"),
          ), record_dim="multiply"),
    Table("applies", "one row per apply or pulse train (rows of apply/)",
          (*EVENT, Field("kind", "S8"), DURATION, Field("width", _F8, "s"), Field("count", _I8),
           Field("period", _F8, "s")),
          columns=(
              Column("apply/line_voltages", ("line",), _F8, "V", "applied line voltage (NaN: floating)"),
              _t_bench("apply", "apply or pulse"),
          ), record_dim="apply"),
    Table("records", "protocol results: stream name and JSON of the values",
          (*EVENT, Field("stream", "S64"), *JSON_TEXT)),
    Table("record_values",
          "scalar numbers of every record, one (record, stream, key, value) per row; nested keys joined by '.'",
          (Field("record", _I8), SEQ, Field("stream", "S64"), Field("key", "S64"), Field("value", _F8))),
    Table("checkpoints", "checkpoints: plan index and JSON of the state to resume from",
          (SEQ, INDEX, SEGMENT, T_WALL, T_BENCH, *JSON_TEXT)),
    Table("resumes", "each time the run was resumed into this file",
          (T_WALL, SEGMENT, Field("from_index", _I8), Field("operations_before", _I8))),
)
TABLE: Mapping[str, Table] = {t.name: t for t in TABLES}
COLUMN: Mapping[str, tuple[Table, Column]] = {c.path: (t, c) for t in TABLES for c in t.columns}

PLOTS: tuple[Plot, ...] = (
    Plot("data", ("conductance",), ("row", "col")),
    Plot("devices", ("g", "truth"), ("device",),
         links=(("t_bench", "data/t_bench"),)),  # a hard link: one axis for both views of a read
    Plot("multiply", ("currents",), ("neuron",)),
    Plot("apply", ("line_voltages",), ("line",)),
)

# /entry/log/json: UTF-8 texts concatenated; rows of the tables above point in.
JSON_PATH = "log/json"
JSON_CHUNK = 65536
JSON_LONG_NAME = "UTF-8 JSON texts, concatenated; rows point in with (json_offset, json_length)"
JSON_DESCRIPTION = "text = bytes(json[offset:offset+length]).decode('utf-8'); NaN may appear (Python JSON)"

# /entry/committed: the commit counter, one compound row (shape (1,); () in layout version 1).
COMMITTED_SHAPE = (1,)
COUNTERS: tuple[str, ...] = tuple(t.name for t in TABLES) + ("json_bytes", "commits")
COMMITTED_DTYPE = np.dtype([(name, "<i8") for name in COUNTERS] + [("t_wall", "<f8")])
COMMITTED_UNITS = json.dumps({"json_bytes": "byte", "t_wall": T_WALL_UNITS})
COUNTED_PATHS: Mapping[str, tuple[str, ...]] = {**{t.name: t.paths for t in TABLES}, "json_bytes": (JSON_PATH,)}


def read_committed(ds: "h5py.Dataset") -> np.ndarray:
    """The commit row of ``/entry/committed`` as a 0-d record, whatever the layout version."""
    return np.asarray(ds[()]).reshape(())


def counts_dict(row: np.ndarray) -> dict[str, int]:
    """Counters of a ``/entry/committed`` row (fields an older file lacks are left out)."""
    names = row.dtype.names or ()
    return {name: int(row[name]) for name in COUNTERS if name in names}
