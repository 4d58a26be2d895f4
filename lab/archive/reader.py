"""Read run archives: one run as an object with tidy pandas tables and xarray arrays.

Files are opened by :func:`lab.archive.access.open_h5`: with ``swmr=True`` while a writer
holds them (or a dead writer left its flags), so a run still being written, or one whose
writer was killed, reads exactly its committed rows; :meth:`Run.refresh` picks up what a
live writer committed since. A damaged or truncated file is one :class:`ArchiveFormatError`
naming it, raised at once, never a hang. Row counts come from ``/entry/committed``, never
from dataset shapes; which counter a dataset follows, and the dimensions of its arrays,
come from :data:`lab.archive.layout.TABLES`.
"""
from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from lab.archive.access import ArchiveFormatError, damaged, open_h5
from lab.archive.writelock import writer_alive
from lab.archive.layout import COLUMN, COUNTED_PATHS, LAYOUT_VERSION, TABLE, counts_dict, read_committed
from lab.operations import BenchInfo

SUPPORTED_VERSIONS = (1, 2)

# What a reader reports for a file that says "running" while no writer holds it.
INTERRUPTED = "interrupted"
REPAIR_HINT = ("opens only with swmr=True (its writer died before closing it); "
               "`hopbench repair {path}` lets HDFView, MATLAB and h5py's plain open read it")


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _s(value[()])
    return str(value)


def _decode_frame(rows: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows) if len(rows) else pd.DataFrame(columns=list(rows.dtype.names or []))
    for name in rows.dtype.names or ():
        if rows.dtype[name].kind == "S":
            df[name] = [v.decode("utf-8", "replace") for v in rows[name]]
    return df


class _Text:
    """A read-only string attribute of :class:`Run`: the dataset at ``path`` under /entry,
    read at each access (a live run's status changes)."""

    def __init__(self, path: str):
        self.path = path

    def __get__(self, run: "Run | None", owner: type | None = None) -> Any:
        return self if run is None else run._scalar(self.path)

    def __set__(self, run: "Run", value: Any) -> None:
        raise AttributeError(f"{self.path} is read from the archive")


