"""Clamped training on the film-amr preset learns the pattern correlation matrix by itself.

No learning rule appears here: patterns are applied as contact voltages ±V0 and the
device physics (drive on current-carrying pairs, heated relaxation of the others) does the
rest. With G = G0(1 − a·x) the current pushes x up and G down on anti-aligned pairs, so the
Hebbian weight is W = (G − G_ref)/G_ref: aligned pairs keep their conductance.
"""
import numpy as np

from sim_backend import DeviceArray, SimulatedBench, film, load_preset

N = 35


def balanced_patterns(P, seed):
    rng = np.random.default_rng(seed)
    S = np.ones((P, N))
    for s in S:
        s[rng.permutation(N)[: N // 2]] = -1
    return S


def learned_vs_correlation(W, S, topo):
    C = S.T @ S / len(S)
    c = C[topo.device_cells[:, 0], topo.device_cells[:, 1]]
    return np.corrcoef(W, c)[0, 1]


def averaged_read(array, n=4):
    return np.mean([array.read_conductance() for _ in range(n)], axis=0)


def test_clamped_training_converges_to_the_pattern_correlations():
    preset = load_preset("film-amr")
    topo = film(N)
    for seed in (0, 1):
        array = DeviceArray(topo, preset, np.random.default_rng(seed))
        S = balanced_patterns(3, 100 + seed)
        G_ref = averaged_read(array)
        a, b = topo.devices[:, 0], topo.devices[:, 1]
        pulses = [preset.train_voltage_V * (s[a] - s[b]) for s in S]
        history = []
        for epoch in range(300):
            for v in pulses:
                array.advance(v, preset.train_pulse_width_s)
            if epoch in (5, 299):
                G = averaged_read(array)
                history.append(learned_vs_correlation((G - G_ref) / G_ref, S, topo))
        assert history[-1] >= 0.95, history
        assert history[0] < history[-1]


def test_training_through_buses_and_relays():
    """The same learning when the patterns go through two source buses and a relay matrix."""
    topo = film(N)
    xp = {f"1A{i + 1:02d}": ("pos", f"C{i}") for i in range(N)}
    xp.update({f"1B{i + 1:02d}": ("neg", f"C{i}") for i in range(N)})
    bench = SimulatedBench(topo, "film-amr", seed=7, buses=["pos", "neg"], crosspoints=xp,
                           contact_resistance_ohm=1.0)
    V0, width = bench.preset.train_voltage_V, bench.preset.train_pulse_width_s
    bench.set_level("pos", V0)
    bench.set_level("neg", -V0)
    S = balanced_patterns(2, 11)
    G_ref = averaged_read(bench.array)
    for _ in range(200):
        for s in S:
            bench.open_all()  # cold switching: outputs are off here
            bench.close([f"1{'A' if si > 0 else 'B'}{i + 1:02d}" for i, si in enumerate(s)])
            bench.set_output("pos", True)
            bench.set_output("neg", True)
            bench.advance(width)
            bench.set_output("pos", False)
            bench.set_output("neg", False)
            bench.advance(3e-3)  # relay settling
    assert bench.hot_switches == 0
    G = averaged_read(bench.array)
    assert learned_vs_correlation((G - G_ref) / G_ref, S, topo) >= 0.95
