"""The run file's tree, made from :mod:`lab.archive.layout`: create it, bind it, cut it back.

SWMR forbids new objects and attributes, so :func:`create_tree` makes the whole
NeXus-flavoured tree (sized from :class:`~lab.operations.BenchInfo`) before the writer
switches SWMR on; afterwards rows are only appended.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from lab.archive.blocks import BufferedTable, ByteStream, chunk_rows, dataset, growing, nx_group, text
from lab.archive.jsonio import archived_json
from lab.archive.access import damaged, open_h5
from lab.archive.layout import (
    AXES,
    COMMITTED_DTYPE,
    COMMITTED_SHAPE,
    COMMITTED_UNITS,
    COUNTED_PATHS,
    ERROR_BYTES,
    JSON_CHUNK,
    JSON_DESCRIPTION,
    JSON_LONG_NAME,
    JSON_PATH,
    LAYOUT_VERSION,
    PLOTS,
    TABLES,
    Plot,
)
from lab.observer import RunInfo
from lab.operations import BenchInfo


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def create_tree(f: h5py.File, info: RunInfo) -> None:
    """Every group, fixed dataset and empty growing dataset of a new run file."""
    f.attrs["NX_class"] = "NXroot"
    f.attrs["default"] = "entry"
    f.attrs["hopbench_layout_version"] = LAYOUT_VERSION
    f.attrs["creator"] = f"hopbench {info.software_version}"
    f.attrs["file_name"] = f.filename
    f.attrs["file_time"] = now_iso()
    f.attrs["HDF5_Version"] = h5py.version.hdf5_version
    f.attrs["h5py_version"] = h5py.version.version
    e = nx_group(f, "entry", "NXentry", default="data")
    _create_run(e, info)
    _create_instrument(e, info)
    _create_sample(e, info.bench)
    _create_protocol(e, info)
    sizes = {"n_neurons": info.bench.n_neurons, "n_devices": info.bench.n_devices, "n_lines": info.bench.n_lines}
    for plot in PLOTS:
        _create_plot(e, plot, sizes)
    _create_log(e)


def _create_run(e: h5py.Group, info: RunInfo) -> None:
    text(e, "title", f"{info.protocol_name} run {info.run_id}", "run title")
    text(e, "run_id", info.run_id, "run identifier")
    prog = text(e, "program_name", "hopbench", "program that wrote the file")
    prog.attrs["version"] = info.software_version
    prog.attrs["git_revision"] = info.git_revision or ""
    text(e, "start_time", info.start_time, "run start (ISO 8601)")
    dataset(e, "end_time", units="", long_name="run end (ISO 8601); empty while running", data=np.bytes_(""), dtype="S64")
    dataset(e, "status", units="", long_name="running | complete | aborted | failed", data=np.bytes_("running"), dtype="S16")
    dataset(e, "error", units="", long_name="error message when aborted or failed",
            data=np.bytes_(""), dtype=h5py.string_dtype("utf-8", ERROR_BYTES))
    committed = dataset(e, "committed", units="see field_units",
                        long_name="commit counter: rows of each table that are complete (trust this, not shapes)",
                        data=np.zeros(COMMITTED_SHAPE, COMMITTED_DTYPE))
    committed.attrs["field_units"] = COMMITTED_UNITS


def _create_instrument(e: h5py.Group, info: RunInfo) -> None:
    b = info.bench
    inst = nx_group(e, "instrument", "NXinstrument")
    text(inst, "name", "simulated bench" if info.simulated else "bench", "instrument")
    text(inst, "bench_text", info.bench_text, "bench file as written")
    text(inst, "bench_parsed", archived_json(info.bench_parsed), "bench file, validated (JSON)")
    dataset(inst, "simulated", units="", long_name="dry run on the simulator", data=bool(info.simulated))
    text(inst, "sim_preset", archived_json(info.sim_preset), "simulator device preset (JSON; null on a real bench)")
    text(inst, "host", info.host, "host that ran the bench")
    dataset(inst, "v_max", units="V", long_name="max |V| on any line", data=float(b.v_max))
    dataset(inst, "v_read_max", units="V", long_name="read voltage ceiling", data=float(b.v_read_max))
    dataset(inst, "default_v_read", units="V", long_name="default read voltage", data=float(b.default_v_read))
    dataset(inst, "max_pulse_width", units="s", long_name="max pulse width", data=float(b.max_pulse_width_s))


def _create_sample(e: h5py.Group, b: BenchInfo) -> None:
    d = b.n_devices
    s = nx_group(e, "sample", "NXsample")
    text(s, "topology", b.topology, "array topology (film | crossbar)")
    dataset(s, "n_neurons", units="", long_name="neurons N", data=b.n_neurons)
    dataset(s, "n_devices", units="", long_name="devices D", data=d)
    dataset(s, "n_lines", units="", long_name="lines L", data=b.n_lines)
    dataset(s, "line_names", units="", long_name="line names", data=np.array([x.encode() for x in b.line_names], dtype="S32"))
    text(s, "neuron_lines", archived_json(b.neuron_lines), "line indices owned by each neuron (JSON)")
    dataset(s, "device_lines", units="", long_name="lines (a, b) joined by each device",
            data=np.asarray(b.devices, dtype=np.int32).reshape(d, 2))
    dataset(s, "device_cells", units="", long_name="matrix cell (i, j) of each device",
            data=np.asarray(b.device_cells, dtype=np.int32).reshape(d, 2))


def _create_protocol(e: h5py.Group, info: RunInfo) -> None:
    p = nx_group(e, "protocol", "NXparameters")
    text(p, "name", info.protocol_name, "protocol")
    text(p, "parameters", archived_json(info.protocol_params), "protocol parameters (JSON)")
    text(p, "seeds", archived_json(info.seeds), "every random seed of the run (JSON)")


def _create_plot(e: h5py.Group, plot: Plot, sizes: Mapping[str, int]) -> None:
    """An NXdata group: the growing columns the tables put in it, its links and index axes."""
    dims = ("t_bench", *plot.axes)
    attrs: dict[str, Any] = {"signal": plot.signals[0]}
    if plot.signals[1:]:
        attrs["auxiliary_signals"] = list(plot.signals[1:])
    attrs["axes"] = list(dims)
    attrs.update({f"{name}_indices": i for i, name in enumerate(dims)})
    g = nx_group(e, plot.name, "NXdata", **attrs)
    for table in TABLES:
        for col in table.columns:
            if col.group == plot.name:
                growing(g, col.key, col.row_shape(sizes), col.dtype, units=col.units, long_name=col.long_name)
    for name, target in plot.links:
        g[name] = e[target]
    for axis in plot.axes:
        size, long_name = AXES[axis]
        dataset(g, axis, units="", long_name=long_name, data=np.arange(sizes[size], dtype=np.int32))


def _create_log(e: h5py.Group) -> None:
    log = nx_group(e, "log", "NXcollection")
    js = growing(log, JSON_PATH.split("/")[1], (), "u1", units="", long_name=JSON_LONG_NAME, rows_per_chunk=JSON_CHUNK)
    js.attrs["description"] = JSON_DESCRIPTION
    for table in TABLES:
        ds = growing(log, table.name, (), table.dtype, units="", long_name=table.long_name,
                     rows_per_chunk=chunk_rows(table.dtype.itemsize, 32768))
        ds.attrs["units"] = "see field_units"
        ds.attrs["field_units"] = json.dumps(table.field_units)


# --------------------------------------------------------------------------- an existing tree


def bind_tables(e: h5py.Group, counts: Mapping[str, int], direct: bool) -> tuple[dict[str, BufferedTable], ByteStream]:
    """Append buffers for every table (columns keyed by name, the log row as ``row``) and the JSON stream."""
    tables = {
        t.name: BufferedTable({**{c.key: e[c.path] for c in t.columns}, "row": e[t.path]}, counts[t.name], direct)
        for t in TABLES
    }
    return tables, ByteStream(e[JSON_PATH], counts["json_bytes"])


def truncate(f: h5py.File, counts: Mapping[str, int]) -> None:
    """Cut every growing dataset back to its committed row count."""
    e = f["entry"]
    for counter, paths in COUNTED_PATHS.items():
        for p in paths:
            ds = e[p]
            if ds.shape[0] != counts[counter]:
                ds.resize(counts[counter], axis=0)


def peek_status(path: Path) -> str:
    """The status the file records (a damaged file raises ArchiveFormatError, never hangs)."""
    with open_h5(path).file as f:
        try:
            return f["entry/status"][()].decode()
        except (KeyError, OSError) as exc:  # h5py's KeyError: an object it could not read
            raise damaged(path, exc) from None


def last_checkpoint(f: h5py.File, counts: Mapping[str, int]) -> tuple[dict[str, Any] | None, int | None]:
    """The state and plan index of the last committed checkpoint (None, None before any)."""
    k = counts["checkpoints"]
    if k == 0:
        return None, None
    row = f["entry/log/checkpoints"][k - 1]
    off, length = int(row["json_offset"]), int(row["json_length"])
    raw = f["entry"][JSON_PATH][off: off + length].tobytes().decode("utf-8")
    return json.loads(raw), int(row["index"])
