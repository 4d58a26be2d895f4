"""The HDF5 run archive: one crash-safe, self-describing file per run, written as measured.

Why it looks the way it does (measurements in the project's HDF5 notes):

* ``libver=("v110", "v110")`` + SWMR: the only mode in which a flushed file survived
  SIGKILL intact, and v110 keeps files readable by HDF5 1.10+ and MATLAB.
* SWMR forbids new objects and attributes, so :meth:`ArchiveWriter.start` creates the
  whole NeXus-flavoured tree (sized from :class:`~lab.operations.BenchInfo`) first and only
  then switches SWMR on. Afterwards rows are only appended.
* Rows are buffered in memory and written in blocks at each commit (every checkpoint,
  every ``flush_every`` operations, every ``flush_interval_s`` of wall time): a block write
  is far cheaper than a per-row write, and nothing is durable before a flush anyway.
* ``/entry/committed`` (one compound row of counts) is the truth of how much is complete.
  It is written only after the rows it covers were flushed, then flushed itself, so a
  reader (or a resume) never trusts a row a crash may have torn. Dataset shapes may run
  ahead of it after a crash.
* Strings that grow (JSON of settings, records, checkpoint states) go into one UTF-8 byte
  stream, ``/entry/log/json``, addressed by (offset, length) columns: fixed-size types are
  SWMR-safe, variable-length strings live in HDF5's global heap, which SWMR readers
  do not refresh reliably.

Layout (version 1; N neurons, D devices, L lines, k = rows so far; units in @units)::

    / @NX_class=NXroot @default=entry @hopbench_layout_version=1
    /entry  NXentry @default=data
        title run_id program_name(@version @git_revision) start_time
        end_time status error          fixed-size, overwritten at finish
        committed                      compound scalar: committed rows per table (the truth)
        instrument/  NXinstrument      bench_text bench_parsed(JSON) simulated sim_preset(JSON)
                                       host v_max v_read_max default_v_read max_pulse_width
        sample/      NXsample          topology n_neurons n_devices n_lines line_names
                                       neuron_lines(JSON) device_lines(D,2) device_cells(D,2)
        protocol/    NXparameters      name parameters(JSON) seeds(JSON) extra(JSON)
        data/        NXdata            conductance(k,N,N) conductance_errors(k,N,N) t_bench(k) row col
        devices/     NXdata            g(k,D) g_errors(k,D) truth(k,D) t_bench(k, link) device
        multiply/    NXdata            currents(k,N) pattern(k,N) t_bench(k) neuron
        apply/       NXdata            line_voltages(k,L) t_bench(k) line
        log/         NXcollection      operations reads pairs multiplies applies records
                                       record_values checkpoints resumes (compound rows)
                                       json (UTF-8 bytes; rows point in by json_offset/length)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import errno
import glob
import json
import math
import os
import struct
import time
from collections import abc
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

import h5py
import numpy as np

from lab.observer import OperationRecord, RunInfo, RunStatus
from lab.operations import (
    ApplyResult,
    BenchInfo,
    Checkpoint,
    MatrixResult,
    MultiplyResult,
    PairResult,
    Record,
)

LAYOUT_VERSION = 1
LIBVER = ("v110", "v110")
STATUSES = ("running", "complete", "aborted", "failed")
ERROR_BYTES = 8192

# --------------------------------------------------------------------------- layout

COUNTERS = (
    "operations", "reads", "pairs", "multiplies", "applies", "records",
    "record_values", "checkpoints", "resumes", "json_bytes", "commits",
)
COMMITTED_DTYPE = np.dtype([(name, "<i8") for name in COUNTERS] + [("t_wall", "<f8")])

_I8, _I4, _F8 = "<i8", "<i4", "<f8"
OPERATIONS_DTYPE = np.dtype([
    ("seq", _I8), ("index", _I8), ("segment", _I4), ("kind", "S16"), ("t_wall", _F8),
    ("t_bench", _F8), ("duration", _F8), ("table", "S12"), ("row", _I8),
    ("json_offset", _I8), ("json_length", _I8),
])
READS_DTYPE = np.dtype([
    ("seq", _I8), ("index", _I8), ("t_wall", _F8), ("t_bench", _F8), ("duration", _F8),
    ("v_read", _F8), ("n_read", _I4),
])
PAIRS_DTYPE = np.dtype([
    ("seq", _I8), ("index", _I8), ("t_wall", _F8), ("t_bench", _F8), ("a", _I4), ("b", _I4),
    ("device", _I4), ("g", _F8), ("g_std", _F8), ("current", _F8), ("v_read", _F8), ("truth", _F8),
])
MULTIPLIES_DTYPE = np.dtype([
    ("seq", _I8), ("index", _I8), ("t_wall", _F8), ("t_bench", _F8), ("v_read", _F8),
])
APPLIES_DTYPE = np.dtype([
    ("seq", _I8), ("index", _I8), ("t_wall", _F8), ("t_bench", _F8), ("kind", "S8"),
    ("duration", _F8), ("width", _F8), ("count", _I8), ("period", _F8),
])
RECORDS_DTYPE = np.dtype([
    ("seq", _I8), ("index", _I8), ("t_wall", _F8), ("t_bench", _F8), ("stream", "S64"),
    ("json_offset", _I8), ("json_length", _I8),
])
RECORD_VALUES_DTYPE = np.dtype([
    ("record", _I8), ("seq", _I8), ("stream", "S64"), ("key", "S64"), ("value", _F8),
])
CHECKPOINTS_DTYPE = np.dtype([
    ("seq", _I8), ("index", _I8), ("segment", _I4), ("t_wall", _F8), ("t_bench", _F8),
    ("json_offset", _I8), ("json_length", _I8),
])
RESUMES_DTYPE = np.dtype([
    ("t_wall", _F8), ("segment", _I4), ("from_index", _I8), ("operations_before", _I8),
])

_TIME_UNITS = {"t_wall": "s (Unix epoch)", "t_bench": "s", "duration": "s"}
FIELD_UNITS = {
    "operations": {**_TIME_UNITS, "json_offset": "byte", "json_length": "byte"},
    "reads": {**_TIME_UNITS, "v_read": "V"},
    "pairs": {**_TIME_UNITS, "g": "S", "g_std": "S", "current": "A", "v_read": "V", "truth": "S"},
    "multiplies": {**_TIME_UNITS, "v_read": "V"},
    "applies": {**_TIME_UNITS, "width": "s", "period": "s"},
    "records": {**_TIME_UNITS, "json_offset": "byte", "json_length": "byte"},
    "record_values": {},
    "checkpoints": {**_TIME_UNITS, "json_offset": "byte", "json_length": "byte"},
    "resumes": {"t_wall": "s (Unix epoch)"},
}


def _counts_dict(row: np.ndarray) -> dict[str, int]:
    return {name: int(row[name]) for name in COUNTERS}


# --------------------------------------------------------------------------- JSON


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, abc.Mapping):
        return {str(k): v for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if hasattr(obj, "model_dump"):  # pydantic models
        return obj.model_dump(mode="json")
    return str(obj)


def to_json(obj: Any) -> str:
    """JSON text of ``obj``; NumPy arrays become lists, NaN stays ``NaN`` (Python's JSON)."""
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def _keys_to_str(obj: Any) -> Any:
    # json.dumps refuses tuple keys and silently turns int keys into strings; do it ourselves.
    if isinstance(obj, abc.Mapping):
        return {k if type(k) is str else str(k): _keys_to_str(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_keys_to_str(v) for v in obj]
    return obj


def _numeric_items(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    """Scalar numbers of a (nested) mapping, keys joined with dots; bools count as 0/1."""
    out: list[tuple[str, float]] = []
    for k, v in values.items():
        key = f"{prefix}{k}"
        if isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
            out.append((key, float(v)))
        elif isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "biuf":
            out.append((key, float(v)))
        elif isinstance(v, abc.Mapping):
            out.extend(_numeric_items(v, key + "."))
    return out


# --------------------------------------------------------------------------- HDF5 helpers


def _now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _dataset(group: h5py.Group, name: str, *, units: str, long_name: str, **kw: Any) -> h5py.Dataset:
    ds = group.create_dataset(name, **kw)
    ds.attrs["units"] = units
    ds.attrs["long_name"] = long_name
    return ds


def _text(group: h5py.Group, name: str, value: str, long_name: str) -> h5py.Dataset:
    return _dataset(group, name, units="", long_name=long_name, data=value)


def _group(parent: h5py.Group, name: str, nx_class: str, **attrs: Any) -> h5py.Group:
    g = parent.create_group(name)
    g.attrs["NX_class"] = nx_class
    for k, v in attrs.items():
        g.attrs[k] = v
    return g


def _chunk_rows(row_bytes: int, target: int = 65536) -> int:
    return max(1, min(4096, target // max(1, row_bytes)))


def _growing(group: h5py.Group, name: str, row_shape: tuple[int, ...], dtype: Any, *,
             units: str, long_name: str, chunk_rows: int | None = None) -> h5py.Dataset:
    dtype = np.dtype(dtype)
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
    # Big rows (a 35x35 matrix) get one chunk each, so a few rows per commit can go in
    # with write_direct_chunk; small rows share chunks so the chunk index stays small.
    rows = chunk_rows or (1 if row_bytes >= 4096 else _chunk_rows(row_bytes))
    return _dataset(
        group, name, units=units, long_name=long_name, shape=(0, *row_shape),
        maxshape=(None, *row_shape), chunks=(rows, *row_shape), dtype=dtype,
    )


def _compound(group: h5py.Group, name: str, dtype: np.dtype, table: str, long_name: str) -> h5py.Dataset:
    ds = _growing(group, name, (), dtype, units="", long_name=long_name, chunk_rows=_chunk_rows(dtype.itemsize, 32768))
    ds.attrs["units"] = "see field_units"
    ds.attrs["field_units"] = json.dumps(FIELD_UNITS[table])
    return ds


def _fixed_string(value: str, nbytes: int) -> np.bytes_:
    raw = value.encode("utf-8")
    if len(raw) > nbytes:
        raw = raw[: nbytes - 3].decode("utf-8", "ignore").encode("utf-8") + b"..."
    return np.bytes_(raw)


def _hdf5_library() -> ctypes.CDLL:
    base = os.path.dirname(h5py.__file__)
    candidates = glob.glob(base + ".libs/libhdf5-*.so*") + glob.glob(os.path.join(base, ".dylibs", "libhdf5*.dylib"))
    candidates = [c for c in candidates if "hdf5_hl" not in c]
    if not candidates:
        found = ctypes.util.find_library("hdf5")
        if not found:
            raise OSError("cannot locate the HDF5 library h5py uses (needed to clear a crashed file's flags)")
        candidates = [found]
    return ctypes.CDLL(candidates[0])


def clear_status_flags(path: str | os.PathLike[str]) -> None:
    """What ``h5clear -s`` does: forget that a crashed writer had the file open.

    HDF5 still refuses it if a live process holds the file's lock, so this cannot
    steal a file from a running writer.
    """
    lib = _hdf5_library()
    lib.H5Pset.argtypes = [ctypes.c_int64, ctypes.c_char_p, ctypes.c_void_p]
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    on = ctypes.c_bool(True)
    if lib.H5Pset(fapl.id, b"clear_status_flags", ctypes.byref(on)) < 0:
        raise OSError("this HDF5 library does not support clearing status flags")
    h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR, fapl=fapl).close()


# --------------------------------------------------------------------------- appenders


def _write_block(dsid: h5py.h5d.DatasetID, start: int, block: np.ndarray) -> None:
    """Grow the dataset and write ``block`` (rows x row shape) at row ``start``.

    The low-level API: h5py's ``ds.resize`` + ``ds[a:b] = x`` spend ~0.7 ms per call on
    selections and dtype checks, which made a commit of a dozen datasets cost milliseconds.
    """
    k = block.shape[0]
    dsid.set_extent((start + k, *block.shape[1:]))
    fspace = dsid.get_space()
    fspace.select_hyperslab((start,) + (0,) * (block.ndim - 1), block.shape)
    dsid.write(h5py.h5s.create_simple(block.shape), fspace, block)


class _Column:
    """One growing dataset whose rows are buffered until the next commit."""

    def __init__(self, ds: h5py.Dataset, rows: int, direct: bool):
        self.id = ds.id
        self.dtype = ds.dtype
        self.row_shape = ds.shape[1:]
        self.rows = rows  # rows on disk (written, maybe not yet committed)
        self.pending: list[Any] = []
        # write_direct_chunk skips even the low-level selection (fastest for a few big
        # rows) but needs one row per chunk, no filter and the exact on-disk dtype.
        self.direct = direct and ds.chunks is not None and ds.chunks[0] == 1 and ds.compression is None

    def write(self) -> None:
        k = len(self.pending)
        if not k:
            return
        # Measured: per-row direct chunks beat one block write up to a few tens of rows.
        if self.direct and k <= 32:
            self.id.set_extent((self.rows + k, *self.row_shape))
            zeros = (0,) * len(self.row_shape)
            for i, row in enumerate(self.pending):
                data = np.ascontiguousarray(row, dtype=self.dtype)
                self.id.write_direct_chunk((self.rows + i, *zeros), data.tobytes())
        else:
            block = np.array(self.pending, dtype=self.dtype)
            _write_block(self.id, self.rows, np.ascontiguousarray(block))
        self.rows += k
        self.pending.clear()


class _Table:
    """Datasets appended together; their common row count is one commit counter."""

    def __init__(self, columns: Mapping[str, h5py.Dataset], committed: int, direct: bool):
        self.columns = {name: _Column(ds, committed, direct) for name, ds in columns.items()}
        self.committed = committed
        self.count = committed  # rows appended so far, committed or not

    def append(self, **row: Any) -> int:
        for name, col in self.columns.items():
            col.pending.append(row[name])
        self.count += 1
        return self.count - 1

    def write(self) -> None:
        for col in self.columns.values():
            col.write()


class _ByteStream:
    """``/entry/log/json``: concatenated UTF-8 texts addressed by (offset, length)."""

    def __init__(self, ds: h5py.Dataset, committed: int):
        self.id = ds.id
        self.rows = committed
        self.committed = committed
        self.count = committed
        self.pending = bytearray()

    def append(self, text: str) -> tuple[int, int]:
        raw = text.encode("utf-8")
        offset = self.count
        self.pending += raw
        self.count += len(raw)
        return offset, len(raw)

    def write(self) -> None:
        if not self.pending:
            return
        block = np.frombuffer(self.pending, dtype=np.uint8).copy()
        _write_block(self.id, self.rows, block)
        self.rows += block.size
        self.pending.clear()


# --------------------------------------------------------------------------- the writer


@dataclass(frozen=True)
class ResumePoint:
    """Where a reopened run stands: what the runner needs to restart the protocol."""

    path: Path
    state: dict[str, Any] | None  # state of the last committed checkpoint (None: none yet)
    checkpoint_index: int | None  # plan index of that checkpoint
    counts: dict[str, int]  # committed rows per table
    segment: int  # segment number the resumed operations get (0 = the first run)
    status: str  # status found in the file (running = it crashed)
    protocol_name: str
    protocol_params: dict[str, Any]
    seeds: dict[str, int]
    n_neurons: int
    n_devices: int
    n_lines: int

    @property
    def next_index(self) -> int:
        """Plan index to number the resumed operations from (``Runner.run(start_index=...)``)."""
        return 0 if self.checkpoint_index is None else self.checkpoint_index + 1


class ArchiveError(RuntimeError):
    pass


class _WriterLock:
    """Keeps a second writer off a run file while this one lives (released on close or death).

    HDF5's own lock cannot: it drops its file lock when SWMR writing starts (so readers
    may open), and a crashed SWMR writer's flags look the same as a live writer's. So the
    writer takes an open-file-description lock on a byte range far past the end of the file
    (Linux F_OFD_SETLK): readers' flock()s do not see it, and it belongs to this open file,
    so an in-process reader closing the same file does not release it.
    """

    _held: set[str] = set()  # for the POSIX-lock fallback, which a process does not conflict with

    def __init__(self, path: Path, create: bool = False):
        self.key = os.path.realpath(path)
        if self.key in self._held:
            raise ArchiveError(f"{path}: already open for writing in this process")
        self.fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        try:
            self._lock()
        except OSError as exc:
            os.close(self.fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise ArchiveError(f"{path}: another process is writing this run") from exc
            raise
        self._held.add(self.key)

    def _lock(self) -> None:
        import fcntl

        if hasattr(fcntl, "F_OFD_SETLK"):
            arg = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 1 << 62, 1, 0)
            fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, arg)
        else:  # classic POSIX lock: released if this process closes any descriptor of the file
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 1 << 62)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self._held.discard(self.key)


class ArchiveWriter:
    """A :class:`~lab.observer.RunObserver` that streams a run into one HDF5 file.

    ``path`` is the file, or an existing folder in which ``start`` names the file
    ``<date>_<protocol>_<run_id>.h5``. Rows become durable at each commit: every
    checkpoint, every ``flush_every`` operations (None = never for that reason) and the
    first operation after ``flush_interval_s`` of wall time since the last commit.
    ``fsync=True`` also survives power loss (slower). ``on_commit(counts)`` is called after
    each commit with the committed counts.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        flush_every: int | None = None,
        flush_interval_s: float | None = 1.0,
        max_pending_bytes: int = 16 << 20,
        fsync: bool = False,
        direct_chunks: bool = True,
        overwrite: bool = False,
        on_commit: Callable[[dict[str, int]], None] | None = None,
    ):
        self.path = Path(path)
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self.max_pending_bytes = max_pending_bytes
        self.fsync = fsync
        self.direct_chunks = direct_chunks
        self.overwrite = overwrite
        self.on_commit = on_commit
        self.file: h5py.File | None = None
        self.resume_point: ResumePoint | None = None
        self.segment = 0
        self.finished = False
        self.commit_seconds = 0.0  # wall time spent committing (the archive's overhead)
        self.append_seconds = 0.0  # wall time spent buffering rows
        self._tables: dict[str, _Table] = {}
        self._json: _ByteStream | None = None
        self._last_commit_wall = time.monotonic()
        self._ops_since_commit = 0
        self._pending_bytes = 0
        self._dirty = False
        self._last_checkpoint: tuple[int, int] | None = None  # (segment, index)
        self._t_bench_end = 0.0
        self._n = self._d = self._l = 0

    # ---------------------------------------------------------------- RunObserver

    def start(self, info: RunInfo) -> None:
        if self.file is not None and self.resume_point is not None:
            self._check_resume_matches(info)
            return
        if self.file is not None:
            raise ArchiveError(f"{self.path}: start() called twice")
        if self.path.is_dir():
            stamp = info.start_time[:19].replace(":", "").replace("-", "")
            self.path = self.path / f"{stamp}_{info.protocol_name}_{info.run_id}.h5"
        if self.path.exists() and not self.overwrite:
            raise FileExistsError(f"{self.path}: archive exists (resume it, or pass overwrite=True)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = _WriterLock(self.path, create=True)
        try:
            f = h5py.File(self.path, "w", libver=LIBVER)
        except BaseException:
            lock.release()
            raise
        try:
            _create_layout(f, info)
            f.flush()
            f.swmr_mode = True
        except BaseException:
            f.close()
            lock.release()
            raise
        self._lock = lock
        self.file = f
        self._bind(np.zeros((), COMMITTED_DTYPE))

    def operation(self, record: OperationRecord) -> None:
        t0 = time.perf_counter()
        self._log_operation(record)
        self._ops_since_commit += 1
        self.append_seconds += time.perf_counter() - t0
        if isinstance(record.op, Checkpoint):
            self._add_checkpoint(record.index, record.op.state, record.t_wall)
            self.commit()
        elif self._commit_due():
            self.commit()

    def checkpoint(self, index: int, state: Mapping[str, Any]) -> None:
        self._add_checkpoint(index, state, time.time())
        self.commit()

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        if self.finished or self.file is None:
            return
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        f = self.file
        try:
            self.commit()
        except BaseException as exc:
            status, error = "failed", f"archive commit failed: {exc!r}" + (f"; run error: {error}" if error else "")
            raise
        finally:
            # Whatever happened above, the file must end saying how the run ended,
            # and be closed (releasing the writer lock) even if that fails too.
            try:
                f["entry/status"][()] = np.bytes_(status)
                f["entry/error"][()] = _fixed_string(error or "", ERROR_BYTES)
                f["entry/end_time"][()] = np.bytes_(_now_iso())
                f.flush()
            finally:
                self.close()
                self.finished = True

    # ---------------------------------------------------------------- resume

    @classmethod
    def resume(cls, path: str | os.PathLike[str], **kw: Any) -> "ArchiveWriter":
        """Reopen an unfinished run for appending; see :attr:`resume_point`.

        Rows past the committed counts (written before a crash but never committed) are
        cut off. Committed rows after the last checkpoint are kept: they were measured,
        and the device really saw those operations. The runner restarts the protocol from
        ``resume_point.state``; what it then runs is logged under a new ``segment``.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such archive")
        lock = _WriterLock(path)
        try:
            status = _peek_status(path)
            if status == "complete":
                raise ArchiveError(f"{path}: the run is complete; nothing to resume")
            try:
                f = h5py.File(path, "r+", libver=LIBVER)
            except OSError as exc:
                if "already open for write" not in str(exc):
                    raise
                clear_status_flags(path)  # a crashed SWMR writer: our lock proves it is gone
                f = h5py.File(path, "r+", libver=LIBVER)
        except BaseException:
            lock.release()
            raise
        try:
            version = int(f.attrs.get("hopbench_layout_version", 0))
            if version != LAYOUT_VERSION:
                raise ArchiveError(f"{path}: layout version {version}, this writer appends only to {LAYOUT_VERSION}")
            committed = f["entry/committed"][()]
            counts = _counts_dict(committed)
            _truncate(f, counts)
            state, ckpt_index = _last_checkpoint(f, counts)
            segment = counts["resumes"] + 1
            protocol = f["entry/protocol"]
            sample = f["entry/sample"]
            point = ResumePoint(
                path=path, state=state, checkpoint_index=ckpt_index, counts=counts, segment=segment,
                status=status, protocol_name=protocol["name"].asstr()[()],
                protocol_params=json.loads(protocol["parameters"].asstr()[()]),
                seeds=json.loads(protocol["seeds"].asstr()[()]),
                n_neurons=int(sample["n_neurons"][()]), n_devices=int(sample["n_devices"][()]),
                n_lines=int(sample["n_lines"][()]),
            )
            f["entry/status"][()] = np.bytes_("running")
            f["entry/end_time"][()] = np.bytes_("")
            f["entry/error"][()] = np.bytes_("")
            f.flush()
            f.swmr_mode = True
        except BaseException:
            f.close()
            lock.release()
            raise
        writer = cls(path, **kw)
        writer._lock = lock
        writer.file = f
        writer.resume_point = point
        writer.segment = segment
        writer._bind(committed)
        writer._tables["resumes"].append(row=(
            time.time(), segment, -1 if ckpt_index is None else ckpt_index, counts["operations"],
        ))
        writer._dirty = True
        writer.commit()
        return writer

    def _check_resume_matches(self, info: RunInfo) -> None:
        p = self.resume_point
        assert p is not None
        problems = []
        if info.protocol_name != p.protocol_name:
            problems.append(f"protocol {info.protocol_name!r} != archived {p.protocol_name!r}")
        given = json.loads(to_json(_keys_to_str(info.protocol_params)))
        if given != p.protocol_params:
            problems.append(f"protocol parameters {given} != archived {p.protocol_params}")
        b = info.bench
        if (b.n_neurons, b.n_devices, b.n_lines) != (p.n_neurons, p.n_devices, p.n_lines):
            problems.append(
                f"bench N/D/L {(b.n_neurons, b.n_devices, b.n_lines)} != archived {(p.n_neurons, p.n_devices, p.n_lines)}"
            )
        if problems:
            raise ArchiveError(f"{self.path}: cannot resume this run with a different setup: " + "; ".join(problems))

    # ---------------------------------------------------------------- commit

    def commit(self) -> None:
        """Write buffered rows, flush, then advance and flush the commit counter."""
        f = self.file
        if f is None or not self._dirty:
            return
        t0 = time.perf_counter()
        for table in self._tables.values():
            table.write()
        assert self._json is not None
        self._json.write()
        f.flush()
        if self.fsync:
            os.fsync(f.id.get_vfd_handle())
        counts = {name: t.count for name, t in self._tables.items()}
        counts["json_bytes"] = self._json.count
        counts["commits"] = self._commits + 1
        row = np.zeros((), COMMITTED_DTYPE)
        for name, value in counts.items():
            row[name] = value
        row["t_wall"] = time.time()
        self._committed_id.write(h5py.h5s.ALL, h5py.h5s.ALL, row)
        f.flush()
        if self.fsync:
            os.fsync(f.id.get_vfd_handle())
        self._commits += 1
        for table in self._tables.values():
            table.committed = table.count
        self._json.committed = self._json.count
        self._dirty = False
        self._ops_since_commit = 0
        self._pending_bytes = 0
        self._last_commit_wall = time.monotonic()
        self.commit_seconds += time.perf_counter() - t0
        if self.on_commit is not None:
            self.on_commit(counts)

    def counts(self) -> dict[str, int]:
        """Rows appended so far (committed or not)."""
        out = {name: t.count for name, t in self._tables.items()}
        if self._json is not None:
            out["json_bytes"] = self._json.count
        out["commits"] = getattr(self, "_commits", 0)
        return out

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            finally:
                self.file = None
                self._lock.release()

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.file is not None and not self.finished:
            if exc_type is None:
                self.finish("complete")
            elif issubclass(exc_type, KeyboardInterrupt):
                self.finish("aborted", "KeyboardInterrupt")
            else:
                self.finish("failed", f"{exc_type.__name__}: {exc}")

    # ---------------------------------------------------------------- internals

    def _commit_due(self) -> bool:
        if self.flush_every is not None and self._ops_since_commit >= self.flush_every:
            return True
        if self._pending_bytes >= self.max_pending_bytes:
            return True
        if self.flush_interval_s is not None:
            return time.monotonic() - self._last_commit_wall >= self.flush_interval_s
        return False

    def _bind(self, committed: np.ndarray) -> None:
        f = self.file
        assert f is not None
        c = _counts_dict(committed)
        self._commits = c["commits"]
        e = f["entry"]
        s = e["sample"]
        self._n, self._d, self._l = int(s["n_neurons"][()]), int(s["n_devices"][()]), int(s["n_lines"][()])
        d = self.direct_chunks
        self._tables = {
            "operations": _Table({"row": e["log/operations"]}, c["operations"], d),
            "reads": _Table({
                "conductance": e["data/conductance"], "conductance_errors": e["data/conductance_errors"],
                "t_bench": e["data/t_bench"], "g": e["devices/g"], "g_errors": e["devices/g_errors"],
                "truth": e["devices/truth"], "row": e["log/reads"],
            }, c["reads"], d),
            "pairs": _Table({"row": e["log/pairs"]}, c["pairs"], d),
            "multiplies": _Table({
                "currents": e["multiply/currents"], "pattern": e["multiply/pattern"],
                "t_bench": e["multiply/t_bench"], "row": e["log/multiplies"],
            }, c["multiplies"], d),
            "applies": _Table({
                "line_voltages": e["apply/line_voltages"], "t_bench": e["apply/t_bench"], "row": e["log/applies"],
            }, c["applies"], d),
            "records": _Table({"row": e["log/records"]}, c["records"], d),
            "record_values": _Table({"row": e["log/record_values"]}, c["record_values"], d),
            "checkpoints": _Table({"row": e["log/checkpoints"]}, c["checkpoints"], d),
            "resumes": _Table({"row": e["log/resumes"]}, c["resumes"], d),
        }
        self._json = _ByteStream(e["log/json"], c["json_bytes"])
        self._committed_id = e["committed"].id

    def _log_operation(self, rec: OperationRecord) -> None:
        if self.file is None:
            raise ArchiveError("operation() before start() (or after finish())")
        op, res = rec.op, rec.result
        t = self._tables
        seq = t["operations"].count
        times = dict(seq=seq, index=rec.index, t_wall=rec.t_wall, t_bench=rec.t_bench)
        self._t_bench_end = rec.t_bench + rec.duration_bench
        table, row = "", -1
        doc: dict[str, Any] = {"op": _op_fields(op), "settings": rec.settings}
        if isinstance(res, MatrixResult):
            table, row = "reads", self._append_read(times, rec, res)
        elif isinstance(res, PairResult):
            table, row = "pairs", self._append_pair(times, rec, res)
        elif isinstance(res, MultiplyResult):
            table, row = "multiplies", self._append_multiply(times, res)
        elif isinstance(res, ApplyResult):
            table, row = "applies", self._append_apply(times, rec, res)
            doc["result"] = {"bus_currents": res.bus_currents, "duration_s": res.duration_s}
        elif isinstance(op, Record):
            table, row = "records", self._append_record(times, op)
        elif res is not None:
            doc["result"] = res
        off, length = self._json.append(to_json(_keys_to_str(doc)))  # type: ignore[union-attr]
        t["operations"].append(row=(
            seq, rec.index, self.segment, op.kind.encode()[:16], rec.t_wall, rec.t_bench,
            rec.duration_bench, table.encode(), row, off, length,
        ))
        self._dirty = True

    def _append_read(self, times: dict, rec: OperationRecord, res: MatrixResult) -> int:
        n, d = self._n, self._d
        g = _shaped(res.g, (d,), "MatrixResult.g")
        m = _shaped(res.matrix, (n, n), "MatrixResult.matrix")
        truth = np.full(d, np.nan) if rec.truth is None else _shaped(rec.truth, (d,), "OperationRecord.truth")
        self._pending_bytes += 2 * m.nbytes + 3 * g.nbytes
        return self._tables["reads"].append(
            conductance=m, conductance_errors=_shaped(res.matrix_std, (n, n), "MatrixResult.matrix_std"),
            t_bench=rec.t_bench, g=g, g_errors=_shaped(res.g_std, (d,), "MatrixResult.g_std"), truth=truth,
            row=(times["seq"], times["index"], times["t_wall"], times["t_bench"], rec.duration_bench,
                 float(res.v_read), int(np.count_nonzero(~np.isnan(g)))),
        )

    def _append_pair(self, times: dict, rec: OperationRecord, res: PairResult) -> int:
        op = rec.op
        a, b = int(getattr(op, "a", -1)), int(getattr(op, "b", -1))
        device = self._device_of.get((min(a, b), max(a, b)), -1)
        truth = float(rec.truth[device]) if rec.truth is not None and device >= 0 else math.nan
        return self._tables["pairs"].append(row=(
            times["seq"], times["index"], times["t_wall"], times["t_bench"], a, b, device,
            float(res.g), float(res.g_std), float(res.current), float(res.v_read), truth,
        ))

    def _append_multiply(self, times: dict, res: MultiplyResult) -> int:
        n = self._n
        self._pending_bytes += 9 * n
        return self._tables["multiplies"].append(
            currents=_shaped(res.currents, (n,), "MultiplyResult.currents"),
            pattern=_shaped(res.pattern, (n,), "MultiplyResult.pattern").astype(np.int8),
            t_bench=times["t_bench"],
            row=(times["seq"], times["index"], times["t_wall"], times["t_bench"], float(res.v_read)),
        )

    def _append_apply(self, times: dict, rec: OperationRecord, res: ApplyResult) -> int:
        op = rec.op
        width = float(getattr(op, "width_s", getattr(op, "duration_s", math.nan)))
        count = int(getattr(op, "count", 1))
        period = getattr(op, "period", None)
        period = float(period) if period is not None else math.nan
        self._pending_bytes += 8 * self._l
        return self._tables["applies"].append(
            line_voltages=_shaped(res.line_voltages, (self._l,), "ApplyResult.line_voltages"),
            t_bench=times["t_bench"],
            row=(times["seq"], times["index"], times["t_wall"], times["t_bench"], op.kind.encode()[:8],
                 float(res.duration_s), width, count, period),
        )

    def _append_record(self, times: dict, op: Record) -> int:
        t = self._tables
        rec_row = t["records"].count
        stream = op.stream.encode()[:64]
        text = to_json(_keys_to_str(op.values))
        self._pending_bytes += len(text)
        off, length = self._json.append(text)  # type: ignore[union-attr]
        for key, value in _numeric_items(op.values):
            t["record_values"].append(row=(rec_row, times["seq"], stream, key.encode()[:64], value))
        return t["records"].append(row=(
            times["seq"], times["index"], times["t_wall"], times["t_bench"], stream, off, length,
        ))

    def _add_checkpoint(self, index: int, state: Mapping[str, Any], t_wall: float) -> None:
        if self.file is None:
            raise ArchiveError("checkpoint() before start() (or after finish())")
        key = (self.segment, int(index))
        if key == self._last_checkpoint:
            return  # the runner reported the same checkpoint as an operation and as checkpoint()
        self._last_checkpoint = key
        off, length = self._json.append(to_json(_keys_to_str(dict(state))))  # type: ignore[union-attr]
        self._tables["checkpoints"].append(row=(
            self._tables["operations"].count - 1, int(index), self.segment, t_wall, self._t_bench_end, off, length,
        ))
        self._dirty = True

    @property
    def _device_of(self) -> dict[tuple[int, int], int]:
        if not hasattr(self, "_device_map"):
            assert self.file is not None
            lines = self.file["entry/sample/device_lines"][...]
            self._device_map = {(int(min(a, b)), int(max(a, b))): i for i, (a, b) in enumerate(lines)}
        return self._device_map


def _shaped(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.shape != shape:
        raise ValueError(f"{what} has shape {arr.shape}, the archive's layout expects {shape}")
    return arr


def _op_fields(op: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": op.kind, "type": type(op).__name__}
    if dataclasses.is_dataclass(op):
        for f in dataclasses.fields(op):
            if isinstance(op, Record) and f.name == "values":
                continue  # archived once, in the records table
            if isinstance(op, Checkpoint) and f.name == "state":
                continue  # archived once, in the checkpoints table
            out[f.name] = getattr(op, f.name)
    return out


# --------------------------------------------------------------------------- creation


def _create_layout(f: h5py.File, info: RunInfo) -> None:
    b: BenchInfo = info.bench
    n, d, l = b.n_neurons, b.n_devices, b.n_lines
    f.attrs["NX_class"] = "NXroot"
    f.attrs["default"] = "entry"
    f.attrs["hopbench_layout_version"] = LAYOUT_VERSION
    f.attrs["creator"] = f"hopbench {info.software_version}"
    f.attrs["file_name"] = f.filename
    f.attrs["file_time"] = _now_iso()
    f.attrs["HDF5_Version"] = h5py.version.hdf5_version
    f.attrs["h5py_version"] = h5py.version.version

    e = _group(f, "entry", "NXentry", default="data")
    _text(e, "title", f"{info.protocol_name} run {info.run_id}", "run title")
    _text(e, "run_id", info.run_id, "run identifier")
    prog = _text(e, "program_name", "hopbench", "program that wrote the file")
    prog.attrs["version"] = info.software_version
    prog.attrs["git_revision"] = info.git_revision or ""
    _text(e, "start_time", info.start_time, "run start (ISO 8601)")
    _dataset(e, "end_time", units="", long_name="run end (ISO 8601); empty while running", data=np.bytes_(""), dtype="S64")
    _dataset(e, "status", units="", long_name="running | complete | aborted | failed", data=np.bytes_("running"), dtype="S16")
    _dataset(e, "error", units="", long_name="error message when aborted or failed",
             data=np.bytes_(""), dtype=h5py.string_dtype("utf-8", ERROR_BYTES))
    committed = _dataset(e, "committed", units="see field_units",
                         long_name="commit counter: rows of each table that are complete (trust this, not shapes)",
                         data=np.zeros((), COMMITTED_DTYPE))
    committed.attrs["field_units"] = json.dumps({"json_bytes": "byte", "t_wall": "s (Unix epoch)"})

    inst = _group(e, "instrument", "NXinstrument")
    _text(inst, "name", "simulated bench" if info.simulated else "bench", "instrument")
    _text(inst, "bench_text", info.bench_text, "bench file as written")
    _text(inst, "bench_parsed", to_json(_keys_to_str(info.bench_parsed)), "bench file, validated (JSON)")
    _dataset(inst, "simulated", units="", long_name="dry run on the simulator", data=bool(info.simulated))
    _text(inst, "sim_preset", to_json(_keys_to_str(info.sim_preset)), "simulator device preset (JSON; null on a real bench)")
    _text(inst, "host", info.host, "host that ran the bench")
    _dataset(inst, "v_max", units="V", long_name="max |V| on any line", data=float(b.v_max))
    _dataset(inst, "v_read_max", units="V", long_name="read voltage ceiling", data=float(b.v_read_max))
    _dataset(inst, "default_v_read", units="V", long_name="default read voltage", data=float(b.default_v_read))
    _dataset(inst, "max_pulse_width", units="s", long_name="max pulse width", data=float(b.max_pulse_width_s))

    s = _group(e, "sample", "NXsample")
    _text(s, "topology", b.topology, "array topology (film | crossbar)")
    _dataset(s, "n_neurons", units="", long_name="neurons N", data=n)
    _dataset(s, "n_devices", units="", long_name="devices D", data=d)
    _dataset(s, "n_lines", units="", long_name="lines L", data=l)
    _dataset(s, "line_names", units="", long_name="line names", data=np.array([x.encode() for x in b.line_names], dtype="S32"))
    _text(s, "neuron_lines", to_json(b.neuron_lines), "line indices owned by each neuron (JSON)")
    _dataset(s, "device_lines", units="", long_name="lines (a, b) joined by each device",
             data=np.asarray(b.devices, dtype=np.int32).reshape(d, 2))
    _dataset(s, "device_cells", units="", long_name="matrix cell (i, j) of each device",
             data=np.asarray(b.device_cells, dtype=np.int32).reshape(d, 2))

    p = _group(e, "protocol", "NXparameters")
    _text(p, "name", info.protocol_name, "protocol")
    _text(p, "parameters", to_json(_keys_to_str(info.protocol_params)), "protocol parameters (JSON)")
    _text(p, "seeds", to_json(info.seeds), "every random seed of the run (JSON)")
    _text(p, "extra", to_json(_keys_to_str(info.extra)), "other provenance (JSON)")

    data = _group(e, "data", "NXdata", signal="conductance", axes=["t_bench", "row", "col"],
                  t_bench_indices=0, row_indices=1, col_indices=2)
    _growing(data, "conductance", (n, n), "<f8", units="S", long_name="conductance matrix (NaN: no device)")
    _growing(data, "conductance_errors", (n, n), "<f8", units="S", long_name="standard error of the conductance")
    t_read = _growing(data, "t_bench", (), "<f8", units="s", long_name="bench time of the read")
    _dataset(data, "row", units="", long_name="neuron i (row)", data=np.arange(n, dtype=np.int32))
    _dataset(data, "col", units="", long_name="neuron j (column)", data=np.arange(n, dtype=np.int32))

    dev = _group(e, "devices", "NXdata", signal="g", auxiliary_signals=["truth"], axes=["t_bench", "device"],
                 t_bench_indices=0, device_indices=1)
    _growing(dev, "g", (d,), "<f8", units="S", long_name="measured device conductance (NaN: not read)")
    _growing(dev, "g_errors", (d,), "<f8", units="S", long_name="standard error of the device conductance")
    _growing(dev, "truth", (d,), "<f8", units="S", long_name="simulator's true conductance (NaN: real bench)")
    dev["t_bench"] = t_read  # a hard link: one axis for both views of a read
    _dataset(dev, "device", units="", long_name="device index", data=np.arange(d, dtype=np.int32))

    mul = _group(e, "multiply", "NXdata", signal="currents", axes=["t_bench", "neuron"], t_bench_indices=0, neuron_indices=1)
    _growing(mul, "currents", (n,), "<f8", units="A", long_name="neuron current of the in-materio multiply (NaN: not measured)")
    _growing(mul, "pattern", (n,), "i1", units="", long_name="input pattern (+1/-1)")
    _growing(mul, "t_bench", (), "<f8", units="s", long_name="bench time of the multiply")
    _dataset(mul, "neuron", units="", long_name="neuron", data=np.arange(n, dtype=np.int32))

    app = _group(e, "apply", "NXdata", signal="line_voltages", axes=["t_bench", "line"], t_bench_indices=0, line_indices=1)
    _growing(app, "line_voltages", (l,), "<f8", units="V", long_name="applied line voltage (NaN: floating)")
    _growing(app, "t_bench", (), "<f8", units="s", long_name="bench time of the apply or pulse")
    _dataset(app, "line", units="", long_name="line index", data=np.arange(l, dtype=np.int32))

    log = _group(e, "log", "NXcollection")
    js = _growing(log, "json", (), "u1", units="", long_name="UTF-8 JSON texts, concatenated; rows point in with (json_offset, json_length)",
                  chunk_rows=65536)
    js.attrs["description"] = "text = bytes(json[offset:offset+length]).decode('utf-8'); NaN may appear (Python JSON)"
    _compound(log, "operations", OPERATIONS_DTYPE, "operations",
              "every executed operation: plan index, times, result row (table,row), JSON {op, settings[, result]}")
    _compound(log, "reads", READS_DTYPE, "reads", "one row per conductance-matrix read (rows of data/ and devices/)")
    _compound(log, "pairs", PAIRS_DTYPE, "pairs", "single device reads")
    _compound(log, "multiplies", MULTIPLIES_DTYPE, "multiplies", "one row per multiply (rows of multiply/)")
    _compound(log, "applies", APPLIES_DTYPE, "applies", "one row per apply or pulse train (rows of apply/)")
    _compound(log, "records", RECORDS_DTYPE, "records", "protocol results: stream name and JSON of the values")
    _compound(log, "record_values", RECORD_VALUES_DTYPE, "record_values",
              "scalar numbers of every record, one (record, stream, key, value) per row; nested keys joined by '.'")
    _compound(log, "checkpoints", CHECKPOINTS_DTYPE, "checkpoints", "checkpoints: plan index and JSON of the state to resume from")
    _compound(log, "resumes", RESUMES_DTYPE, "resumes", "each time the run was resumed into this file")


def _peek_status(path: Path) -> str:
    try:
        with h5py.File(path, "r", swmr=True) as f:
            return f["entry/status"][()].decode()
    except OSError:
        with h5py.File(path, "r", locking=False) as f:
            return f["entry/status"][()].decode()


def _truncate(f: h5py.File, counts: Mapping[str, int]) -> None:
    """Cut every growing dataset back to its committed row count."""
    e = f["entry"]
    groups = {
        "reads": ["data/conductance", "data/conductance_errors", "data/t_bench", "devices/g", "devices/g_errors",
                  "devices/truth", "log/reads"],
        "multiplies": ["multiply/currents", "multiply/pattern", "multiply/t_bench", "log/multiplies"],
        "applies": ["apply/line_voltages", "apply/t_bench", "log/applies"],
        "json_bytes": ["log/json"],
    }
    for name in ("operations", "pairs", "records", "record_values", "checkpoints", "resumes"):
        groups[name] = [f"log/{name}"]
    for counter, paths in groups.items():
        for p in paths:
            ds = e[p]
            if ds.shape[0] != counts[counter]:
                ds.resize(counts[counter], axis=0)


def _last_checkpoint(f: h5py.File, counts: Mapping[str, int]) -> tuple[dict[str, Any] | None, int | None]:
    k = counts["checkpoints"]
    if k == 0:
        return None, None
    row = f["entry/log/checkpoints"][k - 1]
    off, length = int(row["json_offset"]), int(row["json_length"])
    text = f["entry/log/json"][off: off + length].tobytes().decode("utf-8")
    return json.loads(text), int(row["index"])
