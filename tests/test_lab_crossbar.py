"""Crossbar access on the simulated bench: guarded reads are exact, floating ones are not.

The shipped default bench has 1 Ω contacts between every bus and line; reads correct for
them with the calibrated value in its wiring, and a clamped source stops the operation.
"""
from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

from lab.bench import Bench, PaperBench
from lab.config import load_bench, parse_bench
from lab.errors import ConfigError
from lab.crossbar import ComplianceHit, Crossbar, plan_floating_reads, plan_guarded_reads
from lab.safety import GuardedActuator, SafetyGuard
from conftest import film_bench_dict
from test_lab_safety import paper

SIGMA = 0.03 * 2e-6  # film-amr read noise: 3 % of the 2 µS window


def film_config(n: int = 35, contact: float = 1.0, calibrated: float | None = None):
    """The default bench at ``n`` nodes; the twin's contacts are ``contact`` Ω, the bench
    file's calibration ``calibrated`` (default: right)."""
    d = film_bench_dict(n)
    d["simulation"]["contact_resistance_ohm"] = contact
    d["wiring"]["contact_resistance_ohm"] = contact if calibrated is None else calibrated
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
    _, guard, act, xbar = paper(cfg)
    with guard.scoped("read"):
        xbar.read_matrix(None, 0.1)
    n_sense = len(cfg.layout.by_role("sense"))
    assert len(plan) <= len(devices) / n_sense * 1.3 + 8
    # drive-line steps cost 4 relay operations; sense groups change a few times
    assert act.relay_operations < 4.6 * len(plan) + 2 * len(cfg.layout.lines)


