"""What the monitor page shows of one run, read from its archive as the runner writes it.

A :class:`RunWatch` keeps the archive open read-only (SWMR, and no HDF5 file lock, so a
``--resume`` can open the file while the page is up) and follows it with
:meth:`lab.archive.Run.refresh`: it never writes and never takes the bench or writer lock.
Everything it reports comes from the file: status, the operations log, matrix reads,
drives and records; the instrument state is what the runner archived: each drive's line
levels and bus currents, the crosspoints an operation left closed (``relays_closed`` in its
settings), and the runner's read-back of every instrument before and after the run
(``bench_state.start`` / ``.end`` records). Two things are derived, and say how:

- progress and ETA: the plan is replayed on paper (the runner's dry check, from the
  protocol parameters and validated bench the archive holds), which gives every operation's estimated
  bench time; the fraction done is the bench time of the operations archived over the
  plan's, and the wall-clock ETA scales what remains by how fast this run's wall clock
  has gone per estimated bench second so far;
- recall accuracy of a training run: software recall of seeded noisy cues from each
  matrix read, through the one read-out W = G − λ·G0 (:mod:`protocols.readout`), as the
  demo scores it; a recall run's own accuracy records are shown as they are.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lab.archive import Run
from lab.config import parse_bench
from lab.preflight import dry_check
from protocols import hopfield_reference as ref
from protocols.base import load_protocol, registry
from protocols.common import PatternChoice
from protocols.readout import hopfield_weights

LOG_LINES = 25
CUES_PER_PATTERN = 20  # as the demo scores each read
CUE_FLIP_FRACTION = 0.1
CUE_SEED = 1
ACCURACY_FIELDS = ("bit_accuracy", "exact", "exact_recall", "correct", "correct_retrieval")
SAFE_TEXT = ("sources at 0 V, outputs off, relays open: the run ended without a cleanup error "
             "(this archive holds no read-back of the bench)")


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _clock(t_wall: float | None) -> str:
    if t_wall is None or not math.isfinite(t_wall):
        return ""
    return datetime.fromtimestamp(t_wall).strftime("%H:%M:%S")


def _volts(v: float) -> str:
    return f"{v:+.4g} V"


@dataclass
class PlanEstimate:
    """The dry check's per-operation bench-time estimates, as cumulative sums."""

    n_operations: int | None = None
    cumulative_s: np.ndarray | None = None  # cumulative_s[k] = estimated bench time of ops 0..k-1
    adaptive: bool = False
    error: str | None = None
    done: bool = False

    def at(self, k: int) -> float:
        assert self.cumulative_s is not None
        return float(self.cumulative_s[min(max(k, 0), len(self.cumulative_s) - 1)])


def estimate_plan(run: Run) -> PlanEstimate:
    """Replay the run's plan on paper (nothing is opened) for its per-operation bench times."""
    # the validated form is what ran (a bench given as an object in Python has no file text)
    cfg = parse_bench(run.info["bench_parsed"], source=f"{run.info['bench_parsed'].get('name', '')} (from {run.path})")
    proto = load_protocol(run.protocol_name, run.protocol_params)
    report = dry_check(cfg, run.bench_info, proto)
    est = np.asarray(report.op_estimates_s, dtype=float)
    return PlanEstimate(
        n_operations=None if report.truncated else int(report.n_operations),
        cumulative_s=np.concatenate([[0.0], np.cumsum(est)]), adaptive=bool(report.adaptive), done=True,
    )


