"""SimulatedBench: buses, relays, virtual time and measurements on one circuit."""
import time

import numpy as np
import pytest

from sim_backend import SimulatedBench, crossbar, film, load_preset

BUSES = ("pos", "neg", "gnd")


def channel(bus: str, line: int) -> str:
    return f"1{'ABC'[BUSES.index(bus)]}{line + 1:02d}"


def film_bench(n=35, preset="film-amr", **kw):
    topo = film(n)
    xp = {channel(b, i): (b, f"C{i}") for b in BUSES for i in range(n)}
    kw.setdefault("seed", 1)
    return SimulatedBench(topo, preset, buses=BUSES, crosspoints=xp, **kw)


def grounded_read(bench, j, volts):
    """Contact j on 'pos' at volts, every other contact on 'gnd' at 0 V."""
    bench.open_all()
    bench.close([channel("pos", j)] + [channel("gnd", i) for i in range(bench.topology.n) if i != j])
    bench.set_level("pos", volts)
    bench.set_output("pos", True)
    bench.set_output("gnd", True)


def test_measure_reads_the_circuit_and_advances_time():
    bench = film_bench(8, preset="ideal", contact_resistance_ohm=0.0)
    grounded_read(bench, 0, 0.05)
    G = bench.true_conductances()
    expected = 0.05 * G[[bench.topology.device_index(0, i) for i in range(1, 8)]].sum()
    t0 = bench.clock.now
    v, i, comp = bench.measure("pos", 0.02)
    assert bench.clock.now == pytest.approx(t0 + 0.02)
    assert (v, comp) == (0.05, False)
    assert i == pytest.approx(expected, rel=1e-12)
    assert bench.measure("gnd", 0.0)[1] == pytest.approx(-expected, rel=1e-12)
    sol = bench.solve_now()
    assert sol.fast_path and sol.bus_current["pos"] == pytest.approx(expected, rel=1e-12)


def test_reads_are_noisy_but_leave_the_state_alone():
    bench = film_bench()
    grounded_read(bench, 3, bench.preset.read_voltage_V)
    x0 = bench.array.x.copy()
    currents = [bench.measure("pos", 0.001)[1] for _ in range(300)]
    assert np.std(currents) > 0
    assert np.allclose(bench.array.x, x0, atol=1e-7)
    # the scatter is the read noise of the 34 paths, summed
    sigma = bench.preset.read_noise_window * bench.array.window_S * bench.preset.read_voltage_V
    assert np.std(currents) == pytest.approx(sigma * np.sqrt(34), rel=0.25)


def test_output_off_gives_no_current():
    bench = film_bench(6)
    grounded_read(bench, 0, 0.1)
    bench.set_output("pos", False)
    v, i, comp = bench.measure("pos", 0.0)
    assert i == 0.0 and not comp
    assert bench.measure("gnd", 0.0)[1] == 0.0


def test_compliance_through_the_bench():
    bench = film_bench(10, preset="ideal")
    grounded_read(bench, 0, 1.0)
    bench.set_compliance("pos", 1e-5)
    v, i, comp = bench.measure("pos", 0.0)
    assert comp and i == pytest.approx(1e-5) and v < 1.0
    assert bench.bus_state("pos") == {"level": 1.0, "compliance": 1e-5, "output": True,
                                      "resistance_ohm": 0.0}


def test_bad_names_are_reported():
    bench = film_bench(4)
    with pytest.raises(KeyError, match="nope"):
        bench.set_level("nope", 1.0)
    with pytest.raises(KeyError, match="9Z99"):
        bench.close(["9Z99"])
    with pytest.raises(KeyError, match="C77"):
        SimulatedBench(film(4), "ideal", seed=0, buses=["a"], crosspoints={"1A01": ("a", "C77")})
    with pytest.raises(ValueError, match="bus 'b'"):
        SimulatedBench(film(4), "ideal", seed=0, buses=["a"], crosspoints={"1A01": ("b", "C0")})
    with pytest.raises(ValueError, match="compliance"):
        bench.set_compliance("pos", 0.0)


