"""Synchronized multi-bus pulses: 2600B digital I/O trigger lines wired between instruments.

Each channel is armed through the driver (its trigger model waits for digio line k, ends
the pulse on a timer); one instrument asserts the line; the simulated bench records every
level change with its virtual time. Synchronized, every bus reaches full drive at the same
instant and holds exactly the width; set one after another (the lab's sequential path),
the buses start one command latency apart.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import film_bench_dict

from drivers import open_instrument
from lab.bench import Bench, twin_spec
from lab.config import load_bench, parse_bench
from lab.crossbar import Crossbar
from lab.safety import GuardedActuator, SafetyGuard
from sim_backend.server import SimServer
from sim_backend.twin import TwinSpecError, build_twin

TICK = 1e-6  # a 2600B trigger timer's resolution
WIDTH = 1e-3
LINE = 1


def film35_spec() -> dict:
    """The shipped sim-film35 twin, with digio line 1 of its four 2636Bs joined by a cable."""
    spec = twin_spec(load_bench("sim-film35"))
    smus = [e["name"] for e in spec["instruments"] if e["model"] == "keithley2636b"]
    return {**spec, "trigger_lines": {str(LINE): smus}}


def bus_of(spec: dict) -> dict[str, tuple[str, str]]:
    """bus -> (instrument, channel)."""
    return {bus: (e["name"], ch) for e in spec["instruments"] for ch, bus in e.get("channels", {}).items()}


def crosspoint_of(spec: dict, bus: str, line: str) -> str:
    xps = next(e["crosspoints"] for e in spec["instruments"] if e["model"] == "keithley707b")
    return next(xp for xp, (b, ln) in xps.items() if (b, ln) == (bus, line))


class Drivers:
    """The twin's source-meters through pyvisa (in process, or over TCP sockets)."""

    def __init__(self, twin, transport: str) -> None:
        self.server = None
        if transport == "tcp":
            self.server = SimServer.from_twin(twin).start()
            addresses, library = self.server.resources, "@py"
        else:
            addresses = {e["name"]: e["resource"] for e in twin.spec["instruments"]}
            library = twin.visa_library()
        self.smu = {e["name"]: open_instrument(e["model"], addresses[e["name"]], visa_library=library,
                                               timeout=2000, name=e["name"])
                    for e in twin.spec["instruments"] if e["model"] == "keithley2636b"}

    def channel(self, spec: dict, bus: str):
        inst, ch = bus_of(spec)[bus]
        return self.smu[inst].channels()[ch]

    def close(self) -> None:
        for drv in self.smu.values():
            drv.close()
        if self.server is not None:
            self.server.stop()


def route(twin, pulses: dict[str, tuple[str, float]]) -> None:
    twin.bench.close([crosspoint_of(twin.spec, bus, line) for bus, (line, _) in pulses.items()])


def sync_pulse(twin, drivers: Drivers, pulses: dict[str, tuple[str, float]], master: str) -> float:
    """Arm ``pulses`` (bus -> (device line, volts)) on LINE, fire from ``master``; the edge time."""
    armed = set()
    for bus, (_, volts) in pulses.items():
        ch = drivers.channel(twin.spec, bus)
        ch.set_current_limit(0.1)
        ch.set_voltage(0.0)
        ch.set_output(True)
        ch.arm_sync_pulse(volts, WIDTH, line=LINE)
        armed.add(bus_of(twin.spec)[bus][0])
    t0 = twin.bench.clock.now
    drivers.smu[master].fire_trigger_line(LINE, WIDTH)
    for name in sorted(armed - {master}):
        drivers.smu[name].wait_complete(WIDTH)
    return t0


def full_drive(timeline, levels: dict[str, float]) -> tuple[float, float]:
    """(first instant every bus is at its full level, first instant after that one is not)."""
    now: dict[str, float] = {}
    start = None
    for t, bus, v in sorted(timeline):
        now[bus] = v
        at_full = all(now.get(b) == lv for b, lv in levels.items())
        if start is None and at_full:
            start = t
        elif start is not None and not at_full:
            return start, t
    raise AssertionError(f"the buses {levels} never left full drive together: {timeline}")


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_buses_on_two_instruments_start_and_stop_at_the_same_instant(transport):
    twin = build_twin(film35_spec())
    pulses = {"drive_pos": ("C0", 1.0), "drive_neg": ("C1", -1.0), "guard": ("C2", 0.5)}  # smu1.a/b, smu2.a
    route(twin, pulses)
    drivers = Drivers(twin, transport)
    try:
        twin.bench.advance(0.01)  # the edge is at a time of its own, not at 0
        t0 = sync_pulse(twin, drivers, pulses, master="smu1")
    finally:
        drivers.close()
    timeline = twin.bench.timeline_since(t0)
    assert [(t, b, v) for t, b, v in timeline if v != 0.0] == [(t0, b, v) for b, (_, v) in pulses.items()]
    stops = [(t, b) for t, b, v in timeline if v == 0.0]
    assert [b for _, b in stops] == list(pulses)
    assert all(abs(t - (t0 + WIDTH)) <= TICK for t, _ in stops)
    start, end = full_drive(timeline, {b: v for b, (_, v) in pulses.items()})
    assert start == t0
    assert abs((end - start) - WIDTH) <= TICK
    assert twin.trigger_lines[LINE].edges == [(t0, "smu1")]
    assert all(twin.bench.bus_state(b)["level"] == 0.0 for b in pulses)