class RunWatch:
    """One run archive followed live; :meth:`snapshot` is the page's JSON for it."""

    def __init__(self, path: str | Path, *, estimate: bool = True):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._run: Run | None = None
        self._key: tuple | None = None
        self._snap: dict[str, Any] | None = None
        self._plan = PlanEstimate(done=not estimate)
        self._estimating = False
        self._want_estimate = estimate
        self._weights: list[np.ndarray] = []  # W per read after the first (cached as reads arrive)
        self._weights_for: tuple | None = None
        self._accuracy: list[dict[str, Any]] = []
        self._patterns: tuple[tuple[str, ...], np.ndarray] | None | bool = False  # False: not looked up yet
        self._inode = -1
        self._opened_stamp: tuple[float, int] | None = None

    # ---------------------------------------------------------------- file

    def _open(self) -> Run:
        inode = self.path.stat().st_ino
        if self._run is not None and inode != self._inode:  # the file was replaced (a rerun of the demo ...)
            self.close()
            self._snap, self._key, self._weights, self._accuracy = None, None, [], []
            self._plan = PlanEstimate(done=not self._want_estimate)
        if self._run is None:
            self._opened_stamp = self._stamp()
            self._run = Run(self.path, locking=False)
            self._inode = inode
        else:
            self._run.refresh()
        stamp = self._stamp()
        if not self._run.swmr and stamp != self._opened_stamp:
            # opened without SWMR (no writer then, or one creating its tree): new rows show only on reopening
            run, self._run = self._run, None
            run.close()
            self._run = Run(self.path, locking=False)
            self._opened_stamp = stamp
        return self._run

    def _stamp(self) -> tuple[float, int]:
        st = self.path.stat()
        return (st.st_mtime, st.st_size)

    def close(self) -> None:
        with self._lock:
            if self._run is not None:
                self._run.close()
                self._run = None

    def run(self) -> Run:
        """The open, refreshed run (for the figure endpoints); hold :attr:`lock` while using it."""
        return self._open()

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    # ---------------------------------------------------------------- snapshot

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            try:
                run = self._open()
            except Exception as exc:  # a file being created, or not a run: say so, try again next poll
                self.close()
                return {"name": self.path.name, "path": str(self.path), "status": "unreadable",
                        "error": f"{type(exc).__name__}: {exc}", "updated": time.time()}
            key = (run.counts.get("commits"), run.status, run.committed_at)
            if run.status == "running":  # a finished run's progress is in the file itself
                self._maybe_estimate(run)
            if self._snap is not None and key == self._key and not self._estimating_changed():
                snap = dict(self._snap)
            else:
                snap = self._build(run)
                self._snap, self._key = snap, key
                self._estimated_seen = self._plan.done
            snap["now"] = time.time()
            snap["commit_age_s"] = snap["now"] - run.committed_at if run.committed_at > 0 else None
            snap["progress"] = self._progress(run, snap)
            return _clean(snap)

    def _estimating_changed(self) -> bool:
        return self._plan.done != getattr(self, "_estimated_seen", None)

    def _maybe_estimate(self, run: Run) -> None:
        if not self._want_estimate or self._plan.done or self._estimating:
            return
        self._estimating = True

        def work() -> None:
            try:
                with Run(self.path, locking=False) as own:  # its own handle: the estimate takes seconds
                    plan = estimate_plan(own)
            except Exception as exc:  # noqa: BLE001 - no estimate is not fatal: progress shows counts only
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                plan = PlanEstimate(error=f"{type(exc).__name__}: {first[:300]}", done=True)
            self._plan = plan
            self._estimating = False

        threading.Thread(target=work, name=f"estimate {self.path.name}", daemon=True).start()

    def _build(self, run: Run) -> dict[str, Any]:
        info = run.info
        ops = run.rows("log/operations")
        snap: dict[str, Any] = {
            "name": self.path.name, "path": str(self.path), "run_id": run.run_id, "protocol": run.protocol_name,
            "status": run.status, "error": run.error or None, "start_time": run.start_time,
            "end_time": run.end_time or None, "simulated": info["simulated"],
            "bench": info["bench_parsed"].get("name", ""), "host": info["host"], "counts": dict(run.counts),
            "parameters": run.protocol_params,
        }
        snap["current"] = self._current(run, ops)
        snap["log"] = self._log_tail(run, ops)
        snap["instrument"] = self._instrument(run, ops)
        snap["learned"] = self._learned(run)
        snap["accuracy"] = self._accuracy_rows(run)
        return snap

    # ---------------------------------------------------------------- progress

    def _progress(self, run: Run, snap: Mapping[str, Any]) -> dict[str, Any]:
        ops = run.rows("log/operations")
        plan = self._plan
        out: dict[str, Any] = {"ops_archived": int(len(ops)), "estimating": not plan.done,
                               "estimate_error": plan.error}
        if not len(ops):
            return out
        done = int(ops["index"][-1]) + 1  # plan operations finished (a resume continues the plan's indices)
        out["ops_done"] = done
        bench_elapsed = float(ops["t_bench"][-1] + ops["duration"][-1])
        out["bench_elapsed_s"] = bench_elapsed
        if snap["status"] == "complete":  # the whole plan ran: no estimate needed
            out.update(ops_total=done, fraction=1.0, bench_total_s=bench_elapsed, wall_eta_s=0.0,
                       estimating=False, estimate_error=None)
            return out
        if snap["status"] != "running":
            out.update(estimating=False)
        if plan.cumulative_s is None or plan.n_operations is None or plan.adaptive:
            if plan.adaptive:
                out["note"] = "an adaptive protocol: its length is known only as it runs"
            return out
        total = plan.n_operations
        est_total = plan.at(total)
        est_done = plan.at(done)
        out.update(ops_total=total, fraction=est_done / est_total if est_total > 0 else done / max(total, 1),
                   bench_total_s=est_total)
        finished = snap["status"] != "running"
        if finished:
            out["wall_eta_s"] = 0.0 if snap["status"] == "complete" else None
            return out
        # wall seconds per estimated bench second, over this segment (a resume restarts the clock)
        seg = ops["segment"] == ops["segment"][-1]
        first = int(np.argmax(seg))
        est_seg = est_done - plan.at(int(ops["index"][first]))
        wall_seg = float(run.committed_at - ops["t_wall"][first])
        remaining_est = max(est_total - est_done, 0.0)
        if est_seg > 0 and wall_seg > 0:
            rate = wall_seg / est_seg
            eta = max(remaining_est * rate - (time.time() - run.committed_at), 0.0)
            out["wall_eta_s"] = eta
            out["wall_per_bench"] = rate
            out["finish_at"] = _clock(time.time() + eta)
        out["bench_eta_s"] = remaining_est
        return out

    # ---------------------------------------------------------------- operations

    def _doc(self, run: Run, row: np.void) -> dict[str, Any]:
        try:
            return run.json_at(row["json_offset"], row["json_length"])
        except Exception:  # noqa: BLE001 - a log line without its details is still a log line
            return {}

    def _describe(self, run: Run, row: np.void, doc: Mapping[str, Any]) -> str:
        kind = row["kind"].decode()
        op = doc.get("op", {})
        settings = doc.get("settings", {})
        if kind == "note":
            return str(op.get("text", ""))
        if kind == "record":
            return f"record {op.get('stream', '')}"
        if kind in ("read_matrix", "read_pair"):
            what = "matrix" if kind == "read_matrix" else f"pair {op.get('a')}–{op.get('b')}"
            v = settings.get("v_read")
            if not v:
                return f"read {what}"
            return f"read {what} at {v:.3g} V ({settings.get('scheme', '')}, {op.get('repeats', 1)}×)"
        if kind in ("apply", "pulse"):
            levels = op.get("line_voltages") or []
            vals = sorted({round(float(v), 6) for _, v in levels})
            width = op.get("width_s", op.get("duration_s"))
            count = op.get("count", 1)
            return (f"{kind} {len(levels)} lines at {', '.join(_volts(v) for v in vals)}"
                    + (f", {count}× {float(width):.3g} s" if width is not None else ""))
        if kind == "multiply":
            return f"multiply at {settings.get('v_read', float('nan')):.3g} V"
        if kind == "wait":
            return f"wait {float(op.get('seconds', 0.0)):.3g} s"
        if kind == "checkpoint":
            return "checkpoint (archive flushed; a resume restarts here)"
        return kind

    def _current(self, run: Run, ops: np.ndarray) -> dict[str, Any] | None:
        if not len(ops):
            return None
        row = ops[-1]
        doc = self._doc(run, row)
        nxt = None
        plan = self._plan
        idx = int(row["index"])
        if plan.cumulative_s is not None and idx + 2 < len(plan.cumulative_s):
            nxt = plan.at(idx + 2) - plan.at(idx + 1)
        return {"index": idx, "kind": row["kind"].decode(), "text": self._describe(run, row, doc),
                "t_wall": float(row["t_wall"]), "clock": _clock(float(row["t_wall"])),
                "duration_bench_s": float(row["duration"]), "next_estimated_bench_s": nxt}

    def _log_tail(self, run: Run, ops: np.ndarray) -> list[str]:
        lines = []
        for row in ops[-LOG_LINES:]:
            doc = self._doc(run, row)
            dur = float(row["duration"])
            lines.append(f"{_clock(float(row['t_wall']))}  #{int(row['index']):<5d} {row['kind'].decode():<11s} "
                         f"{self._describe(run, row, doc)}" + (f"  [{dur:.3g} s bench]" if dur > 0 else ""))
        if run.status != "running":
            lines.append(f"{_clock(run.committed_at)}  run {run.status}" + (f": {run.error}" if run.error else ""))
        return lines

    def _instrument(self, run: Run, ops: np.ndarray) -> dict[str, Any]:
        """What the archive says of the instruments: the last drive's line levels and bus
        currents, the crosspoints left closed, the last read's settings, and the end state."""
        out: dict[str, Any] = {}
        status, error = run.status, run.error or ""
        confirmed = _bench_states(run)
        end, start = confirmed.get("end"), confirmed.get("start")
        if end is not None:
            out["state"] = f"after the run, {_state_text(end)}"
            out["safe"] = bool(end.get("safe"))
        elif status == "running":
            out["state"] = ("running: between operations every source is held at 0 V; "
                            "the last drive and the relays it left closed are below"
                            + (f". Before the run, {_state_text(start)}" if start is not None else ""))
        elif status == "interrupted":
            out["state"] = ("UNKNOWN: the writer died (killed, or the power went) before the runner could "
                            "record the bench's end state; check the outputs and relays before touching the sample")
            out["safe"] = False
        elif "cleanup failed" in error:
            out["state"] = f"NOT confirmed safe: {error}"
            out["safe"] = False
        else:  # archives written before the runner recorded what it confirmed
            out["state"] = f"run {status}: {SAFE_TEXT}"
            out["safe"] = True
        names = run.line_names
        found_relays = found_drive = found_read = False
        for row in ops[::-1][:2000]:
            kind = row["kind"].decode()
            if kind in ("note", "record", "checkpoint"):
                continue
            doc = self._doc(run, row)
            settings = doc.get("settings", {})
            if not found_relays and "relays_closed" in settings:
                out["relays_closed"] = list(settings["relays_closed"])
                out["relays_after"] = int(row["index"])
                found_relays = True
            if not found_drive and kind in ("apply", "pulse") and row["table"].decode() == "applies":
                lv = run.rows("apply/line_voltages")[int(row["row"])]
                out["drive"] = {
                    "index": int(row["index"]), "kind": kind, "clock": _clock(float(row["t_wall"])),
                    "levels": _grouped(names, lv),
                    "floating": [names[i] for i, v in enumerate(lv) if not np.isfinite(v)],
                    "bus_currents_A": (doc.get("result") or {}).get("bus_currents", {}),
                    "timeline": (doc.get("result") or {}).get("timeline", [])[:12],
                }
                found_drive = True
            if not found_read and kind in ("read_matrix", "read_pair", "multiply"):
                out["read"] = {"index": int(row["index"]), "kind": kind, "v_read_V": settings.get("v_read"),
                               "scheme": settings.get("scheme"), "nplc": settings.get("nplc")}
                found_read = True
            if found_relays and found_drive and found_read:
                break
        if status != "running" and out.get("safe"):
            out["relays_closed_now"] = []
        return out

    # ---------------------------------------------------------------- learned change, accuracy

    def patterns(self, run: Run) -> tuple[tuple[str, ...], np.ndarray] | None:
        if self._patterns is False:
            self._patterns = None
            p = run.protocol_params.get("patterns")
            if isinstance(p, Mapping):
                try:
                    names, x = PatternChoice.model_validate(p).load()
                    if x.shape[1] == run.info["n_neurons"]:
                        self._patterns = (names, x)
                except Exception:  # noqa: BLE001 - a run whose patterns cannot be rebuilt gets no score
                    self._patterns = None
        return self._patterns or None

    def learned(self, run: Run) -> tuple[np.ndarray, list[str], str]:
        """(matrices, labels, kind): the read-out W of each read after a before-training first
        read ("W"), else the raw conductance matrices ("G"); in S."""
        reads = run.reads
        k = len(reads)
        epochs = reads["epoch"].to_numpy(dtype=float)
        labels = [f"read {i}" + (f", epoch {int(e)}" if np.isfinite(e) else "") for i, e in enumerate(epochs)]
        baseline_ok = k >= 2 and not (np.isfinite(epochs[0]) and epochs[0] > 0)
        if not baseline_ok:
            return run.conductance.values, labels, "G"
        key = (run.run_id, k)
        if self._weights_for != key:
            g = run.g.values
            while len(self._weights) < k - 1:
                i = len(self._weights) + 1
                self._weights.append(hopfield_weights(run.bench_info, g[i], g[0]))
            self._weights_for = key
        return np.array(self._weights[: k - 1]), labels[1:], "W"

    def _learned(self, run: Run) -> dict[str, Any]:
        k = run.counts.get("reads", 0)
        if not k:
            return {"reads": 0, "kind": None, "label": "no matrix read yet"}
        mats, labels, kind = self.learned(run)
        last = mats[-1]
        finite = last[np.isfinite(last)]
        return {
            "reads": int(k), "kind": kind, "label": labels[-1],
            "what": ("learned change W = G − λ·G0 (λ = ΣG/ΣG0, G0 the first read)" if kind == "W"
                     else "conductance G (no read before training to take the change from)"),
            "max_abs_uS": float(np.max(np.abs(finite)) * 1e6) if finite.size else None,
            "mean_G_uS": float(np.nanmean(run.conductance.values[-1]) * 1e6),
        }

    def _accuracy_rows(self, run: Run) -> dict[str, Any]:
        declared = self._declared_accuracy(run)
        if declared is not None:
            return declared
        pats = self.patterns(run)
        if pats is None or run.counts.get("reads", 0) < 2:
            return {"rows": [], "source": None}
        mats, labels, kind = self.learned(run)
        if kind != "W":
            return {"rows": [], "source": None}
        _, x = pats
        cues, targets = ref.make_cues(x, CUES_PER_PATTERN, CUE_FLIP_FRACTION, CUE_SEED)
        epochs = run.reads["epoch"].to_numpy(dtype=float)
        if not self._accuracy:
            sc = ref.evaluate(np.zeros((x.shape[1], x.shape[1])), x, cues, targets, mode="async", max_steps=30)
            self._accuracy.append({"epoch": 0.0, "bit_accuracy": sc.bit_accuracy, "exact": sc.exact})
        while len(self._accuracy) < len(mats) + 1:
            i = len(self._accuracy)  # read i (W from read i and read 0)
            sc = ref.evaluate(mats[i - 1], x, cues, targets, mode="async", max_steps=30)
            e = epochs[i] if np.isfinite(epochs[i]) else float(i)
            self._accuracy.append({"epoch": float(e), "bit_accuracy": sc.bit_accuracy, "exact": sc.exact})
        return {"rows": list(self._accuracy),
                "source": (f"software recall of {len(cues)} noisy cues ({CUE_FLIP_FRACTION:.0%} of the bits "
                           f"flipped, seed {CUE_SEED}) from each measured matrix through W = G − λ·G0; "
                           "epoch 0: the cues as given")}

    def _declared_accuracy(self, run: Run) -> dict[str, Any] | None:
        cls = registry().get(str(run.protocol_name or ""))
        figures: Mapping[str, str] = getattr(cls, "figures", {}) if cls is not None else {}
        streams = [s for s, kind in figures.items() if kind == "accuracy" and s in run.streams]
        if not streams:
            return None
        rows = []
        for stream in streams:
            df = run.records(stream)
            cols = [c for c in df.columns if c in ACCURACY_FIELDS]
            epochs = df["epoch"] if "epoch" in df.columns else run.epoch_at(df["seq"].to_numpy())
            for k, (_, r) in enumerate(df.iterrows()):
                # a recall run has no epochs: its rows are numbered, not labelled "epoch 1"
                rows.append({"epoch": _finite(np.asarray(epochs)[k]), "record": k + 1,
                             **{c: _finite(r[c]) for c in cols}})
        return {"rows": rows, "source": f"the run's own records ({', '.join(streams)})"}


