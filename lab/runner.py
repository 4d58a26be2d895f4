"""The runner: executes a protocol's plan and alone owns safety, timing, progress and cleanup.

``Runner(bench, observers=[...]).run(protocol)``:

1. dry-checks a non-adaptive protocol on a :class:`lab.bench.PaperBench` (every operation
   through the same crossbar and safety guard, nothing sent): a bad parameter fails
   there, before any instrument is touched;
2. takes the bench lock (one runner per instrument, keyed on the instruments' addresses and
   identities; a run that died holding it is reported);
3. puts the bench in a known safe state (links resynchronised, confirmed by read-back), then
   sets limits and turns outputs on at 0 V;
4. runs ``protocol.steps()``: each operation is checked, executed through the crossbar
   and its result sent back; observers (the archive) see every operation and checkpoint;
5. on every exit — normal, exception, Ctrl-C, SIGTERM, an instrument that stops
   answering — links are resynchronised, sources go to 0 V, outputs off, relays open, each
   step attempted and read back; the first signal stops the run, none stops the cleanup
   (:class:`_RunSignals`); ``RunResult.safety`` says what was confirmed, per instrument.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import tomllib
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from lab import __version__
from lab.bench import Bench
from sim_backend import load_preset
from lab.crossbar import Crossbar
from lab.errors import HopbenchError, PlanRejected, RetryPolicy, RunAborted, Terminated
from lab.lock import LOCAL_PREFIX, BenchLock, describe_owner
from lab.observer import NO_PROGRESS, TWIN_STATE, OperationRecord, ProgressSink, RunInfo, RunObserver, RunStatus
from lab.operations import (
    Checkpoint, Multiply, Note, Operation, ReadMatrix, ReadPair, Record,
)
from lab.opcheck import check_operation, effective_v_read
from lab import preflight
from lab.preflight import MAX_OPERATIONS, DryCheckReport, check_parameters, execute
from lab.safety import GuardedActuator, SafetyGuard, SafeState, secure

log = logging.getLogger("hopbench.runner")


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
    safety: SafeState | None = None  # what cleanup confirmed, instrument by instrument
    interrupted_by: str | None = None  # "SIGINT" / "SIGTERM" when a signal ended the run
    previous_owners: list[dict[str, Any]] = field(default_factory=list)  # runs that died holding the bench


_READS = (ReadPair, ReadMatrix, Multiply)


def _settings(op: Operation, cfg: Any, act: GuardedActuator, before: dict[str, float]) -> dict[str, Any]:
    s: dict[str, Any] = {
        "nplc": cfg.timing.nplc,
        "relay_operations": act.relay_operations - before["relay_operations"],
        "commands": act.commands - before["commands"],
        "measurements": act.measurements - before["measurements"],
        "retries": act.retries - before["retries"],
        "estimated_s": act.estimated_s - before["estimated_s"],
    }
    if s["relay_operations"]:
        # the crosspoints left closed after the operation (each change was acknowledged by the
        # matrix), so a reader of the archive knows the relay state without asking the bench
        s["relays_closed"] = sorted(act.closed)
    if isinstance(op, _READS):
        s["v_read"] = effective_v_read(op, cfg)
        s["scheme"] = getattr(op, "scheme", "guarded")
    return s


def _counters(act: GuardedActuator) -> dict[str, float]:
    return {"relay_operations": act.relay_operations, "commands": act.commands,
            "measurements": act.measurements, "retries": act.retries, "estimated_s": act.estimated_s}


def _git_revision() -> str | None:
    """hopbench's own revision: git's HEAD only if the repository ``lab`` lives in is
    hopbench's checkout (``lab/`` at its top, beside hopbench's pyproject.toml); an install
    inside some other repository (a lab's analysis repo, a venv in a project) gets
    ``installed <version>`` instead, never that repository's HEAD."""
    package_root = Path(__file__).resolve().parent.parent
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=package_root,
                             capture_output=True, text=True, timeout=2)
        lines = top.stdout.split() if top.returncode == 0 else []
        pyproject = package_root / "pyproject.toml"
        ours = (len(lines) == 2 and Path(lines[0]).resolve() == package_root and pyproject.is_file()
                and tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("name") == "hopbench")
        if ours:
            return lines[1]
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    return f"installed {__version__}"


