"""The runner on the simulated bench: plans run end to end, every exit leaves the bench safe."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from rich.console import Console

from lab.bench import Bench, twin_spec
from lab.config import load_bench, parse_bench
from drivers.errors import InstrumentTimeout
from lab.crossbar import ComplianceHit
from lab.errors import BenchBusy, PlanRejected, RetryPolicy
from lab.lock import BenchLock
from lab.operations import (
    Apply, Checkpoint, Multiply, Note, Pulse, ReadMatrix, ReadPair, Record, Wait,
)
from lab.app.progress import BenchProgress
from lab.runner import Runner
from protocols.base import Protocol
from conftest import film_bench_dict
from sim_backend.server import SimServer
from sim_backend.twin import build_twin

ROOT = Path(__file__).resolve().parent.parent


def bench_dict(n: int = 6) -> dict:
    return film_bench_dict(n)


def small(n: int = 6, timeout_ms: int | None = None):
    d = bench_dict(n)
    if timeout_ms is not None:
        for inst in d["instruments"]:
            inst["timeout_ms"] = timeout_ms
    return parse_bench(d, f"film{n}.toml")


def assert_safe(twin: Any, skip: tuple[str, ...] = ()) -> None:
    sim = twin.bench
    for bus in sim.buses:
        if bus in skip:
            continue
        st = sim.bus_state(bus)
        assert st["level"] == 0.0, (bus, st)
        assert not st["output"], (bus, st)
    assert sim.closed() == set()
    assert sim.hot_switches == 0


class Demo(Protocol):
    """A small plan touching every operation kind."""

    name = "lab_test_demo"
    pulses: int = 3
    width_s: float = 1e-3
    devices: int = 40
    fail_after: int = -1  # raise ValueError after this many operations

    def steps(self, bench, resume=None):
        start = int((resume or {}).get("stage", 0))
        n_ops = 0
        if start <= 0:
            yield Note("reading")
            before = yield ReadMatrix(devices=tuple(range(min(self.devices, bench.n_devices))))
            yield Record("before", {"g": before.g})
            yield Checkpoint({"stage": 1})
            n_ops = 4
            if self.fail_after >= 0 and n_ops >= self.fail_after:
                raise ValueError("protocol bug")
        if start <= 1:
            yield Pulse.of({0: 1.0, 1: -1.0}, self.width_s, count=self.pulses)
            pair = yield ReadPair(0, 1, repeats=2)
            s = tuple(1 if i % 2 else -1 for i in range(bench.n_neurons))
            mult = yield Multiply(pattern=s, neurons=(0, 1, 2))
            yield Record("after", {"g01": pair.g, "i": mult.currents})
            yield Checkpoint({"stage": 2})
        yield Wait(0.01)
        return "done"


class Log:
    """An observer that remembers what it was told (and may act at an operation)."""

    def __init__(self, at: int = -1, action=None) -> None:
        self.events: list[tuple] = []
        self.at = at
        self.action = action

    def start(self, info):
        self.events.append(("start", info.protocol_name, info.simulated))

    def operation(self, record):
        self.events.append(("op", record.index, record.op.kind, record.truth is not None))
        if record.index == self.at and self.action is not None:
            self.action()

    def checkpoint(self, index, state):
        self.events.append(("checkpoint", index, dict(state)))

    def finish(self, status, error=None):
        self.events.append(("finish", status, error))


def test_small_protocol_end_to_end_on_the_35_node_bench(film35: Bench) -> None:
    obs = Log()
    runner = Runner(film35, [obs])
    est = runner.dry_check(Demo())
    t0 = film35.clock.now()
    res = runner.run(Demo())
    assert res.status == "complete" and res.returned == "done"
    assert res.n_operations == est.n_operations == 10
    recs = dict(res.records)
    truth = film35.truth()
    g = recs["before"]["g"]
    assert np.isfinite(g[:40]).all() and np.isnan(g[40:]).all()
    assert np.all(np.abs(g[:40] / truth[:40] - 1) < 0.01)
    assert np.isfinite(recs["after"]["i"][:3]).all() and np.isnan(recs["after"]["i"][3:]).all()
    # the bench time the twin spent is what the dry check predicted, relay for relay
    assert res.bench_time_s == pytest.approx(film35.clock.now() - t0)
    assert res.bench_time_s == pytest.approx(est.bench_time_s, rel=0.02)
    assert res.relay_operations == est.relay_operations
    # ... and the matrix agrees, plus the 35 relays the cleanup opened at the end
    assert film35.twin.bench.relay_operations == res.relay_operations + 35
    assert est.write_time_s == pytest.approx(3e-3 + 6 * est_latency(film35), rel=0.5)
    assert est.charge_C > 0 and est.energy_J > 0 and est.max_device_V == pytest.approx(2.0)
    assert obs.events[0] == ("start", "lab_test_demo", True)
    assert obs.events[-1] == ("finish", "complete", None)
    assert ("checkpoint", 3, {"stage": 1}) in obs.events
    assert all(e[3] for e in obs.events if e[0] == "op")  # truth recorded in a dry run
    assert res.last_checkpoint == {"stage": 2}
    assert_safe(film35.twin)


def est_latency(bench: Bench) -> float:
    return bench.timing.command_latency_s


def test_dry_check_report_fields() -> None:
    bench = Bench.open(small(8), simulate=True)
    try:
        rep = Runner(bench).dry_check(Demo(pulses=10))
        d = rep.as_dict()
        for key in ("bench_time_s", "relay_operations", "charge_C", "energy_J", "measurements", "counts",
                    "max_device_V", "write_time_s", "commands"):
            assert key in d
        assert rep.counts["pulse"] == 1 and rep.counts["read_matrix"] == 1
        assert rep.bench_time_s > 10 * 2e-3
        assert len(rep.op_estimates_s) == rep.n_operations
    finally:
        bench.close()


def test_bad_parameter_fails_in_dry_check_with_nothing_sent() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        sent = len(bench.command_log)
        runner = Runner(bench)
        with pytest.raises(PlanRejected) as info:
            runner.run(Demo(width_s=0.5))  # 500 ms pulses: beyond pulse_width_max_s
        assert info.value.index == 4 and info.value.kind == "pulse"
        assert "pulse_width_max_s" in str(info.value)
        assert len(bench.command_log) == sent
    finally:
        bench.close()


def test_bad_parameter_never_reaches_the_sim_server(tmp_path: Path) -> None:
    cfg = small()
    twin = build_twin(twin_spec(cfg))
    with SimServer.from_twin(twin) as server:
        bench = Bench.open(cfg, server=server)
        try:
            server.command_log.clear()
            with pytest.raises(PlanRejected, match="v_read"):
                Runner(bench).run(ReadOnce(v_read=0.5))
            assert server.command_log == []
            res = Runner(bench).run(ReadOnce(v_read=0.1))
            assert res.status == "complete" and len(server.command_log) > 0
            assert_safe(twin)
        finally:
            bench.close()


class ReadOnce(Protocol):
    name = "lab_test_read_once"
    v_read: float = 0.1

    def steps(self, bench, resume=None):
        r = yield ReadPair(0, 1, v_read=self.v_read)
        yield Record("g", {"g": r.g})


def test_exception_in_protocol_leaves_bench_safe() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        obs = Log()
        with pytest.raises(ValueError, match="protocol bug"):
            Runner(bench, [obs], check=False).run(Demo(fail_after=4))
        assert obs.events[-1][:2] == ("finish", "failed")
        assert Runner(bench).last_result is None
        assert_safe(bench.twin)
    finally:
        bench.close()


def test_ctrl_c_leaves_bench_safe() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        obs = Log(at=5, action=lambda: os.kill(os.getpid(), signal.SIGINT))
        runner = Runner(bench, [obs])
        with pytest.raises(KeyboardInterrupt):
            runner.run(Demo())
        assert runner.last_result.status == "aborted"
        assert obs.events[-1] == ("finish", "aborted", "interrupted (Ctrl-C)")
        assert runner.last_result.n_operations == 6
        assert_safe(bench.twin)
    finally:
        bench.close()


def test_abort_from_another_thread_returns_aborted_and_safe() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        runner = Runner(bench, check=False)
        obs = Log(at=2, action=lambda: threading.Thread(target=runner.abort).start() or time.sleep(0.05))
        runner.observers.append(obs)
        res = runner.run(Demo())
        assert res.status == "aborted" and res.n_operations == 3
        assert_safe(bench.twin)
    finally:
        bench.close()


def test_pause_waits_between_operations_with_sources_at_zero() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        runner = Runner(bench, check=False)
        seen: list = []

        def pause_then_resume():
            runner.pause()

            def later():
                sim = bench.twin.bench
                seen.append([sim.bus_state(b)["level"] for b in sim.buses])
                runner.resume()

            threading.Timer(0.1, later).start()

        runner.observers.append(Log(at=1, action=pause_then_resume))
        t = time.monotonic()
        res = runner.run(Demo())
        assert res.status == "complete" and time.monotonic() - t >= 0.1
        assert seen and not any(seen[0])
    finally:
        bench.close()


def test_instrument_that_answers_too_late_fails_the_run_and_leaves_bench_safe() -> None:
    bench = Bench.open(small(timeout_ms=100), simulate=True)
    try:
        smu = bench.twin.instruments["smu2"]  # guard + sense0
        runner = Runner(bench, retry=RetryPolicy(attempts=2, backoff_s=0.0))

        def slow():
            smu.faults.delay_s = 0.5

        runner.observers.append(Log(at=4, action=slow))  # before the pulse train
        with pytest.raises(InstrumentTimeout) as info:
            runner.run(Demo())
        assert runner.last_result.status == "failed"
        assert "smu2" in str(info.value)
        assert_safe(bench.twin)  # its writes still arrive: 0 V and output off reach it
    finally:
        bench.twin.instruments["smu2"].faults.clear()
        bench.close()


def test_instrument_that_goes_silent_others_are_still_made_safe() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        smu = bench.twin.instruments["smu3"]  # sense1 + sense2
        runner = Runner(bench, retry=RetryPolicy(attempts=3, backoff_s=0.0))
        runner.observers.append(Log(at=0, action=lambda: setattr(smu.faults, "timeout", True)))
        with pytest.raises(Exception) as info:
            runner.run(Demo())
        res = runner.last_result
        assert res.status == "failed" and "cleanup failed" in res.error and "sense1" in res.error
        assert res.retries == 2  # a read is retried, then given up
        assert "smu3" in str(info.value)
        assert_safe(bench.twin, skip=("sense1", "sense2"))
    finally:
        bench.twin.instruments["smu3"].faults.clear()
        bench.close()


def test_a_clamped_read_fails_the_run_naming_the_bus_and_leaves_bench_safe() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        bench.twin.instruments["smu2"].faults.compliance = True  # guard + sense0
        runner = Runner(bench)
        with pytest.raises(ComplianceHit, match="read_pair: bus sense0 was clamped at its current limit"):
            runner.run(ReadOnce())
        res = runner.last_result
        assert res.status == "failed" and "sense0" in res.error
        assert res.records == []  # no conductance came out of it
        assert_safe(bench.twin)
    finally:
        bench.twin.instruments["smu2"].faults.clear()
        bench.close()


class Healing(RetryPolicy):
    """A read times out once; the instrument is answering again by the retry."""

    def __init__(self, instrument) -> None:
        super().__init__(attempts=3, backoff_s=0.0)
        object.__setattr__(self, "_inst", instrument)

    def call(self, fn, on_retry=None):
        def heal(attempt, exc):
            self._inst.faults.clear()
            if on_retry:
                on_retry(attempt, exc)
        return super().call(fn, heal)


def test_read_timeout_is_retried_state_change_is_not() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        smu = bench.twin.instruments["smu2"]
        runner = Runner(bench, retry=Healing(smu), check=False)
        runner.observers.append(Log(at=0, action=lambda: setattr(smu.faults, "timeout", True)))
        res = runner.run(ReadOnceThenRead())
        assert res.status == "complete" and res.retries == 1
        g = dict(res.records)["g"]["g"]
        assert np.all(np.abs(np.array(g) / bench.truth()[0] - 1) < 0.01)
        # a state change that times out is not sent again, even with a healing instrument
        smu1 = bench.twin.instruments["smu1"]  # drive_pos, drive_neg
        runner = Runner(bench, retry=Healing(smu1), check=False)
        runner.observers.append(Log(at=0, action=lambda: setattr(smu1.faults, "timeout", True)))
        n0 = len(bench.command_log)
        with pytest.raises(InstrumentTimeout, match="smu1"):
            runner.run(ApplyAfterRead())
        sent = [m for _, name, m in bench.command_log[n0:] if name == "smu1" and "levelv = 0.05" in m]
        assert sent == ["smua.source.levelv = 0.05"]
        assert runner.last_result.retries == 0
        smu1.faults.clear()
    finally:
        bench.twin.instruments["smu2"].faults.clear()
        bench.close()


class ReadOnceThenRead(Protocol):
    name = "lab_test_read_twice"

    def steps(self, bench, resume=None):
        a = yield ReadPair(0, 1)
        b = yield ReadPair(0, 1)
        yield Record("g", {"g": [a.g, b.g]})


class ApplyAfterRead(Protocol):
    name = "lab_test_apply_after_read"

    def steps(self, bench, resume=None):
        yield ReadPair(0, 1)
        yield Apply.of({1: 0.05}, 0.01)  # C1 on drive_pos: smu1 channel a


def test_lock_keeps_a_second_runner_off_the_bench() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        caught: list = []

        def second():
            try:
                Runner(bench).run(ReadOnce())
            except BenchBusy as exc:
                caught.append(exc)

        Runner(bench, [Log(at=0, action=second)]).run(ReadOnce())
        assert caught and "in use by pid" in str(caught[0])
        assert Runner(bench).run(ReadOnce()).status == "complete"  # released after the run
    finally:
        bench.close()


def test_lock_is_released_when_its_process_dies(tmp_path: Path) -> None:
    key = f"test-resource-{os.getpid()}-{tmp_path.name}"
    code = ("import sys, time; from lab.lock import BenchLock; BenchLock([sys.argv[1]]).acquire();"
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, key], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(BenchBusy):
            BenchLock([key]).acquire()
        proc.kill()
        proc.wait(10)
        with BenchLock([key]):
            pass
    finally:
        proc.kill()
        proc.wait(10)


def test_resume_from_a_checkpoint_skips_what_was_done() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        obs = Log()
        res = Runner(bench, [obs]).run(Demo(), resume={"stage": 1}, start_index=4)
        kinds = [e[2] for e in obs.events if e[0] == "op"]
        assert kinds[0] == "pulse" and "read_matrix" not in kinds
        assert [e[1] for e in obs.events if e[0] == "op"][0] == 4
        assert res.status == "complete" and res.n_operations == 6
    finally:
        bench.close()


def test_progress_bar_shows_bench_time_eta() -> None:
    buf = io.StringIO()
    prog = BenchProgress(True, console=Console(file=buf, force_terminal=True, width=100), description="x")
    prog.start([1.0, 1.0, 2.0])
    prog.update(2, 4.0)  # twice as slow as estimated
    assert prog.eta_s == pytest.approx(4.0)
    prog.stop()
    assert "bench 0:00:04" in buf.getvalue() and "eta 0:00:04" in buf.getvalue()


def test_runner_with_progress_enabled_runs() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        res = Runner(bench, progress=BenchProgress(True)).run(ReadOnce())
        assert res.status == "complete"
    finally:
        bench.close()


SUBPROCESS = """
import json, sys
from lab.bench import Bench
from lab.config import load_bench
from lab.operations import Apply
from lab.runner import Runner
from protocols.base import Protocol

