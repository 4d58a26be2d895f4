"""Node voltages kept across relay configurations that pin every line alike (``kept_solutions``),
each checked against solving the configuration itself: a guarded read drives each line once per
sense group, with every other line at 0 V on one bus or another."""
from __future__ import annotations

import numpy as np
import pytest

from sim_backend import SimulatedBench, load_preset
from sim_backend.adjoints import DRIFT
from test_adjoints import BUSES, _bench, _route


def _twins(n: int, preset="crossbar-sot") -> tuple[SimulatedBench, SimulatedBench]:
    """Two twins of one sample: the first keeps solutions by pin key, the second solves each."""
    ref = _bench(n, preset)
    ref.recall_solutions = False
    return _bench(n, preset), ref


@pytest.mark.parametrize("n", [12, 56])  # the dense solve, and the structured one (≥ 100 free lines)
def test_a_configuration_recalled_by_its_pin_key_reads_what_its_own_solve_gives_bit_for_bit(n: int) -> None:
    """Two sense groups, every row driven in each: the second group takes each row's node
    voltages from the first (no solve) and every reading, drawn noise included, and every
    solution array is the one solving it gives, to the bit."""
    kept, ref = _twins(n)
    names = kept.topology.line_names
    rows, cols = names[:n], names[n:]
    solves = []
    solve = kept.circuit.solve
    kept.circuit.solve = lambda G: solves.append(1) or solve(G)
    for group in ((cols[0], cols[1]), (cols[2], cols[3])):
        for row in rows[:8]:
            on = {row: "drive", group[0]: "s0", group[1]: "s1"}
            for bench in (kept, ref):
                _route(bench, on)
            for bus in BUSES:
                assert kept.measure(bus, 0.02) == ref.measure(bus, 0.02)
            a, b = kept.solve_now(), ref.solve_now()
            assert a.bus_current == b.bus_current and a.bus_v == b.bus_v
            for field in ("line_v", "device_v", "device_i", "link_current"):
                assert np.array_equal(getattr(a, field), getattr(b, field))
    assert kept.array.version == ref.array.version and np.array_equal(kept.array.x, ref.array.x)
    assert kept._kept.recalled == 8 and ref._kept.recalled == 0
    assert len(solves) == 8  # the first group's


def test_a_recalled_solution_is_carried_over_a_small_drift_and_dropped_past_it() -> None:
    """Below DRIFT the recalled solution stands for the moved state, its readings corrected to
    first order (agreeing with a fresh solve to second order, where the recalled current alone
    is off by the change itself); a real change of state drops what was kept: solved afresh."""
    bench = _bench(12, load_preset("crossbar-sot", {"read_noise_window": 0.0, "relax_attempt_Hz": 0.0}))
    names = bench.topology.line_names
    first = {names[0]: "drive", names[12]: "s0", names[13]: "s1"}
    again = {names[0]: "drive", names[14]: "s0", names[15]: "s1"}  # the same pins, another group
    _route(bench, first)
    bench.measure("s0", 0.0)
    arr, dev = bench.array, 2  # R0–K2, read on s0 in the second configuration
    g0 = arr.conductance_view()[dev]
    x = arr.x.copy()
    x[dev] -= np.float32(4e-7) * (1 - arr.contrast[dev] * x[dev]) / arr.contrast[dev]
    arr.x = x
    assert 1e-7 < arr.conductance_view()[dev] / g0 - 1 < DRIFT
    _route(bench, again)
    reading = bench.measure("s0", 0.0)[1]
    assert bench._kept.recalled == 1
    fresh = bench.circuit.solve(arr.conductance()).bus_current["s0"]
    recalled = bench.solve_now().bus_current["s0"]
    assert abs(recalled - fresh) > 1e-7 * abs(fresh)
    assert reading == pytest.approx(fresh, rel=1e-12, abs=0)
    # solved at the moved state (off the reference, within DRIFT): kept with its own conductances,
    # so another group's configuration with its pins is exact there
    _route(bench, {names[1]: "drive", names[12]: "s0", names[13]: "s1"})
    bench.measure("s0", 0.0)
    _route(bench, {names[1]: "drive", names[14]: "s0", names[15]: "s1"})
    for bus in BUSES:
        assert bench.measure(bus, 0.0)[1] == bench.circuit.solve(arr.conductance()).bus_current[bus]
    assert bench._kept.recalled == 2
    x[dev] *= 0.5
    arr.x = x
    _route(bench, first)
    assert bench.measure("s0", 0.0)[1] == bench.circuit.solve(arr.conductance()).bus_current["s0"]
    assert bench._kept.recalled == 2


def test_configurations_that_pin_a_line_differently_are_never_recalled() -> None:
    """The pin key is each line's level and contact: another drive line, another level, a line
    left floating or a source off is another key (each solved), the bus holding a 0 V line is not."""
    bench = _bench(8)
    names = bench.topology.line_names
    keys = []
    for on, level in (({names[0]: "drive", names[8]: "s0"}, 0.1),
                      ({names[0]: "drive", names[9]: "s0"}, 0.1),  # the same pins: the same key
                      ({names[1]: "drive", names[8]: "s0"}, 0.1),
                      ({names[0]: "drive", names[8]: "s0"}, 0.05)):
        _route(bench, on)
        bench.set_level("drive", level)
        bench.solve_now()
        keys.append(bench.circuit.pin_key())
    assert keys[0] == keys[1] and len({keys[0], keys[2], keys[3]}) == 3
    bench.set_level("drive", 0.0)
    bench.solve_now()
    at_rest = bench.circuit.pin_key()
    bench.open([f"guard:{names[5]}"])  # a floating line
    bench.solve_now()
    assert bench.circuit.pin_key() != at_rest
    bench.close([f"guard:{names[5]}"])
    bench.solve_now()
    assert bench.circuit.pin_key() == at_rest
    bench.set_output("s1", False)  # a source with no line turned off
    bench.solve_now()
    assert bench.circuit.pin_key() != at_rest


def test_solutions_are_kept_per_state_and_recalled_when_the_state_returns() -> None:
    """A state left and returned to, to the bit (a continuous film's read alternates between
    the states of two temperature fields), finds its solutions still kept: exact there."""
    bench = _bench(12, load_preset("crossbar-sot", {"read_noise_window": 0.0, "relax_attempt_Hz": 0.0}))
    names = bench.topology.line_names
    arr = bench.array
    x_a = arr.x.copy()
    x_b = x_a.copy()
    x_b[0] *= np.float32(0.5)  # a real change of state
    _route(bench, {names[3]: "drive", names[12]: "s0", names[13]: "s1"})
    bench.measure("s0", 0.0)  # solved in state A
    arr.x = x_b
    _route(bench, {names[4]: "drive", names[12]: "s0", names[13]: "s1"})
    bench.measure("s0", 0.0)  # solved in state B
    arr.x = x_a  # back to A, to the bit (a new version)
    _route(bench, {names[3]: "drive", names[14]: "s0", names[15]: "s1"})
    for bus in BUSES:
        assert bench.measure(bus, 0.0)[1] == bench.circuit.solve(arr.conductance()).bus_current[bus]
    assert bench._kept.recalled == 1