@pytest.mark.parametrize("cfg", [film_config(12), crossbar_config()], ids=["film12", "crossbar8"])
def test_a_guarded_read_closes_exactly_each_planned_configuration(cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within a sense group a read routes only the change of drive line (the rest of the route
    stands): the relays closed at each configuration are still exactly its route, the drive
    line on the drive bus, the group on the sense buses and every other line on the guard."""
    lay = cfg.layout
    drive, guard_bus = lay.by_role("drive")[0], lay.by_role("guard")[0]
    groundable = [k for k in range(len(lay.lines)) if k not in lay.forbidden]
    plan = plan_guarded_reads(cfg, list(range(len(lay.devices))))
    want = []
    for c in plan:
        route = {line: guard_bus for line in groundable}
        route.update({line: bus for bus, line in c.sense})
        route[c.drive] = drive
        want.append({lay.crosspoint[(bus, line)] for line, bus in route.items()})
    _, guard, act, xbar = paper(cfg)
    seen, moved, configure = [], [], xbar.configure

    def spy(route, levels, change=None):  # noqa: ANN001, ANN202
        configure(route, levels, change)
        seen.append(set(act.closed))
        moved.append(change is not None)

    monkeypatch.setattr(xbar, "configure", spy)
    with guard.scoped("read"):
        xbar.read_matrix(None, 0.1)
    assert len(seen) == len(want) and all(s == w for s, w in zip(seen, want))
    assert sum(moved) == sum(a.sense == b.sense for a, b in zip(plan, plan[1:])) > 0  # routed by the change


def test_floating_plan_connects_only_the_pair() -> None:
    cfg = film_config(6)
    plan = plan_floating_reads(cfg, [0, 5, 14])
    assert [(c.drive, c.sense[0][1]) for c in plan] == [(0, 1), (1, 2), (4, 5)]


def test_guarded_matrix_read_agrees_with_truth_within_read_noise_floating_does_not() -> None:
    cfg = load_bench("sim-film35")  # the shipped default: 1 Ω contacts, calibrated in its wiring
    assert cfg.simulation.contact_resistance_ohm == cfg.wiring.contact_resistance_ohm == 1.0
    bench = Bench.open(cfg, simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        truth = bench.truth()
        t = time.perf_counter()
        t_bench = bench.clock.now()
        with guard.scoped("read"):
            res = xbar.read_matrix(None, 0.1)
        wall = time.perf_counter() - t
        t_bench = bench.clock.now() - t_bench
        z = (res.g - truth) / SIGMA
        # no bias: the mean of 595 errors has a standard error of 0.041 σ
        assert abs(z.mean()) < 0.25, z.mean()
        # each device within its read noise: χ²/N = 1 ± 0.058, no outlier beyond 4.5 σ
        assert 0.8 < np.mean(z**2) < 1.2, np.mean(z**2)
        assert np.abs(z).max() < 4.5, np.abs(z).max()
        assert np.allclose(res.matrix, res.matrix.T, equal_nan=True)
        # the drive current is measured once per drive line, not per device
        assert act.measurements <= len(truth) + len(cfg.layout.lines)
        sample = list(range(0, 595, 17))
        with guard.scoped("read"):
            flo = xbar.read_matrix(sample, 0.1, scheme="floating")
        ratio = flo.g[sample] / truth[sample]
        assert np.all(ratio > 3) and np.median(ratio) > 10  # sneak paths: G overestimated ~15x
        assert bench.twin.bench.hot_switches == 0
        assert bench.twin.bench.relay_operations == act.relay_operations
        print(f"\nguarded 35-node read: mean error {z.mean():+.3f} σ, χ²/N {np.mean(z**2):.3f}, "
              f"max {np.abs(z).max():.2f} σ; {act.measurements} measurements, {t_bench:.2f} s bench, {wall:.2f} s wall")
        assert wall < 10
    finally:
        bench.close()


def test_without_the_contact_correction_a_read_is_low_by_r_times_the_row_conductance() -> None:
    """What the correction removes: the drive line sits I·R = v·R·Σ_k G_dk below its source."""
    cfg = film_config(35, contact=1.0, calibrated=0.0)
    bench = Bench.open(cfg, simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        truth = bench.truth()
        with guard.scoped("read"):
            res = xbar.read_matrix(None, 0.1)
        lay = cfg.layout
        gm = np.zeros((35, 35))
        gm[lay.devices[:, 0], lay.devices[:, 1]] = truth
        gm += gm.T
        rel = res.g / truth - 1
        expected = -1.0 * gm.sum(1).mean()  # R·Σ_k G_dk: ~0.34 %, a sixth of the 2 % AMR window
        assert rel.mean() == pytest.approx(expected, rel=0.1)
        assert (res.g - truth).mean() < -5 * SIGMA
    finally:
        bench.close()


def test_a_clamped_source_is_an_error_naming_the_bus_not_a_conductance() -> None:
    bench = Bench.open(film_config(6), simulate=True)
    inst = bench.twin.instruments
    try:
        guard, act, xbar = guarded(bench)
        for smu, bus in (("smu2", "sense0"), ("smu1", "drive_pos")):  # guard+sense0 / both drive buses
            inst[smu].faults.compliance = True
            with guard.scoped("read"), pytest.raises(ComplianceHit, match=f"read_matrix: bus {bus} was clamped"):
                xbar.read_matrix(None, 0.1)
            with guard.scoped("read"), pytest.raises(ComplianceHit, match=f"read_pair: bus {bus}") as info:
                xbar.read_pair(0, 1, 0.1)
            assert info.value.bus == bus and info.value.operation == "read_pair"
            inst[smu].faults.clear()
            xbar.zero()
        inst["smu2"].faults.compliance = True  # guard + sense0: sense0 measures neuron 0
        with guard.scoped("read"), pytest.raises(ComplianceHit, match="multiply: bus sense0 .* neuron 0"):
            xbar.multiply((1, -1, 1, -1, 1, -1), None, 0.1)
        inst["smu2"].faults.clear()
        xbar.zero()
        inst["smu1"].faults.compliance = True  # the driver reports the pulse clamped
        with guard.scoped("write"), pytest.raises(ComplianceHit, match="pulse: bus drive_pos .* pulse 1"):
            xbar.pulse({0: 1.0}, 1e-3, count=3)
    finally:
        for i in inst.values():
            i.faults.clear()
        bench.close()


def test_an_unmeasured_bus_is_checked_only_when_it_could_reach_its_limit() -> None:
    cfg = film_config(6)
    bench = Bench.open(cfg, simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        with guard.scoped("read"):
            n0 = act.measurements
            xbar.read_pair(0, 1, 0.1)
            # drive + sense only: the guard's 4 devices at 0.1 V × 0.5 mS (0.2 mA at most) stay far below 0.1 A
            assert act.measurements - n0 == 2
            act.set_compliance("guard", 2e-5)  # below the ~40 µA it carries: measured, and found clamped
            with pytest.raises(ComplianceHit, match="read_pair: bus guard"):
                xbar.read_pair(0, 1, 0.1)
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


def test_multiply_after_a_read_agrees_within_noise_with_the_contacts_corrected() -> None:
    cfg = load_bench("sim-film35")
    bench = Bench.open(cfg, simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        truth = bench.truth()
        lay = cfg.layout
        gm = np.zeros((35, 35))
        gm[lay.devices[:, 0], lay.devices[:, 1]] = truth
        gm += gm.T
        s = np.random.default_rng(0).choice([-1, 1], 35)
        expected = 0.1 * gm @ s
        noise = 0.1 * SIGMA * np.sqrt(34)  # one reading: 34 devices' read noise
        with guard.scoped("read"):
            blind = xbar.multiply(tuple(s), None, 0.1)  # nominal conductances in the correction
            xbar.read_matrix(None, 0.1)
            m0 = act.measurements
            res = xbar.multiply(tuple(s), None, 0.1)
        assert act.measurements - m0 == 35  # the correction costs no measurement
        rms = np.sqrt(np.mean((res.currents - expected) ** 2)) / noise
        gain = np.polyfit(expected, res.currents, 1)[0] - 1
        assert rms < 1.6 and abs(gain) < 5e-4, (rms, gain)  # uncorrected: 10.7 noise, gain −0.69 %
        assert np.sqrt(np.mean((blind.currents - expected) ** 2)) / noise < 5
        assert np.all(np.sign(res.currents) == np.sign(expected))
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
        assert np.all(np.abs(res.g - truth) < 4.5 * SIGMA)  # 1 Ω contacts, corrected
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


def _full_drive_s(timeline, levels: dict[str, float]) -> float:
    """Time during which every bus sat at its full level, from an applied timeline."""
    now: dict[str, float] = {}
    total, t_prev = 0.0, 0.0
    for t, bus, v in timeline:
        if all(now.get(b) == lv for b, lv in levels.items()):
            total += t - t_prev
        now[bus], t_prev = v, t
    return total


def test_a_two_bus_pulse_holds_full_drive_for_the_width_asked_and_records_its_timeline() -> None:
    bench = Bench.open(film_config(6), simulate=True)
    try:
        sim = bench.twin.bench
        applied: list[tuple[float, str, float]] = []
        orig = sim.set_level

        def spy(bus: str, volts: float) -> None:  # the twin's own record of when levels changed
            applied.append((sim.clock.now, bus, volts))
            orig(bus, volts)

        sim.set_level = spy
        guard, act, xbar = guarded(bench)
        pattern = {i: (1.0 if i % 2 else -1.0) for i in range(6)}
        for width in (1e-3, 5e-3):
            applied.clear()
            with guard.scoped("write"):
                res = xbar.pulse(pattern, width, count=2, period_s=4 * width)
            levels = {"drive_pos": 1.0, "drive_neg": -1.0}
            # the archived timeline says what the twin applied, and full drive lasts width × count
            t0 = applied[0][0] - res.timeline[0][0]
            assert [(round(t - t0, 9), b, v) for t, b, v in applied] == [
                (round(t, 9), b, v) for t, b, v in res.timeline]
            assert _full_drive_s(res.timeline, levels) == pytest.approx(2 * width, rel=1e-9)
    finally:
        bench.close()


def test_the_multiply_correction_needs_the_present_conductances() -> None:
    """Why in-materio recall reads the matrix first: a multiply's contact-loss correction is a
    nodal model of the film; fed the nominal conductance it leaves a field error several times
    the read noise of a field, fed a fresh read it leaves read noise alone."""
    bench = Bench.open(film_config(35), simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        v = bench.config.limits.v_read_max_V / 2
        lay = bench.config.layout
        gm = np.zeros((35, 35))
        for d, (a, c) in enumerate(lay.devices):
            gm[a, c] = gm[c, a] = bench.truth()[d]
        rng = np.random.default_rng(0)
        patterns = [rng.choice([-1, 1], 35) for _ in range(3)]

        def field_error() -> float:
            errs = []
            for s in patterns:
                with guard.scoped("read"):
                    res = xbar.multiply(tuple(int(z) for z in s), None, v)
                errs.append(res.currents / v - gm @ s)
            return float(np.sqrt(np.mean(np.square(errs))))

        nominal = field_error()  # nothing read yet in this session: the nominal conductance
        with guard.scoped("read"):
            xbar.read_matrix(None, v, 1, "guarded")
        calibrated = field_error()
        sigma = bench.twin.bench.preset.read_noise_window * bench.twin.bench.preset.window_S
        noise_of_a_field = sigma * np.sqrt(34)  # 34 paths into each contact, each read noisy
        assert calibrated < 1.5 * noise_of_a_field
        assert nominal > 3 * noise_of_a_field
    finally:
        bench.close()


def test_sources_on_one_trigger_line_pulse_together_for_exactly_the_width() -> None:
    d = film_bench_dict(6)
    d["wiring"]["trigger_lines"] = {1: ["smu1", "smu2", "smu3", "smu4"]}
    cfg = parse_bench(d, "film6-triggered.toml")
    assert cfg.sync_line(["drive_pos", "drive_neg"]) == 1
    bench = Bench.open(cfg, simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        sim = bench.twin.bench
        t_start = sim.clock.now
        pattern = {i: (1.0 if i % 2 else -1.0) for i in range(6)}
        with guard.scoped("write"):
            res = xbar.pulse(pattern, 2e-3, count=2, period_s=6e-3)
        applied = [(t - t_start, bus, v) for t, bus, v in sim.timeline_since(t_start)
                   if bus in ("drive_pos", "drive_neg")]
        starts = sorted({round(t, 9) for t, _, v in applied if v != 0.0})
        stops = sorted({round(t, 9) for t, _, v in applied if v == 0.0})
        assert len(starts) == 2 and len(stops) == 2  # both buses step at one instant, twice
        assert [b - a for a, b in zip(starts, stops)] == pytest.approx([2e-3, 2e-3], abs=1e-6)
        levels = {"drive_pos": 1.0, "drive_neg": -1.0}
        assert _full_drive_s(res.timeline, levels) == pytest.approx(4e-3, rel=1e-9)
        assert guard.levels["drive_pos"] == guard.levels["drive_neg"] == 0.0
    finally:
        bench.close()


def test_a_trigger_line_names_instruments_that_have_one() -> None:
    d = film_bench_dict(6)
    d["wiring"]["trigger_lines"] = {1: ["smu1", "nope"], 20: ["smu2"]}
    with pytest.raises(ConfigError) as err:
        parse_bench(d, "bad.toml")
    text = str(err.value)
    assert "wiring.trigger_lines.1: no instrument named 'nope'" in text
    assert "wiring.trigger_lines.20" in text and "has no trigger line 20" in text


def test_a_two_bus_pulse_asks_each_source_for_a_clamp_while_both_drive_and_reports_one() -> None:
    """Without a shared trigger line the buses are set one after another; each source is asked
    for its compliance state inside the width, so a clamped drive stops the operation (both
    buses back at 0 V) instead of being recorded as applied; a pulse too short for the queries
    keeps its width."""
    bench = Bench.open(film_config(6), simulate=True)
    try:
        guard, act, xbar = guarded(bench)
        pattern = {i: (1.0 if i % 2 else -1.0) for i in range(6)}
        levels = {"drive_pos": 1.0, "drive_neg": -1.0}
        start = len(bench.command_log)
        with guard.scoped("write"):
            res = xbar.pulse(pattern, 5e-3)
        sent = [m for _, _, m in list(bench.command_log)[start:]]
        assert sum("source.compliance" in m for m in sent) == 2, sent
        assert _full_drive_s(res.timeline, levels) == pytest.approx(5e-3, rel=1e-9)
        start = len(bench.command_log)
        with guard.scoped("write"):
            short = xbar.pulse(pattern, 1e-3)  # shorter than the two queries and a latency
        assert not any("source.compliance" in m for _, _, m in list(bench.command_log)[start:])
        assert _full_drive_s(short.timeline, levels) == pytest.approx(1e-3, rel=1e-9)

        # 10 µA against the ~mA a ±1 V pattern drives through a 6-contact film (G ~ mS)
        act.set_compliance("drive_pos", 1e-5)
        with guard.scoped("write"), pytest.raises(ComplianceHit, match="drive_pos"):
            xbar.pulse(pattern, 5e-3)
        sim = bench.twin.bench
        assert guard.levels == {b: 0.0 for b in guard.levels}
        assert all(sim.bus_state(b)["level"] == 0.0 for b in levels)
    finally:
        bench.close()


@pytest.mark.parametrize("cfg", [film_config(8, contact=2.0), load_bench("sim-crossbar35-sot")], ids=["film8", "crossbar35"])
def test_the_guard_offset_correction_is_the_per_device_sum(cfg) -> None:
    """Σ_k G_sk (v_k − v_s) − G_sd (v_d − v_s) with v_k = R·G_dk·v_d, taken for every read at once,
    is the loop over the reads one by one (the matrix algebra: R·v_d·(G_s·G_d) − v_s·(ΣG_s − G_sd))."""
    pb = PaperBench(cfg)
    guard = SafetyGuard(cfg)
    pb.guard = guard
    xbar = Crossbar(GuardedActuator(guard, pb, pb.timing), cfg)
    xbar.r_contact = 1.5  # (whatever the bench file calibrated)
    rng = np.random.default_rng(4)
    devices = cfg.layout.devices
    g = rng.uniform(0.5, 1.5, len(devices)) * cfg.g_nominal
    g[rng.random(len(devices)) < 0.1] = np.nan  # unread: the estimate stands in
    picks = rng.choice(len(devices), size=min(60, len(devices)), replace=False)
    reads = []
    for dev in picks:
        a, b = (int(x) for x in devices[dev])
        d, s = (a, b) if rng.random() < 0.5 else (b, a)
        reads.append((int(dev), d, s, float(rng.uniform(0.09, 0.1)), float(rng.normal(0, 1e-5))))
    want = g.copy()
    gm = xbar._g_matrix(np.where(np.isfinite(g), g, xbar.g_estimate))
    for dev, d, s, v_d, v_s in reads:
        v_k = xbar.r_contact * gm[d] * v_d
        v_k[d] = v_d
        want[dev] -= (gm[s] @ (v_k - v_s) - gm[s, d] * (v_d - v_s)) / (v_d - v_s)
    got = g.copy()
    xbar._guard_offsets(got, reads)
    assert not np.allclose(got[picks], g[picks], rtol=1e-9, equal_nan=True)  # a correction was made
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)