def test_relay_counters():
    bench = film_bench(4)
    bench.close([channel("pos", 0), channel("gnd", 1)])
    bench.close([channel("pos", 0)])  # already closed: no operation
    assert bench.relay_operations == 2 and bench.hot_switches == 0
    assert bench.closed() == {channel("pos", 0), channel("gnd", 1)}
    bench.set_level("pos", 0.5)
    bench.set_output("pos", True)
    bench.open([channel("gnd", 1)])
    assert bench.relay_operations == 3 and bench.hot_switches == 1
    bench.set_level("pos", 0.0)
    bench.open_all()
    assert bench.relay_operations == 4 and bench.hot_switches == 1
    assert bench.closed() == set()


def pulse_pattern(bench, s, volts, width, pieces=1, sleep=False):
    bench.open_all()
    bench.close([channel("pos" if si > 0 else "neg", i) for i, si in enumerate(s)])
    bench.set_level("pos", volts)
    bench.set_level("neg", -volts)
    bench.set_output("pos", True)
    bench.set_output("neg", True)
    for _ in range(pieces):
        (bench.clock.sleep if sleep else bench.advance)(width / pieces)
    bench.set_output("pos", False)
    bench.set_output("neg", False)


@pytest.mark.parametrize("contact", [0.0, 20.0])
def test_pulse_as_one_command_or_on_wait_off_is_the_same(contact):
    s = np.where(np.arange(12) % 3 == 0, 1, -1)
    p = load_preset("film-amr", {"cycle_noise": 0.0, "read_noise_window": 0.0})
    whole, split, slept = (film_bench(12, preset=p, contact_resistance_ohm=contact) for _ in range(3))
    x0 = whole.array.x.copy()
    pulse_pattern(whole, s, 1.0, 0.02)
    pulse_pattern(split, s, 1.0, 0.02, pieces=10)
    pulse_pattern(slept, s, 1.0, 0.02, pieces=10, sleep=True)
    moved = np.abs(whole.array.x - x0).max()
    assert moved > 0.05
    assert np.abs(whole.array.x - split.array.x).max() < 1e-2 * moved
    assert np.array_equal(split.array.x, slept.array.x)
    assert whole.clock.now == pytest.approx(split.clock.now) == pytest.approx(0.02)


def test_series_resistance_weakens_the_drive():
    """Devices see what the circuit gives them: contact resistance steals voltage."""
    s = np.where(np.arange(10) < 5, 1, -1)
    moved = {}
    for contact in (0.0, 300.0):
        bench = film_bench(10, preset="ideal", contact_resistance_ohm=contact)
        pulse_pattern(bench, s, 1.0, 0.01)
        moved[contact] = bench.array.x.max()
    assert 0 < moved[300.0] < 0.8 * moved[0.0]


def test_same_seed_same_bench_run():
    runs = []
    for seed in (5, 5, 6):
        bench = film_bench(10, seed=seed)
        for k in range(5):
            pulse_pattern(bench, np.where(np.arange(10) % (k + 2) == 0, 1, -1), 1.0, 1e-3)
        grounded_read(bench, 0, 0.05)
        runs.append((bench.array.x.copy(), [bench.measure("pos", 1e-3)[1] for _ in range(3)]))
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_realtime_sync_follows_the_wall_clock():
    bench = film_bench(4, realtime=True)
    bench.sync_realtime()
    time.sleep(0.05)
    bench.sync_realtime()
    assert 0.04 < bench.clock.now < 1.0
    still = film_bench(4)
    time.sleep(0.01)
    still.sync_realtime()
    assert still.clock.now == 0.0


def test_crossbar_bench_and_tied_neurons():
    topo = crossbar(4, tied=True)
    assert topo.neuron_lines[2] == (2, 6) and topo.line_names[6] == "K2"
    xp = {f"1A{i:02d}": ("drive", name) for i, name in enumerate(topo.line_names)}
    xp.update({f"1B{i:02d}": ("gnd", name) for i, name in enumerate(topo.line_names)})
    bench = SimulatedBench(topo, "crossbar-sot", seed=3, buses=["drive", "gnd"], crosspoints=xp,
                           contact_resistance_ohm=0.0)
    bench.close(["1A01"] + [f"1B{i:02d}" for i in range(8) if i != 1])
    bench.set_level("drive", 0.1)
    bench.set_output("drive", True)
    bench.set_output("gnd", True)
    G = bench.true_conductances()
    row1 = G[[topo.device_index(1, j) for j in range(4)]].sum()
    assert bench.measure("drive", 0.0)[1] == pytest.approx(0.1 * row1, rel=0.2)  # read noise
    assert bench.solve_now().bus_current["drive"] == pytest.approx(0.1 * row1, rel=1e-12)