def test_the_physics_sees_one_pulse_of_the_width_at_full_drive():
    spec = film_bench_spec(6)
    pulses = {"drive_pos": ("C0", 1.0), "drive_neg": ("C1", -1.0)}
    twin, ref = build_twin(spec), build_twin(spec)
    for tw in (twin, ref):
        route(tw, pulses)
    drivers = Drivers(twin, "inproc")
    try:
        t0 = sync_pulse(twin, drivers, pulses, master="smu1")
    finally:
        drivers.close()
    # the reference: the same levels switched on and off by hand, exactly WIDTH apart
    for bus in pulses:
        ref.bench.set_compliance(bus, 0.1)
        ref.bench.set_output(bus, True)
    ref.bench.advance(t0 - ref.bench.clock.now)
    ref.bench.set_levels({b: v for b, (_, v) in pulses.items()})
    ref.bench.advance(WIDTH)
    ref.bench.set_levels({b: 0.0 for b in pulses})
    moved = np.abs(twin.bench.true_conductances() - build_twin(spec).bench.true_conductances())
    assert moved.max() > 0  # 2 V across C0-C1 is above threshold: the pulse did something
    np.testing.assert_allclose(twin.bench.true_conductances(), ref.bench.true_conductances(), rtol=1e-12)


def film_bench_spec(n: int) -> dict:
    spec = twin_spec(parse_bench(film_bench_dict(n), f"film{n}.toml"))
    return {**spec, "trigger_lines": {str(LINE): ["smu1", "smu2"]}}


def test_the_sequential_path_is_one_command_latency_apart_where_the_trigger_is_not():
    cfg = parse_bench(film_bench_dict(6), "film6.toml")
    bench = Bench.open(cfg, simulate=True)
    try:
        guard = SafetyGuard(bench.config)
        act = GuardedActuator(guard, bench.backend(), bench.timing)
        xbar = Crossbar(act, bench.config)
        xbar.prepare()
        sim = bench.twin.bench
        t0 = sim.clock.now
        with guard.scoped("write"):
            xbar.pulse({0: 1.0, 1: -1.0}, WIDTH)
        seq = [e for e in sim.timeline_since(t0) if e[1] in ("drive_pos", "drive_neg")]
    finally:
        bench.close()
    latency = bench.timing.command_s
    starts = sorted(t for t, _, v in seq if v != 0.0)
    assert starts[1] - starts[0] == pytest.approx(latency)  # one bus after the other
    start, end = full_drive(seq, {"drive_pos": 1.0, "drive_neg": -1.0})
    assert end - start == pytest.approx(WIDTH)  # the lab shortens the hold to keep full drive at the width
    for bus in ("drive_pos", "drive_neg"):  # each bus is driven a latency longer than the width
        on, off = (t for t, b, _ in seq if b == bus)
        assert off - on == pytest.approx(WIDTH + latency)

    twin = build_twin(film_bench_spec(6))
    pulses = {"drive_pos": ("C0", 1.0), "drive_neg": ("C1", -1.0)}
    route(twin, pulses)
    drivers = Drivers(twin, "inproc")
    try:
        t0 = sync_pulse(twin, drivers, pulses, master="smu1")
    finally:
        drivers.close()
    sync = twin.bench.timeline_since(t0)
    assert {t for t, _, v in sync if v != 0.0} == {t0}
    assert max(t for t, _, _ in sync) - t0 == pytest.approx(WIDTH, abs=TICK)


def changes_after(twin, n: int) -> list:
    return list(twin.bench.level_timeline)[n:]


def _raw(twin, name: str, chunk: str) -> str:
    inst = twin.instruments[name]
    reply = inst.respond(chunk)
    assert not inst.error_queue, list(inst.error_queue)
    return reply.data.decode().strip()


ARM_A = ("smua.source.limiti = 0.1 smua.source.output = 1 smua.trigger.source.listv({0.5}) "
         "smua.trigger.source.action = smua.ENABLE smua.trigger.source.stimulus = digio.trigger[1].EVENT_ID "
         "trigger.timer[1].delay = 0.002 smua.trigger.endpulse.action = smua.SOURCE_IDLE "
         "smua.trigger.endpulse.stimulus = trigger.timer[1].EVENT_ID digio.trigger[1].mode = digio.TRIG_FALLING "
         "smua.trigger.initiate()")


