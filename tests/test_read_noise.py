"""Read noise carried to a reading as a small signal, against every device drawn per reading.

The small-signal reading (``sim_backend/read_noise.py``) rests on Tellegen's theorem,
∂I_b/∂G_k = ΔV_k·ΔU_bk: checked here against finite differences of the exact solve, on the
dense and the structured (iterative) solve, guarded and floating. Its readings are then
compared in distribution with the reference (every device's conductance drawn, the circuit
solved per reading): same mean, same scatter, for a crossbar and for a continuous film.
"""
from __future__ import annotations

import numpy as np
import pytest

from sim_backend import SimulatedBench, crossbar, film
from sim_backend.circuit import Circuit, Source
from sim_backend.read_noise import _crossbar_sums_of_squares, current_sigmas

BUSES = ("drive", "sense", "guard")


def _circuit(n: int, *, floating: bool, contact_ohm: float = 1.0) -> tuple[Circuit, np.ndarray]:
    """A crossbar of n rows and n columns: row 0 driven at 0.1 V, column 2 sensed at 0 V, every
    other line on the 0 V guard bus (guarded) or left floating except column 4 (floating)."""
    topo = crossbar(n)
    sources = {b: Source(level_V=0.1 if b == "drive" else 0.0, output=True) for b in BUSES}
    c = Circuit(topo, sources)
    idx = c.bus_index
    links = [(idx["drive"], topo.line_index("R0"), contact_ohm), (idx["sense"], topo.line_index("K2"), contact_ohm)]
    others = [name for name in topo.line_names if name not in ("R0", "K2")]
    if floating:
        others = ["K4"]
    links += [(idx["guard"], topo.line_index(name), contact_ohm) for name in others]
    c.configure(links)
    rng = np.random.default_rng(7)
    G = rng.uniform(0.5e-4, 1.5e-4, topo.n_devices)
    return c, G


@pytest.mark.parametrize("n,floating,structured", [(6, False, False), (6, True, False), (60, False, True)],
                         ids=["guarded-dense", "floating-dense", "guarded-structured"])
def test_adjoint_weights_are_the_derivatives_of_the_bus_currents(n: int, floating: bool, structured: bool) -> None:
    c, G = _circuit(n, floating=floating)
    sol = c.solve(G)
    assert sol.structured == structured
    buses = [c.bus_index[b] for b in BUSES]
    u = c.unit_responses(G, buses)
    rng = np.random.default_rng(3)
    ks = rng.choice(G.size, size=min(G.size, 12), replace=False)
    for j, bus in enumerate(BUSES):
        w = sol.device_v * c.device_differences(u[:, j])
        for k in ks:
            h = 1e-3 * G[k]
            up, down = G.copy(), G.copy()
            up[k] += h
            down[k] -= h
            fd = (c.solve(up).bus_current[bus] - c.solve(down).bus_current[bus]) / (2 * h)
            scale = max(abs(w).max(), 1e-30)
            assert w[k] == pytest.approx(fd, rel=1e-6, abs=1e-9 * scale), (bus, k)
    # the bus currents sum to zero (KCL) to first order too: the weights of all buses cancel,
    # but for what the 1e-12 S insulation leak of every node takes to ground (~1e-8 of a floating line's)
    ws = [sol.device_v * c.device_differences(u[:, j]) for j in range(len(BUSES))]
    assert np.abs(sum(ws)).max() <= 1e-6 * max(np.abs(w).max() for w in ws)


def test_structured_unit_responses_agree_with_the_dense_ones() -> None:
    c, G = _circuit(60, floating=False)
    buses = [c.bus_index[b] for b in BUSES]
    fast = c.unit_responses(G, buses)
    u0 = np.zeros((c.n_groups, len(buses)))
    for j, i in enumerate(buses):
        u0[c.group[c.n_lines + i], j] = 1.0
    _, structured = c._free_voltages(G, ("V",) * len(BUSES), u0, np.zeros((c.n_lines, len(buses))),
                                     np.zeros(c.n_lines), False)
    assert structured  # the multi-column CG gave them, not the dense fallback
    c.structured = False
    ref = c.unit_responses(G, buses)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-11)


