"""Nodal analysis: Kirchhoff's current law, sneak paths, guarded reads, compliance."""
import numpy as np
import pytest

from sim_backend import CircuitSolution, Source, crossbar, film, solve
from sim_backend.circuit import Circuit


def random_g(topo, seed=0):
    return np.random.default_rng(seed).uniform(0.5e-4, 1.5e-4, topo.n_devices)


def check_kcl(topo, circuit: Circuit, G, sol: CircuitSolution):
    """Sum of currents at every line and bus node is zero (resistive links only)."""
    L = topo.n_lines
    out = np.zeros(L + len(circuit.bus_names))
    a, b = topo.devices[:, 0], topo.devices[:, 1]
    np.add.at(out, a, sol.device_i)
    np.add.at(out, b, -sol.device_i)
    for (bus, line, _), i_link in zip(circuit.links, sol.link_current):
        out[L + bus] += i_link  # leaves the bus toward the line
        out[line] -= i_link
    out[:L] += circuit.leak_S * sol.line_v
    for k, name in enumerate(circuit.bus_names):
        out[L + k] += circuit.leak_S * sol.bus_v[name] - sol.bus_current[name]
    scale = np.abs(sol.device_i).max() + 1e-30
    assert np.abs(out).max() < 1e-9 * scale


@pytest.mark.parametrize("seed", range(6))
def test_kcl_holds_in_every_solve(seed):
    rng = np.random.default_rng(seed)
    topo = film(9) if seed % 2 else crossbar(4)
    sources = {
        "a": Source(level_V=rng.uniform(-1, 1), output=True, resistance_ohm=rng.choice([0.0, 50.0]),
                    compliance_A=rng.choice([1e-5, 1.0])),
        "b": Source(level_V=0.0, output=True, compliance_A=1.0),
        "c": Source(level_V=rng.uniform(-1, 1), output=bool(seed % 3)),
    }
    circuit = Circuit(topo, sources)
    lines = rng.permutation(topo.n_lines)[: topo.n_lines - 2]  # two lines float
    links = [(int(rng.integers(0, 3)), int(l), float(rng.uniform(0.5, 20))) for l in lines]
    circuit.configure(links)
    G = random_g(topo, seed)
    sol = circuit.solve(G)
    G_solved = G.copy()
    G *= 2.0  # a caller writing into its array after: the solution keeps what it was solved at
    check_kcl(topo, circuit, G_solved, sol)
    assert np.array_equal(sol.device_i, G_solved * sol.device_v)
    leaked = circuit.leak_S * (sol.line_v.sum() + sum(sol.bus_v.values()))  # to ground
    total = sum(sol.bus_current.values())
    assert abs(total - leaked) < 1e-9 * max(abs(c) for c in sol.bus_current.values())


def crossbar_read(topo, G, row, col, *, guard, contact=0.0):
    """Row `row` at 0.2 V on bus 'drive', column `col` on the 0 V sense bus; others guarded or floating."""
    n = topo.n
    links = [("drive", f"R{row}", contact), ("sense", f"K{col}", contact)]
    if guard:
        links += [("guard", f"R{i}", contact) for i in range(n) if i != row]
        links += [("guard", f"K{j}", contact) for j in range(n) if j != col]
    sources = {
        "drive": Source(level_V=0.2, output=True, compliance_A=1.0),
        "sense": Source(level_V=0.0, output=True, compliance_A=1.0),
        "guard": Source(level_V=0.0, output=True, compliance_A=1.0),
    }
    return solve(topo, G, sources, links)


def test_guarded_read_is_exact_and_floating_read_has_sneak_paths():
    topo = crossbar(6)
    G = random_g(topo, 1)
    for row, col in [(0, 0), (2, 5), (5, 3)]:
        g_ij = G[topo.device_index(row, col)]
        guarded = crossbar_read(topo, G, row, col, guard=True)
        assert guarded.fast_path
        assert -guarded.bus_current["sense"] == 0.2 * g_ij  # exactly V·G_ij
        floating = crossbar_read(topo, G, row, col, guard=False)
        assert not floating.fast_path
        assert -floating.bus_current["sense"] > 1.5 * 0.2 * g_ij  # sneak currents add up
        # with contact resistance the guarded read is close, not exact
        resistive = crossbar_read(topo, G, row, col, guard=True, contact=1.0)
        assert -resistive.bus_current["sense"] == pytest.approx(0.2 * g_ij, rel=1e-2)


