"""hopbench runs as Bluesky event-model documents, live or replayed from an archive.

A Bluesky user's callbacks (``LiveTable``, ``LivePlot``, a databroker or tiled
serializer, any ``callback(name, doc)``) consume a hopbench run as they consume a
RunEngine's: one *start* document (the run's provenance), one *descriptor* per stream,
one *event* per measured operation, one *stop* (how the run ended). Documents are made
with event-model's ``compose_run`` and validated against its schemas as they are made.

Streams (data keys, units in each key's ``units``):

- ``primary``: every conductance-matrix read: ``conductance`` / ``conductance_errors``
  (N × N, S), ``g`` / ``g_errors`` / ``truth`` (per device, S; truth NaN on a real
  bench), ``v_read`` (V), ``t_bench`` and ``duration`` (s of bench time), ``op_index``;
- ``pulses``: every apply and pulse train: ``line_voltages`` (per line, V; NaN =
  floating), ``kind``, ``width``, ``period``, ``duration`` (s), ``count``;
- ``multiply`` (in-materio products: ``currents`` A, ``pattern``), ``pairs`` (single
  device reads), ``notes`` (what the protocol said);
- ``bench_state_start`` / ``bench_state_end``: what the runner confirmed of the bench before
  and after the run (outputs, levels, relays, read back from each instrument);
- ``record_<stream>``: each protocol record stream (recall results, accuracies, fits ...);
  nested values are flattened with ``_``, values that are neither numbers, strings nor
  rectangular numeric arrays travel as JSON text. A record whose keys or shapes differ
  from its stream's first gets a further descriptor, ``record_<stream>_2`` ...

:class:`DocumentObserver` is a :class:`lab.observer.RunObserver` (``run_protocol(...,
observers=[DocumentObserver(callback)])``, ``hopbench run --documents FILE``);
:func:`replay` makes the same documents from a finished (or running) archive
(``hopbench documents RUN.h5``). Live and replayed documents carry the same data; their
uids differ. A replay of a run still being written ends without a stop document, as the
run has not ended; one whose writer died (``interrupted``) ends with a ``fail`` stop saying so.
"""
from __future__ import annotations

import json
import logging
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping

import numpy as np

try:
    import event_model
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("Bluesky documents need the event-model package: pip install event-model") from exc

from lab.archive import Run
from lab.archive.jsonio import archived_json
from lab.observer import OperationRecord, RunInfo, RunStatus
from lab.operations import ApplyResult, MatrixResult, MultiplyResult, Note, PairResult, Record

log = logging.getLogger("hopbench.documents")

Callback = Callable[[str, dict], Any]
EXIT_STATUS = {"complete": "success", "aborted": "abort", "failed": "fail"}
SOURCE = "hopbench"
UNITS = {
    "conductance": "S", "conductance_errors": "S", "g": "S", "g_errors": "S", "truth": "S", "g_std": "S",
    "v_read": "V", "t_bench": "s", "duration": "s", "line_voltages": "V", "width": "s", "period": "s",
    "currents": "A", "current": "A",
}
Event = tuple[str, dict[str, Any], float]  # (stream, data, t_wall)


# ---------------------------------------------------------------------------- composing


class DocumentComposer:
    """Start, descriptors, events and stop of one run, each passed to ``callback(name, doc)``."""

    def __init__(self, callback: Callback):
        self.callback = callback
        self._run: Any = None
        self._descriptors: dict[str, list[tuple[tuple, Any]]] = {}

    def start(self, metadata: Mapping[str, Any], t: float) -> dict:
        self._run = event_model.compose_run(metadata=dict(metadata), time=t)
        self._descriptors = {}
        self.callback("start", self._run.start_doc)
        return self._run.start_doc

    def event(self, stream: str, data: Mapping[str, Any], t: float) -> dict:
        keys = {k: _data_key(k, v, stream) for k, v in data.items()}
        signature = tuple(sorted((k, d["dtype"], tuple(d["shape"])) for k, d in keys.items()))
        known = self._descriptors.setdefault(stream, [])
        bundle = next((b for sig, b in known if sig == signature), None)
        if bundle is None:
            name = stream if not known else f"{stream}_{len(known) + 1}"
            bundle = self._run.compose_descriptor(name=name, data_keys=keys, time=t)
            known.append((signature, bundle))
            self.callback("descriptor", bundle.descriptor_doc)
        values = {k: _plain(v) for k, v in data.items()}
        doc = bundle.compose_event(data=values, timestamps={k: t for k in values}, time=t)
        self.callback("event", doc)
        return doc

    def stop(self, status: str, reason: str, t: float) -> dict:
        doc = self._run.compose_stop(exit_status=EXIT_STATUS.get(status, "fail"), reason=reason or "", time=t)
        self.callback("stop", doc)
        return doc


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _data_key(key: str, value: Any, stream: str) -> dict[str, Any]:
    d: dict[str, Any] = {"source": f"{SOURCE}:{stream}", "shape": []}
    if isinstance(value, (bool, np.bool_)):
        d["dtype"] = "boolean"
    elif isinstance(value, (int, float, np.integer, np.floating)):
        d["dtype"] = "number"
    elif isinstance(value, str):
        d["dtype"] = "string"
    else:
        arr = np.asarray(value)
        d.update(dtype="array", shape=list(arr.shape), dtype_numpy=arr.dtype.str)
    unit = UNITS.get(key) or _suffix_unit(key)
    if unit:
        d["units"] = unit
    return d