@pytest.mark.parametrize("floating", [False, True], ids=["guarded", "floating"])
def test_crossbar_sum_of_squares_is_the_sum_over_the_devices(floating: bool) -> None:
    c, G = _circuit(12, floating=floating)
    sol = c.solve(G)
    buses = [c.bus_index[b] for b in BUSES]
    sigma = 1e-6
    u = c.unit_responses(G, buses)
    assert np.isfinite(_crossbar_sums_of_squares(sol.line_v, u[c.group[: c.n_lines]], 12)).all()
    fast = current_sigmas(c, sol, sigma, u)  # the O(N) crossbar form
    per_device = current_sigmas(c, sol, np.full(G.size, sigma), u)  # the sum over devices
    np.testing.assert_allclose(fast, per_device, rtol=1e-9)
    assert (fast > 0).all()


def _bench(topology, preset, drive: str, sense: str, guard: list[str], **kw):
    names = topology.line_names
    xp = {f"1{'ABC'[i]}{k + 1:02d}": (bus, names[k]) for i, bus in enumerate(BUSES) for k in range(len(names))}
    bench = SimulatedBench(topology, preset, buses=BUSES, crosspoints=xp, seed=5, **kw)
    at = {name: k + 1 for k, name in enumerate(names)}
    bench.close([f"1A{at[drive]:02d}", f"1B{at[sense]:02d}"] + [f"1C{at[g]:02d}" for g in guard])
    bench.set_level("drive", 0.1)
    for b in BUSES:
        bench.set_output(b, True)
    return bench


def _crossbar_bench(floating: bool = False):
    topo = crossbar(5)
    guard = ["R1", "K2"] if floating else [n for n in topo.line_names if n not in ("R0", "K1")]
    return _bench(topo, "crossbar-sot", "R0", "K1", guard, contact_resistance_ohm=1.0)


def _readings(bench: SimulatedBench, bus: str, count: int, small_signal: bool) -> np.ndarray:
    bench.small_signal_noise = small_signal
    return np.array([bench.measure(bus, 0.0)[1] for _ in range(count)])


def _normals_drawn(bench: SimulatedBench, state: dict, count: int) -> bool:
    """Whether the bench's generator stands where ``count`` scalar normals from ``state`` put it."""
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    for _ in range(count):
        rng.standard_normal()
    return rng.bit_generator.state == bench.rng.bit_generator.state


def _sigma(bench: SimulatedBench, bus: str) -> float:
    """The small-signal σ of a bus's reading at the bench's present state."""
    c = bench.circuit
    buses = [c.bus_index[b] for b in BUSES]
    u = c.unit_responses(bench.array.conductance(), buses)
    s = current_sigmas(c, bench.solve_now(), bench.array.read_sigma(), u)
    return float(s[buses.index(c.bus_index[bus])])


@pytest.mark.parametrize("case", ["crossbar-guarded", "crossbar-floating", "film", "crossbar-structured"])
def test_small_signal_readings_have_the_distribution_of_per_device_draws(case: str) -> None:
    count, rel = 8000, 0.05  # two 8000-sample σ differ by ~1.1 %: 5 % is 4.5 of that
    if case == "film":
        topo = film(8)
        bench = _bench(topo, "film-continuous", "C0", "C1", list(topo.line_names[2:]), contact_resistance_ohm=1.0)
    elif case == "crossbar-structured":  # 100 free lines: the iterative solve and its multi-column CG
        topo = crossbar(50)
        bench = _bench(topo, "crossbar-sot", "R0", "K1", [n for n in topo.line_names if n not in ("R0", "K1")],
                       contact_resistance_ohm=1.0)
        count, rel = 2500, 0.09
        bench.solve_now()  # (configures the circuit: the fields are solved the same way)
        assert bench.circuit.solve(bench.array.conductance()).structured
    else:
        bench = _crossbar_bench(floating=case == "crossbar-floating")
    for bus in ("sense", "drive"):
        exact = _readings(bench, bus, count, small_signal=False)
        state = bench.rng.bit_generator.state
        fast = _readings(bench, bus, count, small_signal=True)
        assert _normals_drawn(bench, state, count)  # the small-signal path, one normal per reading
        mean0 = bench.solve_now().bus_current[bus]
        se = exact.std() / np.sqrt(count)
        assert exact.std() > 0
        # same centre (the exact draw's mean, and the noiseless current the small signal is built on)
        assert abs(fast.mean() - exact.mean()) < 5 * np.sqrt(2) * se, (bus, fast.mean(), exact.mean(), se)
        assert abs(exact.mean() - mean0) < 5 * se
        assert fast.std() == pytest.approx(exact.std(), rel=rel), bus
    bench.small_signal_noise = True