def test_film_grounded_read_returns_a_laplacian_column():
    topo = film(8)
    G = random_g(topo, 2)
    K = -topo.to_matrix(G)
    np.fill_diagonal(K, -K.sum(axis=1))
    for j in range(topo.n):
        sources = {"drive": Source(level_V=0.1, output=True, compliance_A=1),
                   "gnd": Source(level_V=0.0, output=True, compliance_A=1)}
        links = [("drive" if i == j else "gnd", f"C{i}", 0.0) for i in range(topo.n)]
        sol = solve(topo, G, sources, links)
        assert sol.fast_path
        assert sol.bus_current["drive"] == pytest.approx(0.1 * K[j, j], rel=1e-12)
        assert sol.bus_current["gnd"] == pytest.approx(-0.1 * K[j, j], rel=1e-12)


def test_floating_two_terminal_film_read_overestimates_the_path():
    topo = film(10)
    G = random_g(topo, 3)
    sources = {"drive": Source(level_V=0.1, output=True, compliance_A=1),
               "gnd": Source(level_V=0.0, output=True, compliance_A=1)}
    sol = solve(topo, G, sources, [("drive", "C0", 0.0), ("gnd", "C1", 0.0)])
    assert sol.bus_current["drive"] / 0.1 > 3 * G[topo.device_index(0, 1)]
    # the floating contacts sit between the two driven ones
    assert np.all((sol.line_v[2:] > 0) & (sol.line_v[2:] < 0.1))


def test_compliance_clamps_and_releases():
    topo = film(6)
    G = random_g(topo, 4)
    links = [("drive", "C0", 1.0)] + [("gnd", f"C{i}", 1.0) for i in range(1, 6)]
    free = solve(topo, G, {"drive": Source(1.0, 1.0, True), "gnd": Source(0.0, 1.0, True)}, links)
    assert not free.in_compliance["drive"]
    limit = free.bus_current["drive"] / 4
    clamped = solve(topo, G, {"drive": Source(1.0, limit, True), "gnd": Source(0.0, 1.0, True)}, links)
    assert clamped.in_compliance["drive"]
    assert clamped.bus_current["drive"] == pytest.approx(limit)
    assert 0 < clamped.bus_v["drive"] < 1.0  # the source gave up voltage to hold the current
    assert clamped.bus_current["gnd"] == pytest.approx(-limit, rel=1e-9)
    # a negative level clamps at −limit; a limit just above the need does not clamp
    neg = solve(topo, G, {"drive": Source(-1.0, limit, True), "gnd": Source(0.0, 1.0, True)}, links)
    assert neg.bus_current["drive"] == pytest.approx(-limit)
    ok = solve(topo, G, {"drive": Source(1.0, free.bus_current["drive"] * 1.01, True),
                         "gnd": Source(0.0, 1.0, True)}, links)
    assert not ok.in_compliance["drive"]


def test_sense_channel_in_compliance_lifts_its_node():
    topo = film(5)
    G = random_g(topo, 5)
    links = [("drive", "C0", 0.0)] + [("gnd", f"C{i}", 0.0) for i in range(1, 5)]
    sol = solve(topo, G, {"drive": Source(1.0, 1.0, True), "gnd": Source(0.0, 1e-5, True)}, links)
    assert sol.in_compliance["gnd"] and not sol.in_compliance["drive"]
    assert sol.bus_current["gnd"] == pytest.approx(-1e-5)
    assert sol.bus_v["gnd"] > 0.5


def test_output_off_is_high_impedance_and_isolated_lines_sit_at_zero():
    topo = crossbar(3)
    G = random_g(topo, 6)
    sources = {"drive": Source(0.5, 1.0, False), "gnd": Source(0.0, 1.0, True)}
    sol = solve(topo, G, sources, [("drive", "R0", 1.0), ("gnd", "K0", 1.0)])
    assert sol.bus_current["drive"] == 0.0
    assert np.allclose(sol.line_v, 0.0, atol=1e-12)