def _suffix_unit(key: str) -> str | None:
    for suffix, unit in (("_S", "S"), ("_V", "V"), ("_A", "A"), ("_s", "s"), ("_ohm", "ohm")):
        if key.endswith(suffix):
            return unit
    return None


def _record_data(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A record's values as event data: nested keys joined with '_', arrays as rectangular
    numeric lists, anything else as JSON text. ``values`` as the archive stores them."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        key = _key(f"{prefix}{k}")
        if isinstance(v, Mapping):
            out.update(_record_data(v, key + "_"))
        elif v is None:
            out[key] = "null"
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            try:
                arr = np.asarray(v, dtype=float)
            except (TypeError, ValueError):
                arr = None
            out[key] = arr.tolist() if arr is not None and arr.dtype != object else json.dumps(v)
    return out


def _archived(obj: Any) -> Any:
    """``obj`` as the archive's JSON gives it back, so live and replayed documents agree."""
    return json.loads(archived_json(obj))


def _key(name: str) -> str:
    """A key event-model accepts: no '.' or '/' (``simulation.seed`` → ``simulation_seed``)."""
    return str(name).replace(".", "_").replace("/", "_")


def _safe_keys(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {_key(k): _safe_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_safe_keys(v) for v in obj]
    return obj


def _epoch_s(iso: str | None, fallback: float) -> float:
    try:
        return datetime.fromisoformat(str(iso)).timestamp() if iso else fallback
    except ValueError:
        return fallback


def _scan_id(run_id: str) -> int:
    """Bluesky callbacks (LiveTable ...) print a ``scan_id``: a run's start, YYYYMMDDhhmmss,
    read off its run id (``20261201-112526-4f1ff8``); 0 if the id has no such stamp."""
    digits = "".join(ch for ch in run_id.split("-", 2)[0] + (run_id.split("-")[1] if "-" in run_id else "")
                     if ch.isdigit())
    return int(digits) if len(digits) == 14 else 0


def _metadata(run_id: str, protocol: str, params: Any, seeds: Any, bench: Mapping[str, Any], simulated: bool,
              host: str, version: str, git: str | None, start_time: str, sizes: tuple[int, int, int],
              line_names: list[str], preset: Any) -> dict[str, Any]:
    n, d, lines = sizes
    return {
        "plan_name": protocol, "plan_type": "hopbench protocol", "scan_id": _scan_id(run_id),
        "hopbench_run_id": run_id, "protocol_params": _safe_keys(_archived(params)),
        "seeds": _safe_keys(_archived(seeds)), "bench": str(bench.get("name", "")), "simulated": bool(simulated),
        "sim_preset": (preset or {}).get("name") if isinstance(preset, Mapping) else None,
        "host": host, "software_version": version, "git_revision": git or None, "hopbench_start_time": start_time,
        "n_neurons": int(n), "n_devices": int(d), "n_lines": int(lines), "line_names": list(line_names),
        "hints": {"dimensions": [[["t_bench"], "primary"]]},
    }


# ---------------------------------------------------------------------------- events


def _read_event(matrix: Any, matrix_std: Any, g: Any, g_std: Any, truth: Any, v_read: float, t_bench: float,
                duration: float, index: int) -> dict[str, Any]:
    return {"conductance": np.asarray(matrix, float), "conductance_errors": np.asarray(matrix_std, float),
            "g": np.asarray(g, float), "g_errors": np.asarray(g_std, float), "truth": np.asarray(truth, float),
            "v_read": float(v_read), "t_bench": float(t_bench), "duration": float(duration), "op_index": int(index)}


def _pulse_event(kind: str, line_voltages: Any, width: float, count: int, period: float, duration: float,
                 t_bench: float, index: int) -> dict[str, Any]:
    return {"line_voltages": np.asarray(line_voltages, float), "kind": kind, "width": float(width),
            "count": int(count), "period": float(period), "duration": float(duration), "t_bench": float(t_bench),
            "op_index": int(index)}


def live_events(rec: OperationRecord, n_devices: int, device_of: Mapping[tuple[int, int], int]) -> list[Event]:
    """The events of one operation as the runner reports it."""
    op, res, t = rec.op, rec.result, rec.t_wall
    truth = rec.truth
    if isinstance(res, MatrixResult):
        tr = np.full(n_devices, np.nan) if truth is None else truth
        return [("primary", _read_event(res.matrix, res.matrix_std, res.g, res.g_std, tr, res.v_read, rec.t_bench,
                                        rec.duration_bench, rec.index), t)]
    if isinstance(res, ApplyResult):
        period = getattr(op, "period", None)
        return [("pulses", _pulse_event(op.kind, res.line_voltages,
                                        float(getattr(op, "width_s", getattr(op, "duration_s", math.nan))),
                                        int(getattr(op, "count", 1)), math.nan if period is None else float(period),
                                        res.duration_s, rec.t_bench, rec.index), t)]
    if isinstance(res, MultiplyResult):
        return [("multiply", {"currents": np.asarray(res.currents, float), "pattern": np.asarray(res.pattern, float),
                              "v_read": float(res.v_read), "t_bench": float(rec.t_bench), "op_index": rec.index}, t)]
    if isinstance(res, PairResult):
        a, b = int(getattr(op, "a", -1)), int(getattr(op, "b", -1))
        dev = device_of.get((min(a, b), max(a, b)), -1)
        tr = float(truth[dev]) if truth is not None and dev >= 0 else math.nan
        return [("pairs", {"a": a, "b": b, "device": dev, "g": float(res.g), "g_std": float(res.g_std),
                           "current": float(res.current), "v_read": float(res.v_read), "truth": tr,
                           "t_bench": float(rec.t_bench), "op_index": rec.index}, t)]
    if isinstance(op, Record):
        return [(f"record_{op.stream}", _record_data(_archived(op.values)), t)]
    if isinstance(op, Note):
        return [("notes", {"text": op.text, "op_index": rec.index}, t)]
    return []


def archived_events(run: Run) -> Iterator[Event]:
    """The events of an archive's operations, in the order they ran."""
    ops = run.operations
    arrays: dict[str, Any] = {}

    def arr(name: str, get: Callable[[], Any]) -> Any:
        if name not in arrays:
            arrays[name] = get()
        return arrays[name]

    for _, row in ops.iterrows():
        table, k, t, kind = row["table"], int(row["row"]), float(row["t_wall"]), row["kind"]
        op = row["op"]
        if table == "reads":
            reads = arr("reads", lambda: run.reads)
            r = reads.iloc[k]
            yield ("primary", _read_event(arr("G", lambda: run.conductance.values)[k],
                                          arr("E", lambda: run.conductance_errors.values)[k],
                                          arr("g", lambda: run.g.values)[k], arr("ge", lambda: run.g_errors.values)[k],
                                          arr("t", lambda: run.truth.values)[k], r["v_read"], r["t_bench"],
                                          r["duration"], int(r["index"])), t)
        elif table == "applies":
            a = arr("applied", lambda: run.applied)
            meta = arr("applies", lambda: run.rows("log/applies"))[k]
            yield ("pulses", _pulse_event(kind, a.values[k], meta["width"], meta["count"], meta["period"],
                                          meta["duration"], meta["t_bench"], int(meta["index"])), t)
        elif table == "multiplies":
            m = arr("multiply", lambda: run.multiply)
            meta = arr("multiplies", lambda: run.rows("log/multiplies"))[k]
            yield ("multiply", {"currents": m.values[k], "pattern": np.asarray(m.coords["pattern"].values[k], float),
                                "v_read": float(meta["v_read"]), "t_bench": float(meta["t_bench"]),
                                "op_index": int(meta["index"])}, t)
        elif table == "pairs":
            p = arr("pairs", lambda: run.rows("log/pairs"))[k]
            yield ("pairs", {"a": int(p["a"]), "b": int(p["b"]), "device": int(p["device"]), "g": float(p["g"]),
                             "g_std": float(p["g_std"]), "current": float(p["current"]),
                             "v_read": float(p["v_read"]), "truth": float(p["truth"]),
                             "t_bench": float(p["t_bench"]), "op_index": int(p["index"])}, t)
        elif table == "records":
            rec = arr("records", lambda: run.rows("log/records"))[k]
            stream = rec["stream"].decode("utf-8", "replace")
            yield (f"record_{stream}", _record_data(run.json_at(rec["json_offset"], rec["json_length"])), t)
        elif kind == "note":
            yield ("notes", {"text": str(op.get("text", "")), "op_index": int(row["index"])}, t)


def bench_states(run: Run) -> Iterator[Event]:
    """The archive's records of what the runner confirmed of the bench (``bench_state.<phase>``
    streams, written beside the operations rather than as one)."""
    rows = run.rows("log/records")
    for rec in rows:
        stream = rec["stream"].decode("utf-8", "replace")
        if stream.startswith("bench_state."):
            values = run.json_at(rec["json_offset"], rec["json_length"])
            yield (f"bench_state_{stream.split('.', 1)[1]}", _record_data(values), float(rec["t_wall"]))


# ---------------------------------------------------------------------------- live and replay


class DocumentObserver:
    """A run observer that emits the run's documents to ``callback(name, doc)`` as it runs.

    A failing callback never stops the run (the archive is the record): the error is
    logged, kept in :attr:`errors`, and no more documents are emitted for that run.
    """

    def __init__(self, callback: Callback):
        self.composer = DocumentComposer(callback)
        self.errors: list[str] = []
        self._active = False
        self._n_devices = 0
        self._device_of: dict[tuple[int, int], int] = {}

    def _guard(self, what: str, fn: Callable[[], Any]) -> None:
        if not self._active:
            return
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - see the class docstring
            self._active = False
            self.errors.append(f"{what}: {type(exc).__name__}: {exc}")
            log.error("Bluesky documents stopped at %s: %s", what, exc)

    def start(self, info: RunInfo) -> None:
        b = info.bench
        self._n_devices = b.n_devices
        self._device_of = {(min(a, c), max(a, c)): i for i, (a, c) in enumerate(b.devices.tolist())}
        meta = _metadata(info.run_id, info.protocol_name, info.protocol_params, info.seeds, info.bench_parsed,
                         info.simulated, info.host, info.software_version, info.git_revision, info.start_time,
                         (b.n_neurons, b.n_devices, b.n_lines), list(b.line_names), info.sim_preset)
        self._active = True
        self._guard("start", lambda: self.composer.start(meta, _epoch_s(info.start_time, 0.0)))

    def operation(self, record: OperationRecord) -> None:
        def emit() -> None:
            for stream, data, t in live_events(record, self._n_devices, self._device_of):
                self.composer.event(stream, data, t)

        self._guard(f"operation {record.index}", emit)

    def checkpoint(self, index: int, state: Mapping[str, Any]) -> None:
        pass

    def bench_state(self, phase: str, state: Mapping[str, Any]) -> None:
        """What the runner confirmed of the bench before (``start``) and after (``end``) the run."""
        import time

        data = _record_data(_archived(state))
        self._guard(f"bench state {phase}", lambda: self.composer.event(f"bench_state_{phase}", data, time.time()))

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        import time

        self._guard("stop", lambda: self.composer.stop(status, error or "", time.time()))
        self._active = False


def replay(path: str | Path | Run, callback: Callback) -> int:
    """Emit an archive's documents to ``callback(name, doc)``; returns how many events."""
    own = not isinstance(path, Run)
    run = Run(path, locking=False) if own else path
    try:
        info = run.info
        composer = DocumentComposer(callback)
        meta = _metadata(run.run_id, run.protocol_name, run.protocol_params, info["seeds"], info["bench_parsed"],
                         info["simulated"], info["host"], info["software_version"], info["git_revision"],
                         run.start_time, (info["n_neurons"], info["n_devices"], info["n_lines"]), run.line_names,
                         info["sim_preset"])
        composer.start(meta, _epoch_s(run.start_time, run.committed_at))
        states = list(bench_states(run))
        n = 0
        for stream, data, t in [e for e in states if e[0] == "bench_state_start"] + list(archived_events(run)) + \
                [e for e in states if e[0] != "bench_state_start"]:
            composer.event(stream, data, t)
            n += 1
        status = run.status
        if status == "interrupted":  # it will never end by itself: closed as failed, and why
            composer.stop("failed", "interrupted: the writer died before the run ended", run.committed_at)
        elif status != "running":
            composer.stop(status, run.error or "", _epoch_s(run.end_time, run.committed_at))
        return n
    finally:
        if own:
            run.close()


class JsonLinesDocuments(DocumentObserver):
    """Documents written as JSON lines, ``[name, doc]`` each (as suitcase-jsonl writes them),
    to a file or a text stream; also a run observer. NaN is written as ``NaN`` (Python JSON)."""

    def __init__(self, target: str | Path | IO[str]):
        if isinstance(target, (str, Path)):
            self._file: IO[str] = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._own = True
        else:
            self._file, self._own = target, False
        super().__init__(self.emit)

    def emit(self, name: str, doc: dict) -> None:
        self._file.write(json.dumps([name, doc], default=_plain) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._own:
            self._file.close()
        elif self._file is not sys.stdout:
            self._file.flush()

    def __enter__(self) -> "JsonLinesDocuments":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["DocumentComposer", "DocumentObserver", "JsonLinesDocuments", "archived_events", "bench_states",
           "live_events", "replay"]
