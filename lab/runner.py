"""The runner: executes a protocol's plan and alone owns safety, timing, progress and cleanup.

``Runner(bench, observers=[...]).run(protocol)``:

1. dry-checks a non-adaptive protocol on a :class:`lab.bench.PaperBench` (every operation
   through the same crossbar and safety guard, nothing sent): a bad parameter fails
   there, before any instrument is touched;
2. takes the bench lock (one runner per instrument);
3. puts the bench in a known safe state, then sets limits and turns outputs on at 0 V;
4. runs ``protocol.steps()``: each operation is checked, executed through the crossbar
   and its result sent back; observers (the archive) see every operation and checkpoint;
5. on every exit — normal, exception, Ctrl-C, SIGTERM, an instrument that stops
   answering — sources go to 0 V, outputs off, relays open, each step attempted.
"""
from __future__ import annotations

import dataclasses
import logging
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from lab import __version__
from lab.bench import Bench, PaperBench
from sim_backend import load_preset
from lab.crossbar import Crossbar
from lab.errors import HopbenchError, PlanRejected, RetryPolicy, RunAborted, Terminated
from lab.lock import BenchLock
from lab.observer import NO_PROGRESS, TWIN_STATE, OperationRecord, ProgressSink, RunInfo, RunObserver, RunStatus
from lab.operations import (
    Apply, Checkpoint, Multiply, Note, Operation, Pulse, ReadMatrix, ReadPair, Record, Wait,
)
from lab.opcheck import check_operation, effective_v_read
from lab.safety import GuardedActuator, SafetyGuard, make_safe

log = logging.getLogger("hopbench.runner")


@dataclass
class DryCheckReport:
    """What a protocol will do to the bench, estimated before anything is sent."""

    protocol: str
    n_operations: int
    counts: dict[str, int]  # operations by kind
    bench_time_s: float  # timing model: integration, settling, latency, widths, waits
    relay_operations: int
    commands: int
    measurements: int
    charge_C: float  # through all driven devices, at the nominal conductance
    energy_J: float
    max_device_V: float
    write_time_s: float  # time some device spends above the read ceiling
    g_nominal_S: float
    adaptive: bool  # results were placeholders: later operations may differ on the bench
    truncated: bool = False  # stopped at max_operations
    op_estimates_s: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("op_estimates_s")
        return d


@dataclass
class RunResult:
    status: RunStatus
    n_operations: int
    bench_time_s: float
    estimated_time_s: float  # timing model's account of what was executed
    relay_operations: int
    commands: int
    measurements: int
    retries: int
    records: list[tuple[str, dict[str, Any]]]  # (stream, values) of every Record operation
    returned: Any = None  # what steps() returned
    error: str | None = None
    last_checkpoint: dict[str, Any] | None = None
    last_checkpoint_index: int | None = None
    wall_time_s: float = 0.0
    estimate: DryCheckReport | None = None
    notes: list[str] = field(default_factory=list)  # the protocol's Notes, in order


_READS = (ReadPair, ReadMatrix, Multiply)


def execute(op: Operation, xbar: Crossbar, guard: SafetyGuard) -> Any:
    """One operation through the crossbar, in the scope its kind allows."""
    cfg = xbar.config
    if isinstance(op, Apply):
        with guard.scoped("write"):
            return xbar.apply(op.voltages(), op.duration_s, op.others)
    if isinstance(op, Pulse):
        with guard.scoped("write"):
            return xbar.pulse(op.voltages(), op.width_s, op.count, op.period_s, op.others)
    if isinstance(op, ReadPair):
        with guard.scoped("read"):
            return xbar.read_pair(int(op.a), int(op.b), effective_v_read(op, cfg), op.repeats, op.scheme)
    if isinstance(op, ReadMatrix):
        with guard.scoped("read"):
            return xbar.read_matrix(op.devices, effective_v_read(op, cfg), op.repeats, op.scheme)
    if isinstance(op, Multiply):
        with guard.scoped("read"):
            return xbar.multiply(op.pattern, op.neurons, effective_v_read(op, cfg))
    if isinstance(op, Wait):
        with guard.scoped("idle"):
            xbar.wait(op.seconds)
            return None
    if isinstance(op, (Checkpoint, Note, Record)):
        return None
    raise HopbenchError(f"unknown operation {op!r}: a protocol may only yield lab.operations objects")