def test_the_noise_follows_each_new_level_relay_and_state() -> None:
    """σ scales with the drive; the unit responses kept across level changes stay right."""
    bench = _crossbar_bench()
    at = {}
    for volts in (0.1, 0.2, 0.1, 0.2):
        bench.set_level("drive", volts)
        at.setdefault(volts, []).append(_readings(bench, "sense", 1500, small_signal=True))
    lo, hi = np.concatenate(at[0.1]), np.concatenate(at[0.2])
    assert hi.mean() == pytest.approx(2 * lo.mean(), rel=1e-3)
    assert hi.std() == pytest.approx(2 * lo.std(), rel=0.08)  # a σ kept from 0.1 V would give 1×
    assert hi.std() == pytest.approx(_sigma(bench, "sense"), rel=0.06)
    # a relay opened: the sense line floats, its bus carries nothing and no noise
    bench.open(["1B07"])  # K1 (line 7 of R0..R4, K0..K4) off the sense bus
    assert np.all(_readings(bench, "sense", 50, small_signal=True) == 0.0)
    bench.close(["1B07"])
    assert _readings(bench, "sense", 1500, small_signal=True).std() == pytest.approx(hi.std(), rel=0.08)


def test_a_reading_near_its_compliance_is_drawn_the_exact_way_and_can_clamp() -> None:
    bench = _crossbar_bench()
    i0 = bench.solve_now().bus_current["drive"]
    s = _sigma(bench, "drive")
    bench.small_signal_noise = True
    for margin, exact in ((3.0, True), (7.9, True), (8.1, False), (20.0, False)):
        bench.set_compliance("drive", abs(i0) + margin * s)
        state = bench.rng.bit_generator.state
        bench.measure("drive", 0.0)
        drawn = bench.topology.n_devices if exact else 1  # every device, or the one small-signal draw
        assert _normals_drawn(bench, state, drawn), margin
    bench.set_compliance("drive", abs(i0) + 0.5 * s)  # the noise reaches the limit now and then
    results = [bench.measure("drive", 0.0) for _ in range(400)]
    clamped = [r for r in results if r[2]]
    assert 0.1 < len(clamped) / len(results) < 0.6
    assert all(abs(i) <= bench.bus_state("drive")["compliance"] * (1 + 1e-9) for _, i, _ in results)


def test_without_read_noise_a_reading_is_the_noiseless_solution_and_draws_nothing() -> None:
    bench = _crossbar_bench()
    bench.measure("sense", 0.0)  # a noisy reading first: the σ it kept must not outlive the preset
    bench.preset = bench.array.preset = bench.preset.model_copy(update={"read_noise_window": 0.0})
    state = bench.rng.bit_generator.state
    v, i, comp = bench.measure("sense", 0.0)
    assert bench.rng.bit_generator.state == state
    assert i == bench.solve_now().bus_current["sense"] and not comp


@pytest.mark.parametrize("mode", ["small_signal", "every_device"])
def test_the_bench_file_chooses_how_a_dry_run_reading_carries_the_noise(mode: str) -> None:
    from conftest import film_bench_dict
    from lab.bench import Bench
    from lab.config import parse_bench

    d = film_bench_dict(8)
    d["simulation"]["read_noise"] = mode
    bench = Bench.open(parse_bench(d, "film8.toml"), simulate=True)
    try:
        sim = bench.twin.bench
        assert sim.small_signal_noise == (mode == "small_signal")
        sim.close([next(iter(sim.crosspoints))])
        sim.set_level(sim.buses[0], 0.05)
        sim.set_output(sim.buses[0], True)
        state = sim.rng.bit_generator.state
        sim.measure(sim.buses[0], 0.0)
        assert _normals_drawn(sim, state, 1 if mode == "small_signal" else sim.topology.n_devices)
    finally:
        bench.close()
