"""The packed float32 update against the exact float64 rate law, and the packed state's bookkeeping."""
import numpy as np
import pytest

from sim_backend import DeviceArray, crossbar, film, load_preset


def tied_pattern(topo, n, V0, seed):
    s = np.random.default_rng(seed).choice([-1.0, 1.0], n)
    return V0 * (s[topo.devices[:, 0]] - s[topo.devices[:, 1] - n])


def half_select(topo, n, V):
    """V/2 scheme: row 0 at +V/2, column 0 at −V/2, all else 0 (half-selected cells creep)."""
    line = np.zeros(2 * n)
    line[0], line[n] = V / 2, -V / 2
    return line[topo.devices[:, 0]] - line[topo.devices[:, 1]]


def cases():
    # a small crossbar on a poor heat sink runs hotter than a 1024² one (~450 K), where the
    # restoring hops of the most weakly driven devices are visible
    sot = load_preset("crossbar-sot", {"substrate_K_per_W": 3000.0})
    xb = crossbar(24, tied=True)
    yield "sot pattern", xb, sot, tied_pattern(xb, 24, sot.train_voltage_V / 2, 1)
    yield "sot bipolar", xb, sot, -tied_pattern(xb, 24, sot.train_voltage_V / 2, 2)
    xu = crossbar(24)
    yield "sot half-select", xu, sot, half_select(xu, 24, 2 * sot.train_voltage_V)
    amr = load_preset("film-amr")
    f = film(35)
    s = np.where(np.arange(35) < 17, 1.0, -1.0)
    yield "film pattern", f, amr, amr.train_voltage_V * (s[f.devices[:, 0]] - s[f.devices[:, 1]])


@pytest.mark.parametrize("case", list(cases()), ids=lambda c: c[0])
def test_fast_law_matches_exact_law_per_step(case):
    _, topo, preset, V = case
    fast, exact = (DeviceArray(topo, preset, np.random.default_rng(9)) for _ in range(2))
    exact._exact_law = True
    x0 = np.random.default_rng(3).uniform(0, 1, topo.n_devices)
    dt = preset.train_pulse_width_s / 4  # one step each: no device needs a finer grid
    for step in range(6):
        fast.x = exact.x = x0
        fast.advance(V, dt)
        exact.advance(V, dt)
        assert fast.film_temperature_K == pytest.approx(exact.film_temperature_K, rel=1e-6)
        dx_fast, dx_exact = fast.x - x0, exact.x - x0
        moved = np.abs(dx_exact) > 1e-5
        assert moved.sum() > 20
        # float32 state: ~1e-7 of absolute resolution on top of the relative agreement
        assert np.all(np.abs(dx_fast - dx_exact) <= 1e-3 * np.abs(dx_exact) + 2e-7)
        x0 = exact.x.astype(np.float64)


def test_the_comparison_sees_both_paths_and_every_regime():
    """In the crossbar cases most driven devices take the float32 form, in creep and in flow,
    and the weakly driven ones (visible restoring hops, creep onset) the float64 law."""
    for name, topo, p, V in list(cases())[:3]:
        a = DeviceArray(topo, p, np.random.default_rng(9))
        routed = []
        exact = a._exact
        a._exact = lambda d, sel, T, dt: routed.append(np.arange(d.M)[sel].size) or exact(d, sel, T, dt)
        a.x = np.random.default_rng(3).uniform(0, 1, topo.n_devices)
        a.advance(V, p.train_pulse_width_s / 4)
        d = a._drive
        assert 0 < sum(routed) < d.M / 4, name
        rho = (d.c0 + d.c1 * d.y) / d.jd
        assert np.any(rho < 1) and np.any(rho >= 1), name


def test_looking_at_the_state_does_not_change_the_trajectory():
    p = load_preset("crossbar-sot")
    topo = crossbar(16, tied=True)
    V = tied_pattern(topo, 16, p.train_voltage_V / 2, 4)
    looked, blind = (DeviceArray(topo, p, np.random.default_rng(5)) for _ in range(2))
    for _ in range(8):
        looked.advance(V, p.train_pulse_width_s)
        looked.conductance()
        blind.advance(V, p.train_pulse_width_s)
    assert np.abs(looked.x - blind.x).max() < 1e-6
    assert looked.version >= 8  # every step that moves devices is a new state for readers


def test_a_changed_drive_is_seen_even_in_the_same_buffer():
    p = load_preset("crossbar-sot", {"cycle_noise": 0.0})
    topo = crossbar(8)
    a = DeviceArray(topo, p, np.random.default_rng(0))
    a.x = np.full(topo.n_devices, 0.5)
    V = np.full(topo.n_devices, p.train_voltage_V, dtype=np.float32)
    a.advance(V, p.train_pulse_width_s)
    up = a.x.copy()
    assert np.all(up[~a.stuck] > 0.5)
    V *= -1  # same array, new content: the devices must now be pushed down
    for _ in range(3):
        a.advance(V, p.train_pulse_width_s)
    assert np.all(a.x[~a.stuck] < up[~a.stuck])


def test_idle_time_and_set_state_reach_packed_devices():
    p = load_preset("film-amr", {"cycle_noise": 0.0})
    topo = film(12)
    a = DeviceArray(topo, p, np.random.default_rng(2))
    s = np.where(np.arange(12) < 6, 1.0, -1.0)
    V = p.train_voltage_V * (s[topo.devices[:, 0]] - s[topo.devices[:, 1]])
    a.x = np.full(topo.n_devices, 0.5)
    a.advance(V, 5e-3)
    driven = (V != 0) & ~a.stuck
    after_drive = a.x.copy()
    a.advance(None, 1e9)  # long enough to relax every device at T0
    assert np.all(a.x[~a.stuck] < 0.5 * after_drive[~a.stuck])
    a.x = np.full(topo.n_devices, 0.25)
    a.advance(V, 1e-6)
    assert np.allclose(a.x[driven], 0.25, atol=1e-3)
