"""Characterize on the simulated benches: the fitted numbers are the preset's own."""
import math

import numpy as np
import pytest

from lab.bench import Bench
from lab.config import loads_bench, parse_bench
from lab.runner import Runner
from protocols import fit as devfit
from protocols.characterize import Characterize, fit_bound, fit_creep
from sim_backend import load_preset
from sim_backend.presets import DevicePreset

from conftest import film_bench_dict
from test_protocol_crossbar import crossbar_text

# what characterize claims to recover within 20 % (the module docstring says why the rest cannot be)
IDENTIFIABLE = ("g_max_S", "window_S", "threshold_V", "rate_at_depin_per_s", "read_sigma_S")


def generating_values(bench, a, b):
    """The simulated path's own parameters: the preset's, times the path's device-to-device draws."""
    arr = bench.twin.bench.array
    p = arr.preset
    d = bench.info.devices.tolist().index([a, b])
    volts_per_j = p.cross_section_m2 / p.g_max_S  # j = V·g_max_S/A (a path's area scales with its G)
    return {
        "g_max_S": float(arr.g_max[d]),
        "window_S": float(arr.g_max[d] * arr.contrast[d]),
        "threshold_V": float(arr.jd_rel[d]) * p.j_depin_A_per_m2 * volts_per_j,
        "rate_at_depin_per_s": float(arr.mobility[d]) * p.wall_velocity_depin_m_per_s / p.wall_length_m,
        "read_sigma_S": p.read_noise_window * p.window_S,
        # weakly identifiable (reported, not claimed)
        "flow_slope": p.flow_slope * float(arr.jd_rel[d]),
        "creep_log_slope": p.creep_exponent * p.creep_barrier_K / p.ambient_K,
    }


def film_bench(seed):
    d = film_bench_dict()
    d["simulation"]["seed"] = seed
    return Bench.open(parse_bench(d, f"sim-film35-seed{seed}.toml"), simulate=True)


def test_pulse_doses_follow_the_level_timeline():
    # V/2 scheme, levels set one command (1 ms) after the other, 2 ms held at full drive
    tl = ((0.001, "drive_pos", 0.5), (0.002, "drive_neg", -0.5), (0.004, "drive_pos", 0.0), (0.005, "drive_neg", 0.0),
          (0.010, "drive_pos", 0.5), (0.011, "drive_neg", -0.5), (0.013, "drive_pos", 0.0), (0.014, "drive_neg", 0.0))
    t_full, t_half = devfit.pulse_doses(tl, 0.5, -0.5)
    assert t_full == pytest.approx(0.004) and t_half == pytest.approx(0.004)
    # negative polarity: line a at −V/2; one bus only (driver-timed pulse): no half drive
    assert devfit.pulse_doses(tl[:4], -0.5, 0.5) == pytest.approx((0.002, 0.002))
    assert devfit.pulse_doses(((0.0, "drive_pos", 1.0), (0.003, "drive_pos", 0.0)), 1.0, 0.0) == pytest.approx((0.003, 0.0))
    assert all(math.isnan(x) for x in devfit.pulse_doses((), 0.5, -0.5))


def _synthetic_run(rng, true, sigma):
    """Reads of a run on the model device itself: creep points, two flow levels, saturation."""
    v, tf, th, n, g = [], [], [], [], []
    x = 0.0
    plan = [(0.0, 0.0, 0.0, 0)] * 8 + [(a, 0.05, 0.02, 10) for a in (0.4, 0.5, 0.62, 0.7, 0.78)]
    plan += [(a, d, 2 * d, 20) for a, d in [(1.0, 0.02), (3.0, 0.004)] * 8] + [(3.0, 0.5, 0.2, 100)]
    for volts, t_full, t_half, count in plan:
        if count:  # cycle-to-cycle noise: each train's rate scatters
            law = true.law
            noisy = devfit.DeviceModel(true.g0_S, true.window_S, 0.0, devfit.RateLaw(
                law.rate_at_depin_per_s * np.exp(0.3 * rng.standard_normal() / np.sqrt(count)), law.v_depin_V,
                law.creep_log_slope, law.flow_slope), False)
            x, _ = noisy.train(x, volts, t_full, t_half)
        v.append(volts), tf.append(t_full), th.append(t_half), n.append(count)
        g.append(true.conductance(x) + sigma * rng.standard_normal())
    return [np.array(a, dtype=float) for a in (v, tf, th, n, g)]