class Run:
    """One archived run. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str], *, locking: bool = True):
        # locking=False: take no HDF5 file lock, for a reader that keeps a file open while
        # another process may resume it (the resuming writer needs the file unlocked)
        self.path = Path(path)
        opened = open_h5(self.path, locking)
        self.file, self.swmr = opened.file, opened.swmr
        self._live = opened.live
        self.flags_set = opened.flags_set  # True: plain HDF5 tools refuse it until `hopbench repair`
        try:
            self._check_tree()
            self.refresh()
        except BaseException as exc:
            self.file.close()
            if isinstance(exc, (OSError, KeyError, ValueError)) and not isinstance(exc, ArchiveFormatError):
                raise damaged(self.path, exc) from None
            raise

    def _check_tree(self) -> None:
        f = self.file
        if "entry" not in f or "hopbench_layout_version" not in f.attrs:
            raise ArchiveFormatError(f"{self.path}: not a hopbench run archive")
        self.layout_version = int(f.attrs["hopbench_layout_version"])
        if self.layout_version not in SUPPORTED_VERSIONS:
            raise ArchiveFormatError(
                f"{self.path}: layout version {self.layout_version}; this reader knows {SUPPORTED_VERSIONS}"
                + (" (a newer hopbench wrote it)" if self.layout_version > LAYOUT_VERSION else "")
            )
        self.entry = f["entry"]

    # ---------------------------------------------------------------- lifecycle

    def refresh(self) -> None:
        """Re-read the commit counter (and forget cached tables) to follow a live run."""
        e = self.entry
        if self.swmr:
            for name in ("committed", "status", "error", "end_time"):
                e[name].refresh()
        c = read_committed(e["committed"])
        self.counts: dict[str, int] = counts_dict(c)
        self.committed_at = float(c["t_wall"])
        for key in [k for k in self.__dict__ if k.startswith("_cache_") or k in _CACHED]:
            del self.__dict__[key]
        self._refreshed: set[str] = set()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Run {self.run_id} {self.protocol_name} {self.status} {self.path}>"

    # ---------------------------------------------------------------- low level

    def _ds(self, name: str) -> h5py.Dataset:
        try:
            ds = self.entry[name]
        except KeyError as exc:  # h5py's word for an object it could not read, too
            raise damaged(self.path, exc) from None
        if self.swmr and name not in self._refreshed:
            ds.refresh()
            self._refreshed.add(name)
        return ds

    def rows(self, name: str, counter: str | None = None) -> np.ndarray:
        """The committed rows of dataset ``name`` (path under /entry); the layout knows its counter."""
        ds = self._ds(name)
        k = self.counts[counter or _COUNTER_OF[name]]
        if not 0 <= k <= ds.shape[0]:  # the writer writes rows before it counts them
            raise ArchiveFormatError(f"{self.path}: damaged run archive ({k} rows of {name} committed, "
                                     f"{ds.shape[0]} on disk)")
        try:
            return ds[:k]
        except OSError as exc:
            raise damaged(self.path, exc) from None

    def _log(self, table: str, json_as: str | None = None) -> pd.DataFrame:
        """The committed rows of ``/entry/log/<table>``, strings decoded; with ``json_as``, the
        JSON text each row points to, decoded, in that column (in place of offset and length)."""
        df = _decode_frame(self.rows(TABLE[table].path))
        if json_as is not None:
            df[json_as] = [self.json_at(o, n) for o, n in zip(df["json_offset"], df["json_length"], strict=True)]
            df = df.drop(columns=["json_offset", "json_length"])
        return df

    def text(self, offset: int, length: int) -> str:
        try:
            return self._json_bytes[offset: offset + length].tobytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ArchiveFormatError(f"{self.path}: damaged run archive (log/json at byte {offset}: {exc.reason})") from None

    def json_at(self, offset: int, length: int) -> Any:
        try:
            return json.loads(self.text(int(offset), int(length)))
        except json.JSONDecodeError as exc:
            raise ArchiveFormatError(f"{self.path}: damaged run archive (log/json at byte {offset}: {exc.msg})") from None

    @cached_property
    def _json_bytes(self) -> np.ndarray:
        return self.rows("log/json")

    def _scalar(self, name: str) -> str:
        try:
            return _s(self.entry[name][()])
        except (KeyError, OSError) as exc:
            raise damaged(self.path, exc) from None

    # ---------------------------------------------------------------- provenance

    recorded_status = _Text("status")  # what the file says: running | complete | aborted | failed

    @property
    def status(self) -> str:
        """The recorded status, except ``interrupted`` for a run that says ``running`` while no
        writer holds its lock (killed, power cut): it will never finish by itself."""
        status = self.recorded_status
        return INTERRUPTED if status == "running" and self.writer_alive() is False else status

    def writer_alive(self) -> bool | None:
        """Whether a writer holds this file now (None: this platform cannot tell); asked anew each call."""
        self._live = writer_alive(self.path)
        return self._live

    @property
    def needs_repair(self) -> str | None:
        """Why plain HDF5 tools refuse this file (None if they open it): a dead writer's flags."""
        if self.flags_set and self._live is False:
            return REPAIR_HINT.format(path=self.path)
        return None

    error = _Text("error")
    end_time = _Text("end_time")
    start_time = _Text("start_time")
    run_id = _Text("run_id")
    protocol_name = _Text("protocol/name")

    @cached_property
    def protocol_params(self) -> dict[str, Any]:
        return json.loads(self._scalar("protocol/parameters"))

    @cached_property
    def info(self) -> dict[str, Any]:
        """Everything the file says about where the run came from."""
        e = self.entry
        inst, s = e["instrument"], e["sample"]
        prog = e["program_name"]
        return {
            "run_id": self.run_id,
            "title": self._scalar("title"),
            "protocol_name": self.protocol_name,
            "protocol_params": self.protocol_params,
            "seeds": json.loads(self._scalar("protocol/seeds")),
            "software_version": _s(prog.attrs.get("version", "")),
            "git_revision": _s(prog.attrs.get("git_revision", "")) or None,
            "host": self._scalar("instrument/host"),
            "start_time": self.start_time,
            "end_time": self.end_time,
            "status": self.status,
            "simulated": bool(inst["simulated"][()]),
            "sim_preset": json.loads(self._scalar("instrument/sim_preset")),
            "bench_text": self._scalar("instrument/bench_text"),
            "bench_parsed": json.loads(self._scalar("instrument/bench_parsed")),
            "topology": self._scalar("sample/topology"),
            "n_neurons": int(s["n_neurons"][()]),
            "n_devices": int(s["n_devices"][()]),
            "n_lines": int(s["n_lines"][()]),
            "limits": {k: float(inst[k][()]) for k in ("v_max", "v_read_max", "default_v_read", "max_pulse_width")},
            "layout_version": self.layout_version,
        }

    @cached_property
    def line_names(self) -> list[str]:
        return [_s(x) for x in self.entry["sample/line_names"][...]]

    @cached_property
    def device_lines(self) -> np.ndarray:
        return self.entry["sample/device_lines"][...]

    @cached_property
    def device_cells(self) -> np.ndarray:
        return self.entry["sample/device_cells"][...]

    @cached_property
    def bench_info(self) -> BenchInfo:
        """What the run's protocol knew of the bench, rebuilt from the archive (no bench file needed)."""
        lim = self.info["limits"]
        return BenchInfo(
            line_names=tuple(self.line_names),
            neuron_lines=tuple(tuple(int(x) for x in ls) for ls in json.loads(self._scalar("sample/neuron_lines"))),
            devices=self.device_lines,
            device_cells=self.device_cells,
            topology=self.info["topology"], v_max=lim["v_max"], v_read_max=lim["v_read_max"],
            max_pulse_width_s=lim["max_pulse_width"], default_v_read=lim["default_v_read"],
            simulated=bool(self.info["simulated"]),
        )

    # ---------------------------------------------------------------- tables

    @cached_property
    def operations(self) -> pd.DataFrame:
        """Every executed operation; ``op`` and ``settings`` (and ``result``) decoded from JSON."""
        df = self._log("operations", json_as="doc")
        docs = df.pop("doc")
        df["op"] = [d.get("op", {}) for d in docs]
        df["settings"] = [d.get("settings", {}) for d in docs]
        df["result"] = [d.get("result") for d in docs]
        return df

    @cached_property
    def reads(self) -> pd.DataFrame:
        """One row per conductance-matrix read, with the epoch it follows (see :meth:`epoch_at`)."""
        df = self._log("reads")
        df.insert(0, "read", np.arange(len(df)))
        df["epoch"] = self.epoch_at(df["seq"].to_numpy())
        return df

    @cached_property
    def pairs(self) -> pd.DataFrame:
        df = self._log("pairs")
        return df.rename(columns={"g": "G_S", "g_std": "G_std_S", "current": "current_A", "v_read": "v_read_V",
                                  "truth": "truth_S"})

    @cached_property
    def checkpoints(self) -> pd.DataFrame:
        return self._log("checkpoints", json_as="state")

    @cached_property
    def resumes(self) -> pd.DataFrame:
        return self._log("resumes")

    @cached_property
    def record_values(self) -> pd.DataFrame:
        """Scalar numbers of every record, long format: record, seq, stream, key, value."""
        return self._log("record_values")

    @cached_property
    def _records(self) -> pd.DataFrame:
        df = self._log("records", json_as="values")
        df.insert(0, "record", np.arange(len(df)))
        return df

    @property
    def streams(self) -> list[str]:
        return list(dict.fromkeys(self._records["stream"]))

    def records(self, stream: str | None = None) -> pd.DataFrame:
        """Records (of one stream), one row each, their values as columns (arrays as lists)."""
        df = self._records
        if stream is not None:
            df = df[df["stream"] == stream]
        values = pd.DataFrame(list(df["values"]), index=df.index)
        meta = df.drop(columns=["values"])
        values = values[[c for c in values.columns if c not in meta.columns]]
        return pd.concat([meta, values], axis=1).reset_index(drop=True)

    def epoch_at(self, seq: Iterable[int]) -> np.ndarray:
        """The epoch at each operation row: the last ``epoch`` value a record or a checkpoint
        state carried at or before it (NaN before any). Protocols record the number of epochs
        completed, so a read after epoch e's training is labelled e."""
        seq = np.asarray(list(seq) if not isinstance(seq, np.ndarray) else seq, dtype=np.int64)
        marks = self._epoch_marks
        if marks.empty or not len(seq):
            return np.full(len(seq), np.nan)
        pos = np.searchsorted(marks["seq"].to_numpy(), seq, side="right") - 1
        vals = marks["epoch"].to_numpy(dtype=float)
        return np.where(pos >= 0, vals[np.clip(pos, 0, None)], np.nan)

    @cached_property
    def _epoch_marks(self) -> pd.DataFrame:
        rv = self.record_values
        parts = []
        if not rv.empty:
            parts.append(rv.loc[rv["key"] == "epoch", ["seq", "value"]].rename(columns={"value": "epoch"}))
        ck = self.checkpoints
        if not ck.empty:
            ep = [s.get("epoch") if isinstance(s, dict) else None for s in ck["state"]]
            c = pd.DataFrame({"seq": ck["seq"], "epoch": ep}).dropna()
            parts.append(c)
        if not parts:
            return pd.DataFrame(columns=["seq", "epoch"])
        return pd.concat(parts).astype({"seq": "int64", "epoch": float}).sort_values("seq", kind="stable")

    # ---------------------------------------------------------------- arrays

    def _read_coords(self) -> dict[str, Any]:
        r = self.reads
        return {
            "read": np.arange(len(r)),
            "t_bench": ("read", r["t_bench"].to_numpy(), {"units": "s", "long_name": "bench time"}),
            "op_index": ("read", r["index"].to_numpy()),
            "epoch": ("read", r["epoch"].to_numpy()),
        }

    def _array(self, name: str, coords: dict, **attrs: Any) -> xr.DataArray:
        """The committed rows of column ``name`` with the dimensions the layout gives it."""
        table, column = COLUMN[name]
        ds = self._ds(name)
        return xr.DataArray(
            self.rows(name), dims=(table.record_dim, *column.dims), coords=coords, name=column.key,
            attrs={"units": _s(ds.attrs.get("units", "")), "long_name": _s(ds.attrs.get("long_name", "")), **attrs},
        )

    @cached_property
    def conductance(self) -> xr.DataArray:
        """Conductance matrices (read, row, col) in S; NaN where no device joins the neurons."""
        n = self.info["n_neurons"]
        coords = {**self._read_coords(), "row": np.arange(n), "col": np.arange(n)}
        return self._array("data/conductance", coords)

    @cached_property
    def conductance_errors(self) -> xr.DataArray:
        n = self.info["n_neurons"]
        coords = {**self._read_coords(), "row": np.arange(n), "col": np.arange(n)}
        return self._array("data/conductance_errors", coords)

    def _device_coords(self) -> dict[str, Any]:
        lines, cells = self.device_lines, self.device_cells
        return {
            **self._read_coords(),
            "device": np.arange(len(lines)),
            "line_a": ("device", lines[:, 0]), "line_b": ("device", lines[:, 1]),
            "cell_i": ("device", cells[:, 0]), "cell_j": ("device", cells[:, 1]),
        }

    @cached_property
    def g(self) -> xr.DataArray:
        return self._array("devices/g", self._device_coords())

    @cached_property
    def g_errors(self) -> xr.DataArray:
        return self._array("devices/g_errors", self._device_coords())

    @cached_property
    def truth(self) -> xr.DataArray:
        return self._array("devices/truth", self._device_coords())

    def dataset(self) -> xr.Dataset:
        """Every matrix read as one xarray Dataset (conductances, errors, device view, truth)."""
        return xr.Dataset(
            {"conductance": self.conductance, "conductance_errors": self.conductance_errors,
             "g": self.g, "g_errors": self.g_errors, "truth": self.truth},
            attrs={"run_id": self.run_id, "protocol": self.protocol_name, "status": self.status},
        )

    @cached_property
    def multiply(self) -> xr.DataArray:
        """Neuron currents of every in-materio multiply (k, neuron) in A, with the pattern."""
        meta = self._log("multiplies")
        k = len(meta)
        pattern = self.rows("multiply/pattern")
        coords = {
            "multiply": np.arange(k), "neuron": np.arange(self.info["n_neurons"]),
            "t_bench": ("multiply", meta["t_bench"].to_numpy() if k else np.zeros(0)),
            "op_index": ("multiply", meta["index"].to_numpy() if k else np.zeros(0, int)),
            "v_read": ("multiply", meta["v_read"].to_numpy() if k else np.zeros(0)),
            "pattern": (("multiply", "neuron"), pattern),
        }
        return self._array("multiply/currents", coords)

    @cached_property
    def applied(self) -> xr.DataArray:
        """Line voltages of every apply / pulse train (k, line) in V; NaN = floating."""
        meta = self._log("applies")
        k = len(meta)
        col = (lambda c, d: meta[c].to_numpy() if k else np.zeros(0, d))
        coords = {
            "apply": np.arange(k), "line": np.arange(self.info["n_lines"]),
            "line_name": ("line", self.line_names),
            "t_bench": ("apply", col("t_bench", float)), "op_index": ("apply", col("index", int)),
            "kind": ("apply", col("kind", object)), "duration": ("apply", col("duration", float)),
            "width": ("apply", col("width", float)), "count": ("apply", col("count", int)),
        }
        return self._array("apply/line_voltages", coords)

    # ---------------------------------------------------------------- tidy tables

    def conductance_table(self) -> pd.DataFrame:
        """Long table: one row per read and matrix cell that holds a device."""
        G = self.conductance.values
        E = self.conductance_errors.values
        r = self.reads
        k, n, _ = G.shape if G.ndim == 3 else (0, 0, 0)
        read, row, col = np.meshgrid(np.arange(k), np.arange(n), np.arange(n), indexing="ij")
        keep = ~np.isnan(G)
        return pd.DataFrame({
            "read": read[keep], "epoch": r["epoch"].to_numpy()[read[keep]] if k else [],
            "t_bench_s": r["t_bench"].to_numpy()[read[keep]] if k else [],
            "row": row[keep], "col": col[keep], "G_S": G[keep], "G_std_S": E[keep],
        })

    def device_table(self) -> pd.DataFrame:
        """Long table: one row per read and device, measured next to the simulator's truth."""
        g, e, t = self.g.values, self.g_errors.values, self.truth.values
        k, d = g.shape
        r = self.reads
        dev = np.tile(np.arange(d), k)
        read = np.repeat(np.arange(k), d)
        lines, cells = self.device_lines, self.device_cells
        df = pd.DataFrame({
            "read": read, "epoch": r["epoch"].to_numpy()[read], "t_bench_s": r["t_bench"].to_numpy()[read],
            "device": dev, "line_a": lines[dev, 0], "line_b": lines[dev, 1], "row": cells[dev, 0], "col": cells[dev, 1],
            "G_S": g.reshape(-1), "G_std_S": e.reshape(-1), "truth_S": t.reshape(-1),
        })
        df["error_S"] = df["G_S"] - df["truth_S"]
        return df.dropna(subset=["G_S"]).reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """A few headline facts (used by ``list_runs`` and the report)."""
        ops = self.rows("log/operations")
        t_bench = float(ops["t_bench"][-1] + ops["duration"][-1]) if len(ops) else 0.0
        t_wall = float(ops["t_wall"][-1] - ops["t_wall"][0]) if len(ops) else 0.0
        return {
            "run_id": self.run_id, "protocol": self.protocol_name, "status": self.status,
            "recorded_status": self.recorded_status, "needs_repair": self.needs_repair, "error": self.error,
            "start_time": self.start_time, "end_time": self.end_time, "operations": self.counts["operations"],
            "reads": self.counts["reads"], "records": self.counts["records"], "checkpoints": self.counts["checkpoints"],
            "resumes": self.counts["resumes"], "bench_time_s": t_bench, "wall_time_s": t_wall,
        }


