"""The pre-flight: a whole plan replayed on paper before anything is sent.

Every operation goes through the same operation checks, crossbar routing and safety guard
as on the bench, on a :class:`lab.bench.PaperBench` (nominal conductances, bench time and
dose added up). A bad parameter or a limit the plan would break fails here, with the
operation's index, before any instrument is touched.

Why it stays cheap for long plans: a training epoch repeats the same operations, and on
paper an operation's outcome (its result, the bench time, commands, relays and dose it
costs, the state it leaves) is a function of the operation and of the state it starts
from — nothing else (no physics, no noise). So an operation met again in a state already
seen is not replayed: its recorded outcome is applied. That is exact, not an estimate: the
same checks on the same inputs pass the same way. A late epoch that differs (a larger
amplitude, another pattern) is a different key and is replayed, and checked, in full.

Pulse trains whose only difference is the pulse width (an annealed dose gives every
presentation its own width) are reused too, as functions of the width: a pulse's control
flow does not depend on its width, only its hold durations, bench time, dose and timeline
do, and each of those is affine in it. After three full replays of one shape agree with an
affine model, a new width is evaluated from it — each hold it would make is checked against
``limits.pulse_width_max_s`` and must stay positive; any doubt replays the pulse in full
(:mod:`lab.preflight.pulse_shape`).

Bounded: a protocol that can say how long its plan is (``plan_size(bench)``) is refused in
well under a second when that exceeds ``max_operations``; otherwise the replay stops at
``max_operations`` (``truncated``) or refuses after ``max_wall_s``. The per-operation
estimates the progress bar needs are kept as 8 bytes each, the reuse tables are bounded
(and dropped together).
Progress is reported (``progress.checking(done, total)``) when the check is not instant.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

import numpy as np

from lab.bench import PaperBench
from lab.crossbar import Crossbar, clamp_queries
from lab.errors import HopbenchError, PlanRejected
from lab.opcheck import check_operation, check_pulse_timing, effective_v_read
from lab.operations import (
    Apply, Checkpoint, Multiply, Note, Operation, Pulse, ReadMatrix, ReadPair, Record, Wait,
)
from lab.safety import SafetyGuard, GuardedActuator
from lab.preflight.pulse_shape import PulseShape

MAX_OPERATIONS = 2_000_000
MAX_WALL_S = 300.0  # a check longer than this is refused: split the plan into shorter runs
_CACHE_ENTRIES = 4096  # outcomes kept (each a few kB): plenty for a periodic plan
_PROGRESS_AFTER_S = 0.3  # report progress only once the check is not instant
_PROGRESS_EVERY_S = 0.1


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
    op_estimates_s: Sequence[float] = field(default_factory=lambda: array("d"), repr=False)
    reused: int = 0  # operations whose recorded outcome was applied instead of a replay
    check_wall_s: float = 0.0  # how long this check took (wall clock)

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "op_estimates_s"}
        d["counts"] = dict(self.counts)
        return d


def check_parameters(info: Any, protocol: Any) -> None:
    check = getattr(protocol, "check", None)
    if check is None:
        return
    try:
        check(info)
    except Exception as exc:
        raise PlanRejected(0, "parameters", exc) from exc


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


def dry_check(cfg: Any, info: Any, protocol: Any, *, g_nominal: float | None = None,
              resume: Mapping[str, Any] | None = None, max_operations: int = MAX_OPERATIONS,
              max_wall_s: float = MAX_WALL_S, progress: Any = None, reuse: bool = True) -> DryCheckReport:
    """Replay the plan on paper: every operation checked, bench time and dose estimated.

    Raises :class:`PlanRejected` (with the operation's index) at the first operation
    that would break a limit or cannot be routed, and for a plan too large to check.
    ``reuse=False`` replays every operation (the reference the reuse is tested against).
    Nothing is sent to any instrument.
    """
    wall0 = time.monotonic()
    replay = _Replay(cfg, g_nominal, reuse)
    check_parameters(info, protocol)
    total = _plan_size(protocol, info, max_operations)
    report = _Reporter(progress, total, wall0)
    counts: Counter[str] = Counter()
    op_est = array("d")
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
            try:
                result, spent = replay.step(op)
            except Exception as exc:
                raise PlanRejected(index, getattr(op, "kind", type(op).__name__), exc) from exc
            counts[op.kind] += 1
            op_est.append(spent)
            index += 1
            if not index & 255:
                now = time.monotonic()
                if now - wall0 > max_wall_s:
                    raise PlanRejected(index, "pre-flight", TimeoutError(
                        f"the check of this plan passed {max_wall_s:g} s at operation {index:,}"
                        f"{f' of {total:,}' if total else ''}: too large to check before the run; "
                        f"split it into shorter runs (resume from a checkpoint)"))
                report.tick(index, now)
    finally:
        gen.close()
        report.done(index)
    paper, act = replay.paper, replay.act
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
        reused=replay.reused,
        check_wall_s=time.monotonic() - wall0,
    )


def _plan_size(protocol: Any, info: Any, max_operations: int) -> int | None:
    """The plan's length if the protocol can tell it; a plan too long is refused at once."""
    size_of = getattr(protocol, "plan_size", None)
    if size_of is None:
        return None
    try:
        n = size_of(info)
    except Exception:  # noqa: BLE001 - a size hint only; the replay still counts
        return None
    if n is None:
        return None
    n = int(n)
    if n > max_operations:
        raise PlanRejected(0, "plan", ValueError(
            f"the plan has {n:,} operations, more than the pre-flight checks ({max_operations:,}): "
            f"nothing was checked or sent; split it into shorter runs (resume from a checkpoint), "
            f"e.g. fewer epochs"))
    return n


class _Reporter:
    """Progress of the check, only once it is not instant, at most every 0.1 s."""

    def __init__(self, sink: Any, total: int | None, wall0: float) -> None:
        self.call = getattr(sink, "checking", None)
        self.total = total
        self.wall0 = wall0
        self.last = wall0
        self.shown = False

    def tick(self, done: int, now: float) -> None:
        if self.call is None or now - self.wall0 < _PROGRESS_AFTER_S or now - self.last < _PROGRESS_EVERY_S:
            return
        self.last = now
        self.shown = True
        self.call(done, self.total)

    def done(self, done: int) -> None:
        if self.call is not None and self.shown:
            self.call(done, done)


def _readonly(result: Any) -> Any:
    """A result that is handed out again must not be changed in place by a protocol."""
    if dataclasses.is_dataclass(result):
        for f in dataclasses.fields(result):
            v = getattr(result, f.name)
            if isinstance(v, np.ndarray):
                v.setflags(write=False)
    return result


@dataclass
class _Outcome:
    """What one operation did from one state: applied again instead of replaying it."""

    result: Any
    d_counts: tuple[int, int, int, int]  # commands, relay operations, measurements, retries
    d_float: tuple[float, float, float, float, float]  # estimated s, clock s, charge C, energy J, write s
    peak_V: float
    post: tuple  # guard levels, outputs, compliance, closed, write_elapsed, g_estimate key
    post_id: int  # ``post`` interned: the key of the state it leaves


class _Replay:
    """The paper bench, guard and crossbar of one check, with the reuse of outcomes.

    Keys are made cheap, not approximate: the state the paper bench is in is interned once
    (after a replay) and then known by its id, since a reused outcome leaves exactly its
    recorded state; a drive (the line voltages of a pulse or apply) is interned by value and
    then recognised by identity (a training plan yields the same tuple every epoch), so a
    35-line drive is hashed once, not at every operation.
    """

    def __init__(self, cfg: Any, g_nominal: float | None, reuse: bool) -> None:
        self.cfg = cfg
        self.paper = paper = PaperBench(cfg, g_nominal)
        self.guard = guard = SafetyGuard(cfg)
        paper.guard = guard
        self.act = act = GuardedActuator(guard, paper, paper.timing)
        self.xbar = Crossbar(act, cfg)
        self.xbar.prepare()
        self.reuse = reuse
        self.reused = 0
        self._ids = itertools.count()  # ids never repeat, so a forgotten one cannot alias a new one
        self._outcomes: dict[Any, _Outcome] = {}
        self._checked: dict[Any, None] = {}  # a set, bounded like the other tables
        self._states: dict[tuple, int] = {}
        self._state_of: dict[int, tuple] = {}
        self._g_keys: dict[bytes, int] = {}
        self._g_arrays: dict[int, np.ndarray] = {}
        self._drives: dict[tuple, int] = {}  # line voltages by value -> id
        self._drive_of: dict[int, tuple[tuple, int]] = {}  # id(line voltages) -> (them, id)
        self._shapes: dict[Any, PulseShape] = {}
        self._cur: int | None = None  # id of the state the paper bench is in; None: not known
        self._full = False
        self._holds: list[tuple[float, bool, float]] | None = None
        check_hold = guard.check_hold

        def recorded_check_hold(seconds: float) -> None:
            if self._holds is not None:
                self._holds.append((float(seconds), guard.writing(), guard.write_elapsed))
            check_hold(seconds)

        guard.check_hold = recorded_check_hold  # type: ignore[method-assign]
        self._pulse_limit = cfg.limits.pulse_width_max_s * (1 + 1e-9)
        self._command_s = act.timing.command_s

    # -------------------------------------------------------------- state
    def _forget(self) -> None:
        """Bounded memory: every table is dropped together (their keys refer to each other)."""
        for table in (self._outcomes, self._checked, self._states, self._state_of, self._g_keys,
                      self._g_arrays, self._drives, self._drive_of, self._shapes):
            table.clear()
        self._cur = None
        self._full = False

    def _add(self, table: Any, key: Any, value: Any) -> None:
        table[key] = value
        if len(table) > _CACHE_ENTRIES:
            self._full = True  # forgotten at the next operation, not while keys are in use

    def _g_key(self) -> int:
        g = self.xbar.g_estimate
        b = g.tobytes()
        k = self._g_keys.get(b)
        if k is None:
            k = next(self._ids)
            self._add(self._g_keys, b, k)
            self._g_arrays[k] = g.copy()
        return k

    def _state(self) -> tuple:
        g = self.guard
        return (tuple(g.levels.values()), tuple(g.outputs.values()), tuple(g.compliance.values()),
                frozenset(g.closed.ids), g.write_elapsed, self._g_key())

    def _intern(self, state: tuple) -> int:
        sid = self._states.get(state)
        if sid is None:
            sid = next(self._ids)
            self._add(self._states, state, sid)
            self._state_of[sid] = state
        return sid

    def _current(self) -> int:
        if self._cur is None:
            self._cur = self._intern(self._state())
        return self._cur

    def _restore(self, post_id: int, write_elapsed: float | None = None) -> None:
        """Put the paper bench in state ``post_id`` (with another ``write_elapsed``, if given):
        only the parts that differ from the present state are written."""
        g = self.guard
        post = self._state_of[post_id]
        cur = self._state_of[self._cur] if self._cur is not None else None
        levels, outputs, compliance, closed, we, gk = post
        if cur is None or cur[0] != levels:
            g.levels.update(zip(g.levels, levels))
        if cur is None or cur[1] != outputs:
            g.outputs.update(zip(g.outputs, outputs))
        if cur is None or cur[2] != compliance:
            g.compliance.update(zip(g.compliance, compliance))
        if cur is None or cur[3] != closed:
            g.closed.replace(closed)
        g.write_elapsed = we if write_elapsed is None else write_elapsed
        g.changed()
        if cur is None or cur[5] != gk:
            self.xbar.g_estimate[:] = self._g_arrays[gk]
        if write_elapsed is None or write_elapsed == we:
            self._cur = post_id
        else:
            self._cur = self._intern((levels, outputs, compliance, closed, write_elapsed, gk))

    def _tallies(self) -> tuple[tuple[int, int, int, int], tuple[float, float, float, float, float]]:
        a, p = self.act, self.paper
        return ((a.commands, a.relay_operations, a.measurements, a.retries),
                (a.estimated_s, p.clock.t, p.charge_C, p.energy_J, p.write_time_s))

    def _apply(self, d_counts: Sequence[int], d_float: Sequence[float], peak: float) -> None:
        a, p = self.act, self.paper
        a.commands += d_counts[0]
        a.relay_operations += d_counts[1]
        a.measurements += d_counts[2]
        a.retries += d_counts[3]
        a.estimated_s += d_float[0]
        p.clock.t += d_float[1]
        p.charge_C += d_float[2]
        p.energy_J += d_float[3]
        p.write_time_s += d_float[4]
        if peak > p.max_device_V:
            p.max_device_V = peak

    # -------------------------------------------------------------- keys
    def _drive(self, line_voltages: tuple) -> int:
        hit = self._drive_of.get(id(line_voltages))
        if hit is not None and hit[0] is line_voltages:  # the entry holds it: the id is not reused
            return hit[1]
        did = self._drives.get(line_voltages)
        if did is None:
            did = next(self._ids)
            self._add(self._drives, line_voltages, did)
        self._add(self._drive_of, id(line_voltages), (line_voltages, did))
        return did

    def _op_key(self, op: Operation) -> Any:
        """A key equal for two operations exactly when they are equal; None if unhashable."""
        try:
            t = type(op)
            if t is Pulse:
                key: Any = (Pulse, self._drive(op.line_voltages), op.width_s, op.count, op.period_s, op.others)
            elif t is Apply:
                key = (Apply, self._drive(op.line_voltages), op.duration_s, op.others)
            else:
                key = op
            hash(key)
        except TypeError:
            return None
        return key

    # -------------------------------------------------------------- one operation
    def step(self, op: Operation) -> tuple[Any, float]:
        """(the result the plan receives, the operation's bench time)."""
        if isinstance(op, (Checkpoint, Note, Record)):
            return None, 0.0
        if not self.reuse:
            t0 = self.act.estimated_s
            check_operation(op, self.cfg)
            return execute(op, self.xbar, self.guard), self.act.estimated_s - t0
        if self._full:
            self._forget()
        okey = self._op_key(op)
        if okey is None:  # an operation holding unhashable values: replayed, never reused
            t0 = self.act.estimated_s
            check_operation(op, self.cfg)
            self._cur = None
            return execute(op, self.xbar, self.guard), self.act.estimated_s - t0
        self._check(op, okey)
        sid = self._current()
        key = (okey, sid)
        hit = self._outcomes.get(key)
        if hit is not None:
            self._apply(hit.d_counts, hit.d_float, hit.peak_V)
            self._restore(hit.post_id)
            self.reused += 1
            return hit.result, hit.d_float[0]
        if type(op) is Pulse:
            # the widths where a hold starts or stops, or the control flow changes (a kink, not
            # affine across it): a multi-bus pulse holds width - one command latency, and asks
            # each bus for a clamp where the queries fit; the gap of a train is period - width
            c = self._command_s
            regime = (op.width_s > c, tuple(clamp_queries(op.width_s, n, c) for n in range(2, len(self.xbar.drive) + 1)),
                      op.period_s is None or op.width_s < op.period_s)
            shape_key = (okey[1], op.count, op.period_s, op.others, regime, sid)
            shape = self._shapes.get(shape_key)
            if shape is None:
                shape = PulseShape()
                self._add(self._shapes, shape_key, shape)
            predicted = shape.predict(op.width_s, op.count, self._pulse_limit)
            if predicted is not None:
                result, d_float, we = predicted
                ref = shape.ref
                self._apply(ref.d_counts, d_float, ref.peak_V)
                self._restore(ref.post_id, we)
                self.reused += 1
                return result, d_float[0]
            out, holds = self._run(op, record_holds=True)
            shape.add(op.width_s, out, holds)
            self._add(self._outcomes, key, out)  # a width met again is reused exactly
            return out.result, out.d_float[0]
        out, _ = self._run(op)
        self._add(self._outcomes, key, out)
        return out.result, out.d_float[0]

    def _check(self, op: Operation, okey: Any) -> None:
        """The operation check, a function of the operation alone: run once per distinct
        operation; a pulse train met at another width runs only its timing part again."""
        if type(op) is Pulse:
            drive = ("drive", okey[1], op.others)
            if drive in self._checked:
                check_pulse_timing(op, self.cfg)  # cheap: not worth remembering every width
                return
            check_operation(op, self.cfg)
            self._add(self._checked, drive, None)
            return
        if okey in self._checked:
            return
        check_operation(op, self.cfg)
        self._add(self._checked, okey, None)

    def _run(self, op: Operation, record_holds: bool = False) -> tuple[_Outcome, list]:
        c0, f0 = self._tallies()
        peak0 = self.paper.max_device_V
        self.paper.max_device_V = 0.0
        self._holds = [] if record_holds else None
        self._cur = None  # the replay changes the state; known again below
        try:
            result = _readonly(execute(op, self.xbar, self.guard))
        finally:
            holds, self._holds = self._holds or [], None
            peak = self.paper.max_device_V
            self.paper.max_device_V = max(peak0, peak)
        c1, f1 = self._tallies()
        post = self._state()
        self._cur = post_id = self._intern(post)
        out = _Outcome(result, tuple(b - a for a, b in zip(c0, c1)),  # type: ignore[arg-type]
                       tuple(b - a for a, b in zip(f0, f1)), peak, post, post_id)  # type: ignore[arg-type]
        return out, holds
