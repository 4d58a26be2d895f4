"""Power levelling makes the film store every pattern equally (TrainHopfield.level_power).

A clamped ±V pattern dissipates power only in its anti-aligned pairs, P_μ ∝ V²·Σ_anti G, and
the film's temperature follows it: O (16/19 pixels) heats the film to ~620 K, L (11/24) to
~580 K. The aligned half of each pattern is written by thermally activated relaxation,
~4.6× faster under O. The imprint strength of pattern μ is the coefficient b_μ of a least-
squares fit ΔG/G0 = c + Σ_μ b_μ·(1 − ξ_iξ_j)/2 over the 595 paths (measured G, baseline read
by the protocol). It needs texture to be seen: on a fresh film (x = 0) nothing can relax
and one epoch only shows the push, which is about equal for all patterns, so the fit is
taken after ten shuffled epochs of one 6 ms pulse per presentation, a constant dose.
"""
import numpy as np
import pytest

from lab.bench import Bench
from lab.runner import Runner
from protocols.common import PatternChoice
from protocols.train import TrainHopfield

NAMES = ("L", "T", "X", "O")


def imprint_strengths(level_power: bool) -> np.ndarray:
    choice = PatternChoice(names=NAMES)
    _, x = choice.load()
    with Bench.open("sim-film35", simulate=True) as bench:
        train = TrainHopfield(patterns=choice, epochs=10, anneal="none", pulse={"width_s": 6e-3, "count": 1},
                              level_power=level_power, shuffle=True, seed=0, read_first=True, read_every=0)
        out = Runner(bench).run(train).returned
        dev = np.array(bench.info.devices)
    g0, g = out["g"][0], out["g"][-1]
    anti = np.stack([(1 - xi[dev[:, 0]] * xi[dev[:, 1]]) / 2 for xi in x], axis=1)
    coef, *_ = np.linalg.lstsq(np.c_[np.ones(len(g)), anti], g / g0 - 1, rcond=None)
    return -coef[1:]  # conductance lost per anti-aligned presentation set, > 0


@pytest.fixture(scope="module")
def strengths():
    return {lev: imprint_strengths(lev) for lev in (True, False)}


def test_power_levelling_equalises_imprint(strengths):
    s = strengths[True]
    assert np.all(s > 0)
    assert s.max() / s.min() <= 1.2  # every glyph stored within 20 % of the others


def test_without_levelling_the_hot_patterns_dominate(strengths):
    s = strengths[False]
    assert s.max() / s.min() > 1.3
    assert np.argmax(s) == NAMES.index("O") and np.argmin(s) == NAMES.index("L")  # hottest, coolest


def test_levels_follow_the_measured_power_and_respect_v_max():
    choice = PatternChoice(names=NAMES)
    with Bench.open("sim-film35", simulate=True) as bench:
        info = bench.info
        g0 = bench.truth()
    t = TrainHopfield(patterns=choice)
    _, x = choice.load()
    nominal, capped = t.amplitudes(info)
    n_pm = (x > 0).sum(1) * (x < 0).sum(1)
    assert nominal == pytest.approx(np.sqrt(n_pm.max() / n_pm), rel=1e-9) and not capped.any()
    v, _ = t.amplitudes(info, g0)
    power = t.relative_power(info, g0) * v**2
    assert power == pytest.approx(np.full(4, power.max()), rel=1e-9)  # equal Joule power on this film
    high, capped = TrainHopfield(patterns=choice, v_train=1.45).amplitudes(info, g0)
    assert high.max() == pytest.approx(info.v_max) and capped.any()