_CACHED = {name for name, v in vars(Run).items() if isinstance(v, cached_property)}
_COUNTER_OF = {path: counter for counter, paths in COUNTED_PATHS.items() for path in paths}


def open_run(path: str | os.PathLike[str]) -> Run:
    return Run(path)


def list_runs(folder: str | os.PathLike[str], pattern: str = "*.h5") -> pd.DataFrame:
    """Run archives in ``folder``: path, run id, status, protocol, dates, size, counts.

    Files that are not run archives are listed with status ``unreadable`` and the reason,
    so a damaged file shows up instead of vanishing from the list.
    """
    rows = []
    for p in sorted(Path(folder).glob(pattern)):
        row: dict[str, Any] = {"path": str(p), "size_bytes": p.stat().st_size}
        try:
            with Run(p) as r:
                s = r.summary()
                row.update({k: s[k] for k in ("run_id", "status", "protocol", "start_time", "end_time",
                                               "operations", "reads", "resumes")})
                row["layout_version"] = r.layout_version
                if s["needs_repair"]:
                    row["note"] = s["needs_repair"]
        except Exception as exc:  # listing must survive a bad file: one line, then the next file
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            text = text.removeprefix(f"{p}: ")  # the row names the file
            row.update({"status": "unreadable",
                        "error": text if isinstance(exc, ArchiveFormatError) else f"{type(exc).__name__}: {text}"})
        rows.append(row)
    cols = ["path", "run_id", "status", "protocol", "start_time", "end_time", "size_bytes", "operations",
            "reads", "resumes", "layout_version"]
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    return df[cols + [c for c in df.columns if c not in cols]]