def test_device_fit_finds_the_likelihood_optimum_on_a_synthetic_device():
    """The fit machinery on reads drawn from its own model: it finds a likelihood at least as good
    as the generating parameters', and the well-determined parameters come back."""
    true = devfit.DeviceModel(1e-4, 2e-6, 0.0, devfit.RateLaw(2.0, 0.8, 10.0, 1.2), False)
    sigma = 1e-8
    v, tf, th, n, g = _synthetic_run(np.random.default_rng(6), true, sigma)
    fit = devfit.fit_device(v, tf, th, n, g, sigma, bipolar=False, creep_exponent=0.25, g0_guess=float(np.mean(g[:8])),
                            window_guess=g[0] - g[-1], x0_guess=0.0, v_depin_guesses=[0.6, 0.7, 0.85, 1.0],
                            rate_guess=1.0)

    def nll(m):
        theta = [m.g0_S, m.window_S, 0.0, math.log(m.law.rate_at_depin_per_s), math.log(m.law.v_depin_V),
                 math.log(m.law.creep_log_slope), m.law.flow_slope, math.log(max(m.cycle_noise, 0.02))]
        z, ln_s, _ = devfit._filter_terms(np.array(theta), list(np.abs(v)), list(tf), list(th), [int(c) for c in n],
                                          [1.0] * len(v), g, np.full(len(g), sigma), 0.25, False)
        return float(np.sum(z**2) + np.sum(ln_s))

    generating = devfit.DeviceModel(1e-4, 2e-6, 0.0, true.law, False, cycle_noise=0.3)
    assert nll(fit.model) <= nll(generating) + 1.0
    m = fit.model
    assert m.law.v_depin_V == pytest.approx(0.8, rel=0.1)
    assert m.law.rate_at_depin_per_s == pytest.approx(2.0, rel=0.25)
    assert m.window_S == pytest.approx(2e-6, rel=0.03) and m.g0_S == pytest.approx(1e-4, abs=3 * sigma)
    assert fit.residual_rms == pytest.approx(1.0, abs=0.35)
    assert 0 < fit.errors["log_v_depin"] < 0.2 and 0 < fit.errors["log_rate_at_depin"] < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1234, 7])
def test_characterize_round_trip_recovers_the_generating_film_path(seed):
    """Default protocol on sim-film35 (seed 1234 is the shipped bench): the threshold is found and
    every identifiable parameter is within 20 % of the path's own generating values, or within
    three of the fit's own standard errors where it states a larger one (the rate at depinning:
    over 40 seeds its error scatters by ~7 % rms, and a seed's fit may state 12 %)."""
    bench = film_bench(seed)
    try:
        truth = generating_values(bench, 0, 1)
        res = Runner(bench).run(Characterize(pairs=(("C0", "C1"),)))
    finally:
        bench.close()
    assert res.status == "complete", res.error
    out = res.returned
    dev = out["devices"][0]
    assert np.isfinite(dev["threshold_V"]) and dev["polarity"] == "unipolar"
    stated = {"threshold_V": "threshold_rel_err", "rate_at_depin_per_s": "rate_at_depin_rel_err"}
    for key in IDENTIFIABLE:
        rel = max(0.2, 3 * dev[stated[key]]) if key in stated else 0.2
        assert dev[key] == pytest.approx(truth[key], rel=rel), (key, dev[key], truth[key])
    # weakly identifiable: the right size, or within three of the fit's stated errors (over 18 seeds
    # the flow slope fell outside a factor 2 in one or two, as far from it as 1.9 and 2.6 of them)
    for key, err in (("flow_slope", dev["flow_slope_err"]),
                     ("creep_log_slope", dev["creep_log_slope_rel_err"] * dev["creep_log_slope"])):
        assert truth[key] / 2 < dev[key] < 2 * truth[key] or abs(dev[key] - truth[key]) < 3 * err, \
            (key, dev[key], err, truth[key])
    # the preset dict converts back to the same drive: j_depin·A/G0 is the fitted threshold
    preset = out["preset"]
    assert preset["j_depin_A_per_m2"] * preset["cross_section_m2"] / preset["g_max_S"] == pytest.approx(dev["threshold_V"])
    assert preset["wall_velocity_depin_m_per_s"] / preset["wall_length_m"] == pytest.approx(dev["rate_at_depin_per_s"])
    assert "creep_onset" not in preset and "cycle_noise" not in preset  # not identifiable: not claimed
    # the figure's records: one per polarity, ΔG and the fit on the same amplitudes, threshold marked
    recs = {v["polarity"]: v for s, v in res.records if s == "characterize_amplitude"}
    assert set(recs) == {"positive", "negative"}
    for r in recs.values():
        n = len(r["amplitude_V"])
        assert n >= 5 and len(r["delta_g_S"]) == len(r["fit_delta_g_S"]) == len(r["delta_g_rel"]) == n
        assert r["threshold_V"] == dev["threshold_V"] and np.all(np.asarray(r["amplitude_V"]) > 0)
        moving = np.asarray(r["amplitude_V"]) > 1.2 * dev["threshold_V"]
        assert np.all(np.asarray(r["fit_delta_g_S"])[moving] < 0)  # depress-only: G falls
        # data and fit agree where the device moves: the median ratio is near 1
        ratio = np.asarray(r["delta_g_S"])[moving] / np.asarray(r["fit_delta_g_S"])[moving]
        assert 0.7 < np.median(ratio) < 1.4