def test_only_armed_members_with_a_trigger_mode_act_and_abort_disarms():
    twin = build_twin(film_bench_spec(6))
    bus1 = "drive_pos"  # smu1.a; smu2.a drives the guard bus
    _raw(twin, "smu1", ARM_A)
    _raw(twin, "smu2", ARM_A.replace(" digio.trigger[1].mode = digio.TRIG_FALLING", ""))  # left in TRIG_BYPASS
    assert twin.bench.bus_state(bus1)["level"] == 0.0  # armed, waiting for the line
    t0, n0 = twin.bench.clock.now, len(twin.bench.level_timeline)
    _raw(twin, "smu2", "digio.trigger[1].assert()")  # smu2's line is in bypass: it drives nothing
    assert changes_after(twin, n0) == [] and twin.trigger_lines[1].edges == []
    _raw(twin, "smu1", "digio.trigger[1].assert()")
    assert changes_after(twin, n0) == [(t0, bus1, 0.5), (pytest.approx(t0 + 2e-3), bus1, 0.0)]
    n1 = len(twin.bench.level_timeline)
    _raw(twin, "smu1", "digio.trigger[1].assert()")  # the sweep's one point is done: nothing armed
    assert changes_after(twin, n1) == []
    _raw(twin, "smu1", ARM_A + " smua.trigger.abort()")
    _raw(twin, "smu1", "digio.trigger[1].assert()")
    assert changes_after(twin, n1) == []
    assert twin.bench.bus_state("guard")["level"] == 0.0  # smu2 never saw an edge


def test_a_line_not_wired_keeps_the_immediate_stimulus_and_a_measuring_point_is_refused():
    twin = build_twin(film_bench_spec(6))
    t0 = twin.bench.clock.now
    _raw(twin, "smu1", ARM_A.replace("digio.trigger[1]", "digio.trigger[2]"))  # line 2 is not wired
    assert [v for _, _, v in twin.bench.timeline_since(t0)] == [0.5, 0.0]  # ran at once
    inst = twin.instruments["smu1"]
    inst.respond("smua.trigger.measure.action = smua.ENABLE " + ARM_A)
    code, message = inst.next_error()
    assert code == -221 and "line-triggered" in message


@pytest.mark.parametrize("lines, match", [
    ({"15": ["smu1"]}, "1..14"),
    ({"x": ["smu1"]}, "1..14"),
    ({"1": ["smu1", "smu9"]}, "unknown instrument"),
    ({"1": ["smu1", "smu1"]}, "listed twice"),
    ({"1": []}, "joins no instrument"),
    ({"1": ["smu1", "matrix"]}, "no simulated trigger lines"),
    (["smu1"], "must map a line number"),
])
def test_bad_trigger_lines_in_a_twin_spec_name_the_problem(lines, match):
    spec = copy.deepcopy(film_bench_spec(6))
    spec["trigger_lines"] = lines
    with pytest.raises(TwinSpecError, match=match):
        build_twin(spec)


def test_a_line_on_the_arm_stimulus_starts_a_whole_timed_sweep_and_reset_disarms():
    twin = build_twin(film_bench_spec(6))
    sweep = ("smua.source.limiti = 0.1 smua.source.output = 1 smua.trigger.source.listv({0.1, 0.2, 0.3}) "
             "smua.trigger.source.action = smua.ENABLE smua.trigger.count = 3 "
             "smua.trigger.arm.stimulus = digio.trigger[1].EVENT_ID "
             "trigger.timer[2].delay = 0.004 smua.trigger.source.stimulus = trigger.timer[2].EVENT_ID "
             "trigger.timer[1].delay = 0.001 smua.trigger.endpulse.action = smua.SOURCE_IDLE "
             "smua.trigger.endpulse.stimulus = trigger.timer[1].EVENT_ID digio.trigger[1].mode = digio.TRIG_EITHER "
             "smua.trigger.initiate()")
    _raw(twin, "smu1", sweep)
    t0, n0 = twin.bench.clock.now, len(twin.bench.level_timeline)
    _raw(twin, "smu2", "digio.trigger[1].mode = digio.TRIG_FALLING digio.trigger[1].assert()")  # another member fires
    got = changes_after(twin, n0)
    want = [(0.0, 0.1), (1e-3, 0.0), (4e-3, 0.2), (5e-3, 0.0), (8e-3, 0.3), (9e-3, 0.0)]
    assert [(pytest.approx(t0 + dt), "drive_pos", v) for dt, v in want] == got
    _raw(twin, "smu1", sweep + " reset()")
    n1 = len(twin.bench.level_timeline)
    _raw(twin, "smu2", "digio.trigger[1].mode = digio.TRIG_FALLING digio.trigger[1].assert()")
    assert changes_after(twin, n1) == []
