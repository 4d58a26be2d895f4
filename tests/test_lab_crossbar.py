"""Crossbar access on the simulated bench: guarded reads are exact, floating ones are not."""
from __future__ import annotations

import copy
import time
import tomllib
from collections import Counter

import numpy as np
import pytest

from lab.bench import Bench, PaperBench
from lab.config import load_bench, parse_bench
from lab.crossbar import Crossbar, plan_floating_reads, plan_guarded_reads
from lab.safety import GuardedActuator, SafetyGuard
from sim_backend.datafiles import data_path

SIGMA = 0.03 * 2e-6  # film-amr read noise: 3 % of the 2 µS window


def film_config(n: int = 35, contact: float = 0.0):
    d = copy.deepcopy(tomllib.loads(data_path("benches", "sim-film35.toml").read_text()))
    d["simulation"]["contact_resistance_ohm"] = contact
    if n != 35:
        d["array"]["n"] = n
        d["instruments"][0]["cards"] = 1
        d["wiring"]["lines"] = {f"C{i}": [1, i + 1] for i in range(n)}
    return parse_bench(d, f"film{n}.toml")


def crossbar_config():
    return load_bench("707b-3x2450")


def guarded(bench: Bench):
    guard = SafetyGuard(bench.config)
    act = GuardedActuator(guard, bench.backend(), bench.timing)
    xbar = Crossbar(act, bench.config)
    xbar.prepare()
    return guard, act, xbar


@pytest.mark.parametrize("cfg", [film_config(35), crossbar_config()], ids=["film35", "crossbar8"])
def test_guarded_plan_reads_every_device_once_with_four_relay_changes_per_step(cfg) -> None:
    devices = list(range(len(cfg.layout.devices)))
    plan = plan_guarded_reads(cfg, devices)
    read = Counter(d for c in plan for _, _, d in c.targets)
    assert sorted(read) == devices and set(read.values()) == {1}
    for c in plan:  # a target is always a device between the drive line and its sense line
        for _, line, d in c.targets:
            assert {c.drive, line} == set(cfg.layout.devices[d].tolist())
    pb = PaperBench(cfg)
    guard = SafetyGuard(cfg)
    pb.guard = guard
    act = GuardedActuator(guard, pb, pb.timing)
    xbar = Crossbar(act, cfg)
    xbar.prepare()
    with guard.scoped("read"):
        xbar.read_matrix(None, 0.1)
    n_sense = len(cfg.layout.by_role("sense"))
    assert len(plan) <= len(devices) / n_sense * 1.3 + 8
    # drive-line steps cost 4 relay operations; sense groups change a few times
    assert act.relay_operations < 4.6 * len(plan) + 2 * len(cfg.layout.lines)


def test_floating_plan_connects_only_the_pair() -> None:
    cfg = film_config(6)
    plan = plan_floating_reads(cfg, [0, 5, 14])
    assert [(c.drive, c.sense[0][1]) for c in plan] == [(0, 1), (1, 2), (4, 5)]


def test_guarded_matrix_read_agrees_with_truth_within_read_noise_floating_does_not() -> None:
    bench = Bench.open(film_config(35, contact=0.0), simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        truth = bench.truth()
        t = time.perf_counter()
        with guard.scoped("read"):
            res = xbar.read_matrix(None, 0.1)
        wall = time.perf_counter() - t
        err = res.g - truth
        assert np.all(np.abs(err) < 5 * SIGMA), np.abs(err).max() / SIGMA
        assert abs(err.mean()) < 0.2 * SIGMA  # no bias: the guard removes every sneak path
        assert np.allclose(res.matrix, res.matrix.T, equal_nan=True)
        sample = list(range(0, 595, 17))
        with guard.scoped("read"):
            flo = xbar.read_matrix(sample, 0.1, scheme="floating")
        ratio = flo.g[sample] / truth[sample]
        assert np.all(ratio > 3) and np.median(ratio) > 10  # sneak paths: G overestimated ~15x
        assert bench.twin.bench.hot_switches == 0
        assert bench.twin.bench.relay_operations == act.relay_operations
        print(f"\nguarded 35-node read: {wall:.2f} s wall, {act.measurements} measurements")
        assert wall < 10
    finally:
        bench.close()


def test_contact_resistance_biases_a_guarded_read_only_slightly() -> None:
    bench = Bench.open(film_config(12, contact=1.0), simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        with guard.scoped("read"):
            res = xbar.read_matrix(None, 0.1, repeats=2)
        rel = res.g / bench.truth() - 1
        assert np.all(np.abs(rel) < 0.005)  # 1 Ω × the line's total current: < 0.5 %
        assert np.all(res.g_std > 0)
    finally:
        bench.close()


def test_multiply_gives_v_read_times_g_dot_pattern() -> None:
    cfg = film_config(10)
    bench = Bench.open(cfg, simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        g = cfg.layout
        gm = np.zeros((10, 10))
        truth = bench.truth()
        gm[g.devices[:, 0], g.devices[:, 1]] = truth
        gm += gm.T
        s = np.array([1, -1, 1, 1, -1, -1, 1, -1, 1, 1])
        with guard.scoped("read"):
            res = xbar.multiply(tuple(s), None, 0.1)
            one = xbar.multiply(tuple(s), (3,), 0.1)
        expected = 0.1 * gm @ s
        assert np.allclose(res.currents, expected, atol=0.1 * 20 * SIGMA)
        assert np.isnan(one.currents[[0, 1, 2, 4]]).all()
        assert one.currents[3] == pytest.approx(expected[3], abs=0.1 * 20 * SIGMA)
    finally:
        bench.close()


def test_tied_crossbar_reads_and_multiplies() -> None:
    cfg = crossbar_config()
    bench = Bench.open(cfg, simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        truth = bench.truth()
        with guard.scoped("read"):
            res = xbar.read_matrix(None, 0.1)
            mul = xbar.multiply((1,) * 8, None, 0.1)
        assert np.all(np.abs(res.g - truth) < 6 * SIGMA + 0.01 * truth)
        cells = cfg.layout.device_cells
        m = np.zeros((8, 8))
        m[cells[:, 0], cells[:, 1]] = truth
        # neuron i (row i + column i) at ground, the rest at +v: I_i = v Σ_j≠i (G_ij + G_ji)
        expected = 0.1 * (m.sum(1) + m.sum(0) - 2 * np.diag(m))
        assert np.allclose(mul.currents, expected, rtol=0.01)
        assert res.matrix[2, 5] == pytest.approx(res.g[2 * 8 + 5])
    finally:
        bench.close()


def test_pulse_trains_move_the_devices_and_return_to_zero() -> None:
    cfg = film_config(6)
    bench = Bench.open(cfg, simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        before = bench.truth()
        t0 = bench.clock.now()
        with guard.scoped("write"):
            out = xbar.pulse({0: 1.0, 1: -1.0}, 1e-3, count=20)
            single = xbar.pulse({2: 1.0}, 1e-3, count=5, period_s=4e-3)
        assert bench.clock.now() - t0 >= 20 * 2e-3 - 1e-3 + 4 * 4e-3 + 1e-3
        assert out.line_voltages[0] == 1.0 and out.line_voltages[1] == -1.0 and out.line_voltages[2] == 0.0
        assert single.line_voltages[2] == 1.0
        moved = np.abs(bench.truth() - before)
        assert moved[cfg.layout.device_index[(0, 1)]] > 0  # 2 V across C0-C1: above threshold
        sim = bench.twin.bench
        assert all(sim.bus_state(b)["level"] == 0.0 for b in sim.buses)
        assert sim.hot_switches == 0
    finally:
        bench.close()
