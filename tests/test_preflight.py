"""The pre-flight (lab.preflight): outcomes reused exactly, every differing operation checked,
a plan too large refused at once, progress reported; and the progress bar's two ETAs."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from rich.console import Console

from conftest import film_config
from lab import preflight
from lab.app.progress import BenchProgress
from lab.bench import bench_info
from lab.errors import PlanRejected
from lab.operations import Checkpoint, Multiply, Pulse, ReadMatrix, ReadPair, Wait
from lab.runner import Runner, dry_check
from protocols.base import Protocol
from protocols.train import TrainHopfield


TWO = {"vectors": [[1, -1, 1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1, -1, -1]]}
SIX = {"vectors": [[1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1]]}


def _check(cfg, proto, **kw):
    return preflight.dry_check(cfg, bench_info(cfg, cfg.simulated), proto, **kw)


def _assert_same(fast, full):
    assert fast.n_operations == full.n_operations
    assert fast.counts == full.counts
    for name in ("commands", "relay_operations", "measurements"):
        assert getattr(fast, name) == getattr(full, name), name
    for name in ("bench_time_s", "charge_C", "energy_J", "write_time_s", "max_device_V"):
        assert getattr(fast, name) == pytest.approx(getattr(full, name), rel=1e-9, abs=1e-15), name
    np.testing.assert_allclose(np.asarray(fast.op_estimates_s), np.asarray(full.op_estimates_s),
                               rtol=1e-9, atol=1e-12)


def test_reuse_matches_the_full_replay_on_an_annealed_training() -> None:
    # harmonic dose: every presentation has its own pulse width (affine reuse), a read after
    # every epoch (exact reuse); the full replay is the reference
    cfg = film_config(8)
    proto = TrainHopfield(epochs=60, read_every=20, patterns=TWO)
    fast = _check(cfg, proto)
    full = _check(cfg, proto, reuse=False)
    _assert_same(fast, full)
    assert fast.reused > fast.counts["read_matrix"] + 40  # pulses at new widths were reused too
    assert full.reused == 0


class Periodic(Protocol):
    """Identical epochs of drive, reads and waits; epoch ``late`` drives at ``late_v``."""

    name = "test_preflight_periodic"
    epochs: int = 30
    late: int = -1
    late_v: float = 0.5
    # ≥ 3 command latencies: every width of the sweep holds the two buses' clamp queries, so
    # the shapes met at new widths stay in one regime
    width_s: float = 4e-3
    widths_grow: float = 0.0  # s added to the width each epoch (a shape met at new widths)

    def steps(self, bench, resume=None):
        s = tuple(1 if i % 2 else -1 for i in range(bench.n_neurons))
        for e in range(self.epochs):
            v = self.late_v if e == self.late else 0.5
            yield Pulse.of({0: v, 1: -v}, self.width_s + e * self.widths_grow, count=2)
            yield Pulse.of({2: v, 3: -v}, self.width_s + e * self.widths_grow)
            yield Wait(0.01)
            yield ReadPair(0, 1, repeats=2)
            yield Multiply(pattern=s, neurons=(0, 1))
            yield ReadMatrix()
            yield Checkpoint({"epoch": e + 1})


def test_repeated_epochs_are_reused_and_agree_with_the_replay() -> None:
    cfg = film_config(6)
    for proto in (Periodic(), Periodic(widths_grow=1e-4)):
        fast = _check(cfg, proto)
        full = _check(cfg, proto, reuse=False)
        _assert_same(fast, full)
        assert fast.reused > 0.8 * (fast.n_operations - fast.counts["checkpoint"])


def test_a_late_epoch_that_breaks_a_limit_is_caught_where_the_replay_catches_it() -> None:
    cfg = film_config(6)
    late = 25
    per_epoch = 7
    # above v_max in one late epoch (the operation check); a pulse train growing wider each
    # epoch until, with the bus settling, devices stay above the read ceiling longer than
    # pulse_width_max_s — a limit only the guard sees, on a width the reuse would predict
    cases = ((Periodic(late=late, late_v=cfg.limits.v_max_V * 1.2), late * per_epoch, "v_max_V"),
             (Periodic(width_s=5e-3, widths_grow=2.2e-4), 10 * per_epoch, "pulse_width_max_s"))
    for proto, after, limit in cases:
        errors = []
        for reuse in (True, False):
            with pytest.raises(PlanRejected) as exc:
                _check(cfg, proto, reuse=reuse)
            errors.append(exc.value)
        assert str(errors[0]) == str(errors[1])
        assert errors[0].index >= after and limit in str(errors[0])


def test_a_plan_too_large_to_check_is_refused_in_seconds() -> None:
    cfg = film_config(8)
    proto = TrainHopfield(epochs=10**9, patterns=TWO)
    t0 = time.monotonic()
    with pytest.raises(PlanRejected) as exc:
        _check(cfg, proto)
    assert time.monotonic() - t0 < 5.0
    msg = str(exc.value)
    assert "operations" in msg and "2,000,000" in msg and "shorter runs" in msg
    # the runner's own check and the module-level delegation say the same
    with pytest.raises(PlanRejected):
        dry_check(cfg, bench_info(cfg, True), proto)


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def checking(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))


def test_progress_is_reported_when_the_check_is_not_instant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "_PROGRESS_AFTER_S", 0.0)
    monkeypatch.setattr(preflight, "_PROGRESS_EVERY_S", 0.0)
    cfg = film_config(6)
    sink = Sink()
    proto = TrainHopfield(epochs=200, read_every=0, patterns=SIX)
    rep = _check(cfg, proto, progress=sink)
    assert len(sink.calls) >= 2
    done = [d for d, _ in sink.calls]
    assert done == sorted(done) and done[-1] == rep.n_operations
    total = proto.plan_size(bench_info(cfg, True))
    assert all(t in (total, rep.n_operations) for _, t in sink.calls)
    assert total >= rep.n_operations


def test_the_bar_shows_a_wall_eta_beside_the_bench_eta() -> None:
    buf = io.StringIO()
    prog = BenchProgress(True, console=Console(file=buf, force_terminal=True, width=120), description="x")
    prog.checking(10, 100)
    prog.checking(100, 100)
    prog.start([10.0] * 4)
    time.sleep(0.2)
    prog.update(2, 20.0)  # half of 40 s of bench time done in ~0.2 s of wall time
    assert prog.eta_s == pytest.approx(20.0)
    assert prog.wall_eta_s is not None and 0.1 < prog.wall_eta_s < 5.0
    prog.stop()
    out = buf.getvalue()
    assert "checking the plan" in out and "bench 0:00:20 eta 0:00:20" in out and "wall 0:00:00" in out


def test_runner_dry_check_delegates_with_its_progress() -> None:
    from lab.bench import Bench

    cfg = film_config(6)
    bench = Bench.open(cfg, simulate=True)
    try:
        sink = Sink()
        runner = Runner(bench, progress=sink)  # type: ignore[arg-type]
        rep = runner.dry_check(Periodic(epochs=3))
        assert rep.n_operations == 21 and rep.bench_time_s > 0
    finally:
        bench.close()


def test_widths_across_the_clamp_query_kink_are_reused_exactly() -> None:
    # from 2 to 4.9 ms the two-bus pulses cross 3 command latencies, where the clamp queries
    # start: the control flow changes there, so no affine model may reach across it
    cfg = film_config(8)
    proto = Periodic(width_s=2e-3, widths_grow=1e-4)
    fast = _check(cfg, proto)
    full = _check(cfg, proto, reuse=False)
    _assert_same(fast, full)
    assert fast.reused > 0