class Forever(Protocol):
    name = "lab_test_forever"
    def steps(self, bench, resume=None):
        while True:
            yield Apply.of({0: 0.05, 1: -0.05}, 0.05)

class Tell:
    def start(self, info): pass
    def operation(self, rec):
        if rec.index == 0:
            print("running", flush=True)
    def checkpoint(self, index, state): pass
    def finish(self, status, error=None):
        print("finish", status, flush=True)

bench = Bench.open(load_bench(sys.argv[1]), server=json.loads(sys.argv[2]))
Runner(bench, [Tell()], check=False).run(Forever())
"""


def test_sigterm_to_a_running_process_leaves_bench_safe(tmp_path: Path) -> None:
    d = bench_dict()
    path = tmp_path / "bench.toml"
    path.write_text(tomli_w.dumps(d))
    cfg = load_bench(path)
    twin = build_twin(twin_spec(cfg))
    with SimServer.from_twin(twin) as server:
        proc = subprocess.Popen([sys.executable, "-c", SUBPROCESS, str(path), json.dumps(server.resources)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
        try:
            assert proc.stdout.readline().strip() == "running", proc.stderr.read()
            time.sleep(0.2)
            levels = [twin.bench.bus_state(b)["level"] for b in ("drive_pos", "drive_neg")]
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode != 0
        assert "finish aborted" in out, err
        assert "Terminated: SIGTERM" in err
        assert_safe(twin)
        assert twin.bench.relay_operations > 0 and levels


class Picky(Protocol):
    name = "lab_test_picky"
    adaptive = True  # no dry-check replay: the parameter check alone guards the bench
    line: int = 99

    def check(self, bench):
        if not 0 <= self.line < bench.n_lines:
            raise ValueError(f"line: {self.line} is not a line of this {bench.n_lines}-line bench")

    def steps(self, bench, resume=None):
        yield ReadPair(self.line, 0)


def test_adaptive_protocol_parameters_checked_before_anything_is_sent() -> None:
    bench = Bench.open(small(), simulate=True)
    try:
        sent = len(bench.command_log)
        with pytest.raises(PlanRejected, match="line: 99"):
            Runner(bench).run(Picky())
        assert len(bench.command_log) == sent
    finally:
        bench.close()