class _RunSignals:
    """Ctrl-C and SIGTERM during one run, in the main thread: the first one stops the run, and
    nothing stops the cleanup.

    The first signal raises (KeyboardInterrupt / :class:`Terminated`) where the run stands,
    and disarms the handler itself, so no second signal can raise anywhere after it: not in
    the except clauses, not before the cleanup has begun, not in the cleanup. Once cleanup
    starts (:attr:`cleaning`) a signal is only acknowledged on stderr. Every signal is kept
    in :attr:`got` so the caller re-raises after cleanup. Inside :meth:`held` blocks (observers
    writing the archive) a signal waits for the block's end. Handlers run in the main thread
    between bytecodes (a blocking socket wait returns to run them), so a signal may cut an
    exchange between a query and its reply: the cleanup resynchronises every link first.
    """

    MESSAGE = "\ncleaning up — wait: the bench is being made safe (a further signal does not stop it)\n".encode()

    def __init__(self) -> None:
        self.got: list[int] = []
        self.armed = False
        self.cleaning = False
        self.holding = False
        self._old: dict[int, Any] = {}

    def handler(self, signum: int, frame: Any) -> None:
        self.got.append(signum)
        if self.armed and not self.cleaning and not self.holding:
            self._raise()
        if self.holding and not self.cleaning:
            return  # raised when the held block ends
        try:
            os.write(2, self.MESSAGE)  # not sys.stderr: the main thread may be inside a write to it
        except OSError:
            pass

    def _raise(self) -> None:
        self.armed = False
        if self.got[0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated("SIGTERM received")

    @contextmanager
    def held(self) -> Iterator[None]:
        """A signal waits for the end of the block (an observer writing the archive is never cut)."""
        if self.holding:
            yield
            return
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.got and self.armed and not self.cleaning:
            self._raise()

    @property
    def first(self) -> str | None:
        return None if not self.got else ("SIGINT" if self.got[0] == signal.SIGINT else "SIGTERM")

    @contextmanager
    def installed(self) -> Iterator["_RunSignals"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        self._old = {s: signal.signal(s, self.handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, old in self._old.items():
                signal.signal(s, old)


def dry_check(cfg: Any, info: Any, protocol: Any, *, g_nominal: float | None = None,
              resume: Mapping[str, Any] | None = None, max_operations: int = MAX_OPERATIONS,
              progress: Any = None) -> DryCheckReport:
    """Replay the plan on paper before anything is sent (see :mod:`lab.preflight`)."""
    return preflight.dry_check(cfg, info, protocol, g_nominal=g_nominal, resume=resume,
                               max_operations=max_operations, progress=progress)


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
        self._lock: BenchLock | None = None
        self._previous_owners: list[dict[str, Any]] = []
        self._signals = _RunSignals()  # replaced by each run's own

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
                         max_operations=self.max_check_operations, progress=self.progress)

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
            run_id: str | None = None, sample_state: Mapping[str, Any] | None = None,
            estimate: DryCheckReport | None = None) -> RunResult:
        """Run ``protocol`` (from ``resume``, a checkpoint state, if given).

        ``estimate``: the dry check the caller already ran on paper before opening the bench
        (so a bad parameter failed before any instrument was touched); it is not repeated.

        ``sample_state``: a dry run's simulated sample as a checkpoint stored it; it is laid on
        the twin after the safe-state commands, just before the plan's first operation.

        Returns the result of a complete run or of one stopped by :meth:`abort`; any other
        exit (exception, Ctrl-C, SIGTERM) re-raises after cleanup (see ``last_result``).
        """
        if sample_state is not None and self.bench.twin is None:
            raise PlanRejected(0, "resume", ValueError(
                "the checkpoint holds a simulated sample's state: resume it as a dry run"))
        if estimate is not None:
            pass
        elif self.check and not getattr(protocol, "adaptive", False):
            estimate = self.dry_check(protocol, resume=resume)
        else:
            self._check_parameters(protocol)
        self._previous_owners = []
        held = getattr(self.bench, "held_lock", None)  # the bench's, taken before it opened anything
        lock = own = None
        if self.use_lock:
            # one runner per bench object, whatever the instruments' locks (held by the bench or not)
            own = BenchLock([f"{LOCAL_PREFIX}bench-{id(self.bench):x}"]).acquire()
            try:
                lock = held if held is not None else BenchLock(self.bench.lock_keys, **self.bench.describe())
                if held is None:
                    lock.acquire()  # the addresses first: nothing more is asked of a bench someone else holds
            except BaseException:
                own.release()
                raise
        self._lock = lock
        try:
            if lock is not None:
                lock.acquire(self.bench.identity_keys())
                self._previous_owners = lock.dead_owners()
                lock.previous.clear()  # told once
                for owner in self._previous_owners:
                    log.warning("the run of %s ended without releasing this bench (killed, crashed or power "
                                "lost): making the bench safe before anything else",
                                describe_owner(owner))
            signals = self._signals = _RunSignals()
            with signals.installed():
                return self._run(protocol, resume, start_index, run_id, estimate, sample_state, signals)
        finally:
            self._lock = None
            if lock is not None and held is None:
                lock.release()
            if own is not None:
                own.release()

    def _run(self, protocol: Any, resume: Mapping[str, Any] | None, start_index: int, run_id: str | None,
             estimate: DryCheckReport | None, sample_state: Mapping[str, Any] | None,
             signals: "_RunSignals") -> RunResult:
        s = self._session(protocol, run_id)
        status: RunStatus = "running"
        error: str | None = None
        pending: BaseException | None = None
        gen = None
        try:
            signals.armed = True
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
            # no call before these two stores: a signal is handled only at a call or a jump,
            # so from here on none can raise (see _RunSignals)
            signals.cleaning = True
            signals.armed = False
            status, error = self._end(s, gen, status, error, estimate, signals)
        if pending is None and signals.got:
            pending = KeyboardInterrupt() if signals.got[0] == signal.SIGINT else \
                Terminated("SIGTERM received during cleanup")
        if pending is not None:
            try:
                pending.run_result = self.last_result  # type: ignore[attr-defined] # what cleanup confirmed
            except AttributeError:
                pass
            raise pending
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
        with self._signals.held():
            for obs in self.observers:
                obs.start(s.info)
                s.started.append(obs)
        log.info("run %s: %s on %s%s", s.info.run_id, s.info.protocol_name, self.config.name,
                 " (simulated)" if bench.simulated else "")
        archive = next((str(p) for p in (getattr(o, "path", None) for o in s.started) if p), None)
        if self._lock is not None and archive:
            self._lock.update(archive=archive)  # who to look for if this run dies holding the bench
        self._known_safe_state(s)
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
        with self._signals.held():
            for obs in s.started:
                obs.operation(rec)
            if isinstance(op, Checkpoint):
                for obs in s.started:
                    obs.checkpoint(index, op.state)
        if isinstance(op, Checkpoint):
            s.last_cp = (index, dict(op.state))
        elif isinstance(op, Record):
            s.records.append((op.stream, dict(op.values)))
        elif isinstance(op, Note):
            s.notes.append(op.text)
            log.info("note: %s", op.text)
        return result

    def _end(self, s: "_Session", gen: Any, status: RunStatus, error: str | None,
             estimate: DryCheckReport | None, signals: "_RunSignals") -> tuple[RunStatus, str | None]:
        """Cleanup on every exit: bench made safe and read back first, then the plan closed,
        observers told what was confirmed and finished, the result kept."""
        clock, act = self.bench.clock, s.act
        state = self._secure()
        s.guard.reset_state()
        try:
            self.progress.stop()
        except Exception as exc:  # noqa: BLE001 - a progress bar must not cost the cleanup
            log.warning("stopping the progress display failed: %s", exc)
        if gen is not None:
            try:
                gen.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing the protocol failed: %s", exc)
        if state.safe:
            log.info("run %s: %s", s.info.run_id, state.summary())
        else:
            log.error("run %s: %s", s.info.run_id, state.summary())
            if status == "complete":
                status, error = "failed", f"cleanup failed: {state.summary()}"
            else:
                error = f"{error}; cleanup failed: {state.summary()}"
        self._tell(s, "end", {**state.as_dict(), "interrupted_by": signals.first})
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
            safety=state, interrupted_by=signals.first, previous_owners=list(self._previous_owners),
        )
        log.info("run %s %s: %d operations, %.3f s of bench time, %d relay operations",
                 s.info.run_id, status, s.n_ops, self.last_result.bench_time_s, act.relay_operations)
        return status, error

    def _secure(self) -> SafeState:
        """Every link resynchronised, sources 0 V, outputs off, relays open, each read back."""
        b = self.bench
        return secure(b.channels, b.matrices, log, instruments=b.instruments)

    def _tell(self, s: "_Session", phase: str, state: Mapping[str, Any]) -> None:
        """Observers that keep the bench's confirmed state (the archive) get it."""
        for obs in s.started:
            keep = getattr(obs, "bench_state", None)
            if keep is None:
                continue
            try:
                keep(phase, dict(state))
            except Exception as exc:  # noqa: BLE001 - the record must not cost the cleanup
                log.error("observer %r failed to keep the bench state: %s", obs, exc)

    def _known_safe_state(self, s: "_Session") -> None:
        """Whatever the bench was left in, start from sources 0 V, outputs off, relays open."""
        state = self._secure()
        s.guard.reset_state()
        self._tell(s, "start", {**state.as_dict(), "previous_owners": self._previous_owners})
        if not state.safe:
            raise HopbenchError(f"cannot bring the bench to a safe state before the run: {state.summary()}")

    def _checkpoint_controls(self) -> None:
        if self._abort.is_set():
            raise RunAborted("aborted on request")
        if self._paused.is_set():
            log.info("paused (every source at 0 V)")
            self._running.wait()
            if self._abort.is_set():
                raise RunAborted("aborted on request")
            log.info("resumed")