def _bench_states(run: Run) -> dict[str, dict[str, Any]]:
    """The last ``bench_state.<phase>`` record of each phase: what the runner read back from
    every instrument before ("start") and after ("end") the run."""
    out: dict[str, dict[str, Any]] = {}
    for rec in run.rows("log/records"):
        stream = rec["stream"].decode("utf-8", "replace")
        if stream.startswith("bench_state."):
            try:
                out[stream.split(".", 1)[1]] = run.json_at(rec["json_offset"], rec["json_length"])
            except Exception:  # noqa: BLE001 - an unreadable record is no confirmation
                continue
    return out


def _state_text(state: Mapping[str, Any]) -> str:
    confirmed = state.get("confirmed") or {}
    unconfirmed = state.get("unconfirmed") or {}
    text = "confirmed by reading back: " + ("; ".join(f"{k}: {v}" for k, v in confirmed.items()) or "nothing")
    if unconfirmed:
        text += ". NOT confirmed: " + "; ".join(f"{k}: {v}" for k, v in unconfirmed.items())
    if not state.get("safe", False):
        text = "NOT safe — " + text
    return text


def _grouped(names: list[str], volts: np.ndarray) -> list[dict[str, Any]]:
    """Driven lines grouped by level (V), highest first; lines at 0 V and floating ones left out."""
    groups: dict[float, list[str]] = {}
    for name, v in zip(names, volts):
        if np.isfinite(v) and v != 0.0:
            groups.setdefault(round(float(v), 9), []).append(name)
    return [{"V": v, "lines": groups[v]} for v in sorted(groups, reverse=True)]