def _settings(op: Operation, cfg: Any, act: GuardedActuator, before: dict[str, float]) -> dict[str, Any]:
    s: dict[str, Any] = {
        "nplc": cfg.timing.nplc,
        "relay_operations": act.relay_operations - before["relay_operations"],
        "commands": act.commands - before["commands"],
        "measurements": act.measurements - before["measurements"],
        "retries": act.retries - before["retries"],
        "estimated_s": act.estimated_s - before["estimated_s"],
    }
    if isinstance(op, _READS):
        s["v_read"] = effective_v_read(op, cfg)
        s["scheme"] = getattr(op, "scheme", "guarded")
    return s


def _counters(act: GuardedActuator) -> dict[str, float]:
    return {"relay_operations": act.relay_operations, "commands": act.commands,
            "measurements": act.measurements, "retries": act.retries, "estimated_s": act.estimated_s}


def _git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=2)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM becomes a Terminated exception in the main thread, so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated("SIGTERM received")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """Hold Ctrl-C and SIGTERM while the bench is being made safe; the caller re-raises."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    olds = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for s, old in olds.items():
            signal.signal(s, old)


def dry_check(cfg: Any, info: Any, protocol: Any, *, g_nominal: float | None = None,
              resume: Mapping[str, Any] | None = None, max_operations: int = 2_000_000) -> DryCheckReport:
    """Replay the plan on paper: every operation checked, bench time and dose estimated.

    Raises :class:`PlanRejected` (with the operation's index) at the first operation
    that would break a limit or cannot be routed. Nothing is sent to any instrument.
    """
    paper = PaperBench(cfg, g_nominal)
    guard = SafetyGuard(cfg)
    paper.guard = guard
    act = GuardedActuator(guard, paper, paper.timing)
    xbar = Crossbar(act, cfg)
    xbar.prepare()
    counts: Counter[str] = Counter()
    op_est: list[float] = []
    check_parameters(info, protocol)
    gen = protocol.steps(info, resume=resume)
    result: Any = None
    index = 0
    truncated = False
    try:
        while True:
            try:
                op = gen.send(result) if index else next(gen)
            except StopIteration:
                break
            except Exception as exc:
                raise PlanRejected(index, "protocol", exc) from exc
            if index >= max_operations:
                truncated = True
                break
            t0 = act.estimated_s
            try:
                check_operation(op, cfg)
                result = execute(op, xbar, guard)
            except Exception as exc:
                raise PlanRejected(index, getattr(op, "kind", type(op).__name__), exc) from exc
            counts[op.kind] += 1
            op_est.append(act.estimated_s - t0)
            index += 1
    finally:
        gen.close()
    return DryCheckReport(
        protocol=getattr(protocol, "name", type(protocol).__name__),
        n_operations=index,
        counts=dict(counts),
        bench_time_s=act.estimated_s,
        relay_operations=act.relay_operations,
        commands=act.commands,
        measurements=act.measurements,
        charge_C=paper.charge_C,
        energy_J=paper.energy_J,
        max_device_V=paper.max_device_V,
        write_time_s=paper.write_time_s,
        g_nominal_S=paper.g,
        adaptive=bool(getattr(protocol, "adaptive", False)),
        truncated=truncated,
        op_estimates_s=op_est,
    )

def check_parameters(info: Any, protocol: Any) -> None:
    check = getattr(protocol, "check", None)
    if check is None:
        return
    try:
        check(info)
    except Exception as exc:
        raise PlanRejected(0, "parameters", exc) from exc


@dataclass
class _Session:
    """One run's moving parts and tallies, shared by its loop and its cleanup."""

    info: RunInfo
    guard: SafetyGuard
    act: GuardedActuator
    xbar: Crossbar
    t0: float  # bench clock at the start, s
    wall0: float  # monotonic wall clock at the start, s
    started: list[RunObserver] = field(default_factory=list)
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    last_cp: tuple[int, dict[str, Any]] | None = None
    n_ops: int = 0
    returned: Any = None
    notes: list[str] = field(default_factory=list)


class Runner:
    """Runs protocols on one bench. Thread-safe controls: pause(), resume(), abort()."""

    def __init__(self, bench: Bench, observers: Sequence[RunObserver] = (), *, progress: ProgressSink | None = None,
                 retry: RetryPolicy | None = None, lock: bool = True, check: bool = True,
                 max_check_operations: int = 2_000_000) -> None:
        self.bench = bench
        self.config = bench.config
        self.observers = list(observers)
        self.progress = progress or NO_PROGRESS
        self.retry = retry or RetryPolicy()
        self.use_lock = lock
        self.check = check
        self.max_check_operations = max_check_operations
        self._paused = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._abort = threading.Event()
        self.last_result: RunResult | None = None

    # ------------------------------------------------------------ controls
    def pause(self) -> None:
        """Stop before the next operation (every source is at 0 V between operations)."""
        self._running.clear()
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()
        self._running.set()

    def abort(self) -> None:
        """Stop at the next operation boundary (or cut a wait short); the run ends 'aborted'."""
        self._abort.set()
        self._running.set()
        interrupt = getattr(self.bench.clock, "interrupt", None)
        if interrupt is not None:
            interrupt.set()

    # ------------------------------------------------------------ dry check
    def dry_check(self, protocol: Any, *, g_nominal: float | None = None,
                  resume: Mapping[str, Any] | None = None) -> DryCheckReport:
        """Replay the plan on paper (see :func:`dry_check`); nothing is sent."""
        return dry_check(self.config, self.bench.info, protocol, g_nominal=g_nominal, resume=resume,
                         max_operations=self.max_check_operations)

    def _check_parameters(self, protocol: Any) -> None:
        check_parameters(self.bench.info, protocol)

    # ------------------------------------------------------------ run
    def run_info(self, protocol: Any, run_id: str | None = None) -> RunInfo:
        cfg = self.config
        seeds = dict(protocol.seeds()) if hasattr(protocol, "seeds") else {}
        preset = None
        if self.bench.simulated:
            seeds["simulation.seed"] = cfg.simulation.seed
            try:
                preset = load_preset(cfg.simulation.preset).model_dump()
            except Exception:  # noqa: BLE001 - provenance only
                preset = {"name": cfg.simulation.preset}
        return RunInfo(
            run_id=run_id or f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
            protocol_name=getattr(protocol, "name", type(protocol).__name__),
            protocol_params=protocol.parameters() if hasattr(protocol, "parameters") else {},
            bench_text=cfg.text,
            bench_parsed=cfg.model_dump(mode="json"),
            bench=self.bench.info,
            seeds=seeds,
            software_version=__version__,
            git_revision=_git_revision(),
            host=socket.gethostname(),
            start_time=datetime.now(timezone.utc).astimezone().isoformat(),
            simulated=self.bench.simulated,
            sim_preset=preset,
        )

    def run(self, protocol: Any, resume: Mapping[str, Any] | None = None, *, start_index: int = 0,
            run_id: str | None = None, sample_state: Mapping[str, Any] | None = None) -> RunResult:
        """Run ``protocol`` (from ``resume``, a checkpoint state, if given).

        ``sample_state``: a dry run's simulated sample as a checkpoint stored it; it is laid on
        the twin after the safe-state commands, just before the plan's first operation.

        Returns the result of a complete run or of one stopped by :meth:`abort`; any other
        exit (exception, Ctrl-C, SIGTERM) re-raises after cleanup (see ``last_result``).
        """
        if sample_state is not None and self.bench.twin is None:
            raise PlanRejected(0, "resume", ValueError(
                "the checkpoint holds a simulated sample's state: resume it as a dry run"))
        estimate = None
        if self.check and not getattr(protocol, "adaptive", False):
            estimate = self.dry_check(protocol, resume=resume)
        else:
            self._check_parameters(protocol)
        lock = BenchLock(self.bench.lock_keys) if self.use_lock else None
        if lock is not None:
            lock.acquire()
        try:
            with _sigterm_raises():
                return self._run(protocol, resume, start_index, run_id, estimate, sample_state)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, protocol: Any, resume: Mapping[str, Any] | None, start_index: int, run_id: str | None,
             estimate: DryCheckReport | None, sample_state: Mapping[str, Any] | None = None) -> RunResult:
        s = self._session(protocol, run_id)
        status: RunStatus = "running"
        error: str | None = None
        pending: BaseException | None = None
        gen = None
        try:
            gen = self._begin(s, protocol, resume, estimate, sample_state)
            self._loop(s, gen, start_index)
            status = "complete"
        except RunAborted as exc:
            status, error = "aborted", str(exc) or "aborted"
            if isinstance(exc, Terminated):
                pending = exc
        except KeyboardInterrupt as exc:
            status, error = "aborted", "interrupted (Ctrl-C)"
            pending = exc
        except BaseException as exc:  # noqa: BLE001 - cleanup below, then re-raised
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            pending = exc
            log.error("run %s failed at operation %d: %s", s.info.run_id, start_index + s.n_ops, error)
        finally:
            status, error, got = self._end(s, gen, status, error, estimate)
        if pending is not None:
            raise pending
        if got:
            raise KeyboardInterrupt if signal.SIGINT in got else Terminated("SIGTERM received during cleanup")
        if status == "failed" and error:
            raise HopbenchError(error)
        assert self.last_result is not None
        return self.last_result

    def _session(self, protocol: Any, run_id: str | None) -> "_Session":
        self._abort.clear()
        interrupt = getattr(self.bench.clock, "interrupt", None)
        if interrupt is not None:
            interrupt.clear()
        guard = SafetyGuard(self.config)
        act = GuardedActuator(guard, self.bench.backend(), self.bench.timing, self.retry)
        return _Session(info=self.run_info(protocol, run_id), guard=guard, act=act,
                        xbar=Crossbar(act, self.config), t0=self.bench.clock.now(), wall0=time.monotonic())

    def _begin(self, s: "_Session", protocol: Any, resume: Mapping[str, Any] | None,
               estimate: DryCheckReport | None, sample_state: Mapping[str, Any] | None) -> Any:
        """Observers started, the bench in its known safe state, the plan generator made."""
        bench = self.bench
        for obs in self.observers:
            obs.start(s.info)
            s.started.append(obs)
        log.info("run %s: %s on %s%s", s.info.run_id, s.info.protocol_name, self.config.name,
                 " (simulated)" if bench.simulated else "")
        self._known_safe_state(s.guard)
        s.xbar.prepare()
        self.progress.start(estimate.op_estimates_s if estimate else None, description=s.info.protocol_name)
        if sample_state is not None:
            # after the safe-state commands: the sample continues exactly where it stopped
            bench.twin.bench.restore_sample(sample_state)
        return protocol.steps(bench.info, resume=resume)

    def _loop(self, s: "_Session", gen: Any, index: int) -> None:
        result: Any = None
        first = True
        while True:
            self._checkpoint_controls()
            try:
                op = next(gen) if first else gen.send(result)
            except StopIteration as stop:
                s.returned = stop.value
                return
            first = False
            result = self._step(s, op, index)
            index += 1
            self.progress.update(s.n_ops, self.bench.clock.now() - s.t0)

    def _step(self, s: "_Session", op: Operation, index: int) -> Any:
        """Check, execute and report one operation; returns the result the plan receives."""
        bench, cfg, clock = self.bench, self.config, self.bench.clock
        t_wall = time.time()
        t_bench = clock.now()
        before = _counters(s.act)
        check_operation(op, cfg)
        result = execute(op, s.xbar, s.guard)
        archived = op
        if isinstance(op, Checkpoint) and bench.twin is not None:
            # a dry run's archived checkpoint carries the sample too, so a resume continues
            # the same film rather than a fresh one
            archived = dataclasses.replace(op, state={**op.state, TWIN_STATE: bench.twin.bench.sample_state()})
        s.n_ops += 1
        rec = OperationRecord(
            index=index, op=archived, result=result, t_wall=t_wall, t_bench=t_bench - s.t0,
            duration_bench=clock.now() - t_bench, settings=_settings(op, cfg, s.act, before),
            truth=bench.truth() if bench.twin is not None else None,
        )
        for obs in s.started:
            obs.operation(rec)
        if isinstance(op, Checkpoint):
            s.last_cp = (index, dict(op.state))
            for obs in s.started:
                obs.checkpoint(index, op.state)
        elif isinstance(op, Record):
            s.records.append((op.stream, dict(op.values)))
        elif isinstance(op, Note):
            s.notes.append(op.text)
            log.info("note: %s", op.text)
        return result

    def _end(self, s: "_Session", gen: Any, status: RunStatus, error: str | None,
             estimate: DryCheckReport | None) -> tuple[RunStatus, str | None, Any]:
        """Cleanup on every exit: plan closed, bench made safe, observers finished, result kept."""
        bench, clock, act = self.bench, self.bench.clock, s.act
        self.progress.stop()
        if gen is not None:
            try:
                gen.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing the protocol failed: %s", exc)
        with _signals_deferred() as got:
            errors = make_safe(bench.channels, bench.matrix, log)
            s.guard.reset_state()
        if errors:
            msg = "; ".join(f"{step}: {e}" for step, e in errors)
            log.error("bench NOT fully safe after run %s: %s", s.info.run_id, msg)
            if status == "complete":
                status, error = "failed", f"cleanup failed: {msg}"
            else:
                error = f"{error}; cleanup failed: {msg}"
        for obs in s.started:
            try:
                obs.finish(status, error)
            except Exception as exc:  # noqa: BLE001 - every observer gets its finish
                log.error("observer %r failed to finish: %s", obs, exc)
        self.last_result = RunResult(
            status=status, n_operations=s.n_ops, bench_time_s=clock.now() - s.t0,
            estimated_time_s=act.estimated_s, relay_operations=act.relay_operations,
            commands=act.commands, measurements=act.measurements, retries=act.retries,
            records=s.records, returned=s.returned, error=error,
            last_checkpoint=s.last_cp[1] if s.last_cp else None,
            last_checkpoint_index=s.last_cp[0] if s.last_cp else None,
            wall_time_s=time.monotonic() - s.wall0, estimate=estimate, notes=list(s.notes),
        )
        log.info("run %s %s: %d operations, %.3f s of bench time, %d relay operations",
                 s.info.run_id, status, s.n_ops, self.last_result.bench_time_s, act.relay_operations)
        return status, error, got

    def _known_safe_state(self, guard: SafetyGuard) -> None:
        """Whatever the bench was left in, start from sources 0 V, outputs off, relays open."""
        errors = make_safe(self.bench.channels, self.bench.matrix, log)
        guard.reset_state()
        if errors:
            step, exc = errors[0]
            raise HopbenchError(f"cannot bring the bench to a safe state before the run ({step}): {exc}") from exc

    def _checkpoint_controls(self) -> None:
        if self._abort.is_set():
            raise RunAborted("aborted on request")
        if self._paused.is_set():
            log.info("paused (every source at 0 V)")
            self._running.wait()
            if self._abort.is_set():
                raise RunAborted("aborted on request")
            log.info("resumed")
