"""The HDF5 run archive's writer: one crash-safe, self-describing file per run, written as measured.

Why it looks the way it does (measurements in the project's HDF5 notes):

* ``libver=("v110", "v110")`` + SWMR: the only mode in which a flushed file survived
  SIGKILL intact, and v110 keeps files readable by HDF5 1.10+ and MATLAB.
* SWMR forbids new objects and attributes, so :meth:`ArchiveWriter.start` creates the
  whole tree (:mod:`lab.archive.tree`) first and only then switches SWMR on. Afterwards
  rows are only appended.
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
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import h5py
import numpy as np

from lab.archive.blocks import BufferedTable, ByteStream, clear_status_flags, fixed_string
from lab.archive.jsonio import archived_json, numeric_items
from lab.archive.access import FLAGS_WORDS, check_length, damaged, open_h5
from lab.archive.layout import (
    APPENDABLE_VERSIONS,
    COMMITTED_DTYPE,
    ERROR_BYTES,
    LIBVER,
    STATUSES,
    counts_dict,
    read_committed,
)
from lab.archive.tree import bind_tables, create_tree, last_checkpoint, now_iso, peek_status, truncate
from lab.archive.writelock import ArchiveError
from lab.archive.writelock import WriterLock as _WriterLock
from lab.observer import TWIN_STATE, OperationRecord, RunInfo, RunStatus
from lab.operations import ApplyResult, Checkpoint, MatrixResult, MultiplyResult, PairResult, Record

_T = TypeVar("_T")


@dataclass(frozen=True)
class ResumePoint:
    """Where a reopened run stands: what the runner needs to restart the protocol."""

    path: Path
    state: dict[str, Any] | None  # protocol state of the last committed checkpoint (None: none yet)
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
    sample_state: dict[str, Any] | None = None  # a dry run's simulated sample at that checkpoint

    @property
    def next_index(self) -> int:
        """Plan index to number the resumed operations from (``Runner.run(start_index=...)``)."""
        return 0 if self.checkpoint_index is None else self.checkpoint_index + 1


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
        self._tables: dict[str, BufferedTable] = {}
        self._json: ByteStream | None = None
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
        with lock.released_on_error():
            f = h5py.File(self.path, "w", libver=LIBVER)
            _start_swmr(f, lambda f: create_tree(f, info))
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

    def bench_state(self, phase: str, state: Mapping[str, Any]) -> None:
        """What the runner confirmed about the bench (``phase`` "start" or "end"), durable at once.

        Kept as a record of stream ``bench_state.<phase>`` (no operation row: plan indices
        and operation counts stay the protocol's).
        """
        if self.file is None or self.finished:
            return
        times = {"seq": self._tables["operations"].count - 1, "index": -1, "t_wall": time.time(),
                 "t_bench": self._t_bench_end}
        self._append_record(times, Record(stream=f"bench_state.{phase}", values=dict(state)))
        self._dirty = True
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
                f["entry/error"][()] = fixed_string(error or "", ERROR_BYTES)
                f["entry/end_time"][()] = np.bytes_(now_iso())
                f.flush()
            finally:
                self.close()
                self.finished = True

    # ---------------------------------------------------------------- resume

    @staticmethod
    def hold(path: str | os.PathLike[str]) -> "_WriterLock":
        """Keep other writers off an existing run file without changing it (pass to :meth:`resume`)."""
        return _WriterLock(Path(path))

    @classmethod
    def resume(cls, path: str | os.PathLike[str], *, held: "_WriterLock | None" = None, **kw: Any) -> "ArchiveWriter":
        """Reopen an unfinished run for appending; see :attr:`resume_point`.

        Rows past the committed counts (written before a crash but never committed) are
        cut off. Committed rows after the last checkpoint are kept: they were measured,
        and the device really saw those operations. The runner restarts the protocol from
        ``resume_point.state``; what it then runs is logged under a new ``segment``.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such archive")
        lock = held if held is not None else _WriterLock(path)
        with lock.released_on_error():
            check_length(path)  # we hold the lock: nobody is growing the file, a short one is cut off
            status = peek_status(path)
            if status == "complete":
                raise ArchiveError(f"{path}: the run is complete; nothing to resume")
            f = _open_for_append(path)
            committed, point = _start_swmr(f, lambda f: _reopen(f, path, status))
        writer = cls(path, **kw)
        writer._lock = lock
        writer.file = f
        writer.resume_point = point
        writer.segment = point.segment
        writer._bind(committed)
        ckpt = point.checkpoint_index
        writer._tables["resumes"].append(row=(
            time.time(), point.segment, -1 if ckpt is None else ckpt, point.counts["operations"],
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
        given = json.loads(archived_json(info.protocol_params))
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
        row = np.zeros(self._committed_shape, COMMITTED_DTYPE)  # (1,); () in a layout-1 file
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
        c = counts_dict(committed)
        self._commits = c["commits"]
        e = f["entry"]
        s = e["sample"]
        self._n, self._d, self._l = int(s["n_neurons"][()]), int(s["n_devices"][()]), int(s["n_lines"][()])
        self._tables, self._json = bind_tables(e, c, self.direct_chunks)
        self._committed_id = e["committed"].id
        self._committed_shape = e["committed"].shape

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
            doc["result"] = {"bus_currents": res.bus_currents, "duration_s": res.duration_s,
                             "timeline": [list(e) for e in res.timeline]}
        elif isinstance(op, Record):
            table, row = "records", self._append_record(times, op)
        elif res is not None:
            doc["result"] = res
        off, length = self._json.append(archived_json(doc))  # type: ignore[union-attr]
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
        text = archived_json(op.values)
        self._pending_bytes += len(text)
        off, length = self._json.append(text)  # type: ignore[union-attr]
        for key, value in numeric_items(op.values):
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
        off, length = self._json.append(archived_json(dict(state)))  # type: ignore[union-attr]
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


def _open_for_append(path: Path) -> h5py.File:
    """Open a run file read-write; a crashed SWMR writer's flags are cleared first.

    Only called while holding the writer lock: that lock proves the old writer is gone.
    """
    try:
        f = h5py.File(path, "r+", libver=LIBVER)
    except OSError as exc:
        if FLAGS_WORDS not in str(exc):
            raise damaged(path, exc) from None
        check_length(path)  # never clear the flags of (and so write to) a cut-off file
        clear_status_flags(path)  # a crashed SWMR writer: our lock proves it is gone
        try:
            f = h5py.File(path, "r+", libver=LIBVER)
        except OSError as exc:
            raise damaged(path, exc) from None
    version = int(f.attrs.get("hopbench_layout_version", 0))
    if version not in APPENDABLE_VERSIONS:
        f.close()
        raise ArchiveError(f"{path}: layout version {version}, this writer appends only to {APPENDABLE_VERSIONS}")
    return f


def _start_swmr(f: h5py.File, prepare: Callable[[h5py.File], _T]) -> _T:
    """``prepare(f)``, flush, then switch SWMR writing on; ``f`` is closed if any of it fails."""
    try:
        out = prepare(f)
        f.flush()
        f.swmr_mode = True
    except BaseException:
        f.close()
        raise
    return out


def _reopen(f: h5py.File, path: Path, status: str) -> tuple[np.ndarray, ResumePoint]:
    """Cut the file back to its committed rows, say where the run stands, mark it running again."""
    committed = read_committed(f["entry/committed"])
    point = _resume_point(f, path, status, committed)
    f["entry/status"][()] = np.bytes_("running")
    f["entry/end_time"][()] = np.bytes_("")
    f["entry/error"][()] = np.bytes_("")
    return committed, point


def peek_resume_point(path: str | os.PathLike[str]) -> ResumePoint:
    """Where :meth:`ArchiveWriter.resume` would continue ``path``, read without changing a byte."""
    path = Path(path)
    status = peek_status(path)
    with open_h5(path).file as f:
        return _resume_point(f, path, status, read_committed(f["entry/committed"]), cut=False)


def _resume_point(f: h5py.File, path: Path, status: str, committed: np.ndarray, cut: bool = True) -> ResumePoint:
    """Cut the file back to its committed rows (unless not ``cut``) and say where the run stands."""
    counts = counts_dict(committed)
    if cut:
        truncate(f, counts)
    state, ckpt_index = last_checkpoint(f, counts)
    sample_state = state.pop(TWIN_STATE, None) if state is not None else None
    protocol = f["entry/protocol"]
    sample = f["entry/sample"]
    return ResumePoint(
        path=path, state=state, checkpoint_index=ckpt_index, counts=counts, segment=counts["resumes"] + 1,
        status=status, protocol_name=protocol["name"].asstr()[()],
        protocol_params=json.loads(protocol["parameters"].asstr()[()]),
        seeds=json.loads(protocol["seeds"].asstr()[()]),
        n_neurons=int(sample["n_neurons"][()]), n_devices=int(sample["n_devices"][()]),
        n_lines=int(sample["n_lines"][()]), sample_state=sample_state,
    )


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
