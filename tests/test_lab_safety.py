"""The safety guard: every action checked, bad operation parameters named, cleanup complete."""
from __future__ import annotations

import tomllib

import numpy as np
import pytest

from lab.bench import Bench, PaperBench
from lab.config import parse_bench
from lab.crossbar import Crossbar
from lab.errors import RoutingError, SafetyError
from lab.operations import Apply, Multiply, Pulse, ReadMatrix, ReadPair, Wait
from lab.opcheck import check_operation
from lab.safety import GuardedActuator, SafetyGuard, make_safe
from conftest import FILM_BENCH, film_config


def small_config(n: int = 6, **limits: object):
    return film_config(n, **limits)


def paper(cfg=None):
    cfg = cfg or small_config()
    pb = PaperBench(cfg)
    guard = SafetyGuard(cfg)
    pb.guard = guard
    act = GuardedActuator(guard, pb, pb.timing)
    xbar = Crossbar(act, cfg)
    xbar.prepare()
    return cfg, guard, act, xbar


def xp(cfg, bus: str, line: int) -> str:
    return cfg.layout.crosspoint[(bus, line)]


def test_relays_switch_only_with_every_source_at_zero() -> None:
    cfg, guard, act, xbar = paper()
    act.switch({xp(cfg, "drive_pos", 0), xp(cfg, "sense0", 1)})
    act.set_level("drive_pos", 0.05)
    with pytest.raises(SafetyError, match="cold switching"):
        act.switch({xp(cfg, "drive_pos", 0)})
    with pytest.raises(SafetyError, match="cold switching"):
        act.open_all()
    act.set_level("drive_pos", 0.0)
    act.open_all()


def test_two_buses_never_on_one_line_and_forbidden_lines_never_connected() -> None:
    cfg, guard, act, xbar = paper(small_config(forbidden_lines=["C5"]))
    with pytest.raises(SafetyError, match="two sources on one line"):
        act.switch({xp(cfg, "drive_pos", 0), xp(cfg, "guard", 0)})
    with pytest.raises(SafetyError, match="forbidden_lines"):
        act.switch({xp(cfg, "guard", 5)})
    assert act.closed == frozenset()


def test_read_scope_caps_device_voltage_and_write_scope_caps_power_and_time() -> None:
    cfg, guard, act, xbar = paper(small_config(power_max_W=0.004))
    act.switch({xp(cfg, "drive_pos", 0), xp(cfg, "drive_neg", 1), xp(cfg, "guard", 2)})
    with guard.scoped("read"):
        act.set_level("drive_pos", 0.2)  # the ceiling itself is allowed
        with pytest.raises(SafetyError, match="v_read_max_V"):
            act.set_level("drive_neg", -0.1)  # 0.3 V across C0-C1
        act.set_level("drive_pos", 0.0)
    with guard.scoped("write"):
        act.set_level("drive_pos", 1.5)
        act.set_level("drive_neg", -1.0)  # 2.5 V at 5e-4 S = 3.1 mW: allowed
        with pytest.raises(SafetyError, match="power_max_W"):
            act.set_level("drive_neg", -1.5)  # 3 V: 4.5 mW > 4 mW
        act.set_level("drive_neg", 0.0)
        with pytest.raises(SafetyError, match="v_max_V"):
            act.set_level("drive_neg", -1.6)
        act.hold(0.006)
        with pytest.raises(SafetyError, match="pulse_width_max_s"):
            act.hold(0.005)  # 11 ms above the read ceiling > 10 ms
        act.set_level("drive_pos", 0.0)
        act.hold(1.0)  # at read level any duration is fine
        with pytest.raises(SafetyError, match="pulse_width_max_s"):
            act.pulse("drive_pos", 1.0, 0.02)


def test_outputs_need_a_limit_first_and_limits_stay_within_the_bus() -> None:
    cfg = small_config()
    pb = PaperBench(cfg)
    guard = SafetyGuard(cfg)
    pb.guard = guard
    act = GuardedActuator(guard, pb, pb.timing)
    with pytest.raises(SafetyError, match="compliance_A"):
        act.set_output("sense0", True)
    with pytest.raises(SafetyError, match="buses.sense0.compliance_A"):
        act.set_compliance("sense0", 0.02)  # the bus allows 0.01 A
    act.set_compliance("sense0", 0.01)
    with pytest.raises(SafetyError, match="output on"):
        act.set_level("sense0", 0.1)
    act.set_output("sense0", True)


def test_limits_stay_within_what_the_hardware_holds_at_the_line_limit() -> None:
    d = tomllib.loads(FILM_BENCH.read_text())
    d["limits"]["v_max_V"] = 100.0
    d["buses"]["guard"]["compliance_A"] = 0.5  # a 2636B's 1.515 A, but only up to 20 V
    guard = SafetyGuard(parse_bench(d, "hv.toml"))
    guard.check_compliance("guard", 0.1)
    with pytest.raises(SafetyError, match=r"buses\.guard\.compliance_A: .* exceeds 0\.101 A, what a "
                                          r"keithley2636b can hold at limits\.v_max_V=100"):
        guard.check_compliance("guard", 0.5)
    d["limits"]["v_max_V"] = 1.5
    d["buses"]["guard"]["compliance_A"] = 1.2
    with pytest.raises(SafetyError, match="carry rating of the keithley707b relays"):
        SafetyGuard(parse_bench(d, "hi.toml")).check_compliance("guard", 1.2)
    d["limits"]["v_max_V"] = 202.0  # what the 2636B sources; the 707B's relays are rated 200 V
    guard = SafetyGuard(parse_bench(d, "hv.toml"))
    guard.outputs["drive_pos"] = True
    with pytest.raises(SafetyError, match="±200.0 V .*keithley707b relays' signal rating"):
        guard.check_level("drive_pos", 201.0)