def test_fit_bound_and_creep_recover_known_laws():
    g = 1e-4 - 2e-6 * (1 - 0.9 ** np.arange(30))
    bound, q = fit_bound(g)
    assert bound == pytest.approx(0.98e-4, rel=1e-6) and q == pytest.approx(0.9)
    v = np.linspace(0.5, 3, 15)
    r = np.where(v < 2, 1e3 * np.exp(-20 * ((2 / v) ** 0.25 - 1)), 1e3 * (1 + 0.5 * (v / 2 - 1)))
    fit = fit_creep(v, r, 0.25)
    assert fit["depin_reached"] and fit["v_depin"] == pytest.approx(2, rel=0.05)
    assert fit["barrier"] == pytest.approx(20, rel=0.05)
    creep_only = fit_creep(v[v < 1.9], r[v < 1.9], 0.25)
    assert not creep_only["depin_reached"]


def test_characterize_film_path_gives_a_usable_preset():
    bench = Bench.open("sim-film35", simulate=True)
    try:
        proto = Characterize(pairs=(("C0", "C1"),), amplitudes=tuple(np.geomspace(0.15, 3.0, 8)),
                             widths=(5e-4, 2e-3), curve_pulses=15, noise_reads=5, retention_s=(0.0, 10.0, 100.0))
        out = Runner(bench).run(proto).returned
        arr = bench.twin.bench.array
        d = bench.info.devices.tolist().index([0, 1])
        g_max_true = float(arr.g_max[d])
        g_min_true = g_max_true * (1 - float(arr.contrast[d]))
    finally:
        bench.close()
    window = g_max_true - g_min_true
    assert out["polarity"] == "unipolar"
    assert out["g_max_S"] == pytest.approx(g_max_true, abs=0.1 * window)
    assert out["g_min_S"] == pytest.approx(g_min_true, abs=0.25 * window)
    # this path's depinning voltage is 0.66 V / its threshold factor; motion starts below it
    th = float(arr.th[d])
    assert 0.3 * 0.66 / th < out["threshold_V"] <= 1.5 * 0.66 / th
    preset = out["preset"]
    assert set(preset) <= set(DevicePreset.model_fields)
    # the preset's read noise is 3 % of the nominal window (2 µS); this path's window is its own
    assert preset["read_noise_window"] == pytest.approx(0.03 * 2e-6 / window, rel=0.5)
    merged = load_preset("film-amr", {k: v for k, v in preset.items() if isinstance(v, str) or np.isfinite(v)})
    assert merged.polarity == "unipolar"


def test_characterize_bipolar_crossbar_device():
    bench = Bench.open(loads_bench(crossbar_text(), source="crossbar-test"), simulate=True)
    try:
        out = Runner(bench).run(Characterize(pairs=(("R1", "K2"),), amplitudes=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0),
                                             widths=(1e-3, 4e-3), curve_pulses=15, noise_reads=4)).returned
    finally:
        bench.close()
    assert out["polarity"] == "bipolar"
    dev = out["devices"][0]
    assert dev["positive_direction"] == "down"  # crossbar-sot: positive V pushes x up, G down
    assert out["g_max_S"] > out["g_min_S"]