def _clean(obj: Any) -> Any:
    """JSON the browser parses: NaN and infinities become null, NumPy values plain."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


# ---------------------------------------------------------------------------- folders


class FolderWatch:
    """The run archives of a folder; each listed from its own file, re-read only when it changed."""

    def __init__(self, folder: str | Path, pattern: str = "*.h5"):
        self.folder = Path(folder)
        self.pattern = pattern
        self._rows: dict[Path, tuple[tuple[float, int], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def runs(self) -> list[dict[str, Any]]:
        out = []
        with self._lock:
            for p in sorted(self.folder.glob(self.pattern)):
                try:
                    st = p.stat()
                except OSError:
                    continue
                stamp = (st.st_mtime, st.st_size)
                cached = self._rows.get(p)
                if cached is None or cached[0] != stamp or cached[1].get("status") == "running":
                    cached = (stamp, _list_row(p, st.st_size, st.st_mtime))
                    self._rows[p] = cached
                out.append(cached[1])
        out.sort(key=lambda r: (r.get("start_time") or "", r["name"]), reverse=True)
        return _clean(out)

    def default(self) -> str | None:
        """The run a page opens on: a running one if any, else the newest."""
        runs = self.runs()
        running = [r for r in runs if r.get("status") == "running"]
        pick = running or runs
        return max(pick, key=lambda r: r["mtime"])["name"] if pick else None


def _list_row(p: Path, size: int, mtime: float) -> dict[str, Any]:
    row: dict[str, Any] = {"name": p.name, "size_bytes": size, "mtime": mtime}
    try:
        with Run(p, locking=False) as r:
            row.update(run_id=r.run_id, status=r.status, protocol=r.protocol_name, start_time=r.start_time,
                       end_time=r.end_time or None, operations=r.counts.get("operations"),
                       reads=r.counts.get("reads"))
    except Exception as exc:  # noqa: BLE001 - a bad file is listed, not hidden
        row.update(status="unreadable", error=f"{type(exc).__name__}: {exc}")
    return row
