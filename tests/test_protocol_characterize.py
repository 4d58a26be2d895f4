"""Characterize on the simulated benches: the fitted numbers are the preset's own."""
import numpy as np
import pytest

from lab.bench import Bench
from lab.config import loads_bench
from lab.runner import Runner
from protocols.characterize import Characterize, fit_bound, fit_creep
from sim_backend import load_preset
from sim_backend.presets import DevicePreset

from test_protocol_crossbar import crossbar_text


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
        d = bench.info.devices.index((0, 1))
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