def test_crossbar_refuses_more_levels_than_drive_buses() -> None:
    cfg, guard, act, xbar = paper()
    with guard.scoped("write"), pytest.raises(RoutingError, match="2 .*drive_pos, drive_neg"):
        xbar.apply({0: 0.5, 1: -0.5, 2: 0.25}, 1e-3)


# (operation, field the error names, words in the message)
BAD_OPS = [
    (Apply.of({0: 3.0}, 1e-3), "apply.line_voltages", "v_max_V"),
    (Apply.of({9: 0.1}, 1e-3), "apply.line_voltages", "not a line index"),
    (Apply.of({5: 0.1}, 1e-3), "apply.line_voltages", "forbidden"),
    (Apply.of({0: 1.0}, 0.5), "apply.duration_s", "pulse_width_max_s"),
    (Apply.of({0: 1.0, 1: -1.0, 2: 0.5}, 1e-3), "apply.line_voltages", "drive bus"),
    (Apply.of({0: 1.5, 1: -1.5}, 1e-3), "apply.line_voltages", "power_max_W"),
    (Apply.of({0: 0.1}, -1.0), "apply.duration_s", "not a duration"),
    (Pulse.of({0: 1.0}, 0.0), "pulse.width_s", "pulse_width_max_s"),
    (Pulse.of({0: 1.0}, 0.05), "pulse.width_s", "pulse_width_max_s"),
    (Pulse.of({0: 1.0}, 1e-3, count=0), "pulse.count", "positive"),
    (Pulse.of({0: 1.0}, 1e-3, period_s=5e-4), "pulse.period_s", "shorter"),
    (ReadPair(0, 0), "read_pair.b", "no device"),
    (ReadPair(0, 1, v_read=0.5), "read_pair.v_read", "v_read_max_V"),
    (ReadPair(0, 1, v_read=-0.1), "read_pair.v_read", "v_read_max_V"),
    (ReadPair(0, 1, repeats=0), "read_pair.repeats", "positive"),
    (ReadPair(0, 1, scheme="sloppy"), "read_pair.scheme", "guarded"),
    (ReadMatrix(devices=(999,)), "read_matrix.devices", "not a device index"),
    (ReadMatrix(devices=(4,)), "read_matrix.devices", "forbidden"),
    (Multiply(pattern=(1, -1, 1)), "multiply.pattern", "6 values"),
    (Multiply(pattern=(1, 0, 1, 1, 1, 1)), "multiply.pattern", "±1"),
    (Multiply(pattern=(1, -1, 1, 1, 1, 1), v_read=0.15), "multiply.v_read", "2·v_read"),
    (Wait(-1.0), "wait.seconds", "not a duration"),
]


@pytest.mark.parametrize("op,field,words", BAD_OPS, ids=[f"{o.kind}-{f}-{i}" for i, (o, f, _) in enumerate(BAD_OPS)])
def test_bad_operation_parameters_are_named(op, field: str, words: str) -> None:
    cfg = small_config(power_max_W=0.004) if field.startswith("multiply") else \
        small_config(forbidden_lines=["C5"], power_max_W=0.004)
    with pytest.raises(SafetyError) as info:
        check_operation(op, cfg)
    assert info.value.field == field, str(info.value)
    assert words in str(info.value)


def test_good_operations_pass() -> None:
    cfg = small_config()
    for op in (Apply.of({0: 1.0, 1: -1.0}, 1e-3), Pulse.of({0: 1.0}, 1e-3, count=10), ReadPair(0, 1),
               ReadMatrix(), Multiply(pattern=(1,) * 6, v_read=0.2), Multiply(pattern=(1, -1) * 3), Wait(1.0)):
        check_operation(op, cfg)


def _state(bench: Bench) -> tuple[dict, set]:
    sim = bench.twin.bench
    return {b: sim.bus_state(b) for b in sim.buses}, sim.closed()


def test_make_safe_attempts_every_step_even_when_an_instrument_is_dead() -> None:
    cfg = small_config()
    bench = Bench.open(cfg, simulate=True)
    try:
        guard = SafetyGuard(cfg)
        act = GuardedActuator(guard, bench.backend(), bench.timing)
        xbar = Crossbar(act, cfg)
        xbar.prepare()
        with guard.scoped("read"):
            xbar.configure({0: "drive_pos", 1: "sense0", 2: "guard"}, {"drive_pos": 0.1})
        states, closed = _state(bench)
        assert states["drive_pos"]["level"] == 0.1 and states["drive_pos"]["output"] and closed
        bench.twin.instruments["smu3"].faults.timeout = True  # stops answering, executes nothing
        errors = make_safe(bench.channels, bench.matrix)
        failed = {step.split(":")[0] for step, _ in errors}
        assert failed == {"sense1", "sense2"}  # smu3's two channels, and only them
        states, closed = _state(bench)
        assert closed == set()
        for bus, st in states.items():
            if bus not in ("sense1", "sense2"):
                assert st["level"] == 0.0 and not st["output"], bus
        assert bench.twin.bench.hot_switches == 0
    finally:
        bench.twin.instruments["smu3"].faults.clear()
        bench.close()


def test_paper_bench_reads_nominal_conductance() -> None:
    cfg, guard, act, xbar = paper()
    with guard.scoped("read"):
        res = xbar.read_matrix(None, 0.1)
        pair = xbar.read_pair(0, 3, 0.1, repeats=3)
    # paper contacts are ideal, so the bench file's 1 Ω correction shows as +R·ΣG = +0.05 %
    assert np.allclose(res.g, cfg.g_nominal, rtol=1e-3)
    assert pair.g == pytest.approx(cfg.g_nominal, rel=1e-3)
