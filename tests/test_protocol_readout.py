"""The read-out: measured conductances → Hopfield weights (protocols.readout).

Training lowers every path of the film by about the same fraction (the common mode) and
the pattern-dependent part is half that; the paths' G0 spreads by ~31 %. A uniform offset
(the old read-out) leaves common mode × spread in W; W = G − λ·G0 with λ = ΣG/ΣG0 removes
it. Checked on the shipped film's own device layout and spread (the simulated twin's true
G0), and through the runner on the simulated bench.
"""
import numpy as np
import pytest

from lab.bench import Bench
from lab.errors import PlanRejected
from lab.operations import MultiplyResult
from lab.runner import Runner
from protocols import hopfield_reference as ref
from protocols.common import PatternChoice, field_matrix
from protocols.materio import measure_reference
from protocols.readout import (
    Relative,
    ScaledBaseline,
    field_weights,
    get_readout,
    hopfield_weights,
    scale_factor,
)
from protocols.recall import Recall
from protocols.train import TrainHopfield

NAMES = ("L", "T", "X", "O")


@pytest.fixture(scope="module")
def film():
    bench = Bench.open("sim-film35", simulate=True)
    yield bench
    bench.close()


def _anti(info, x):
    """(D, P) anti-aligned indicators (1 − ξ_iξ_j)/2 of every device for every pattern."""
    dev = np.array(info.devices)
    return np.stack([(1 - xi[dev[:, 0]] * xi[dev[:, 1]]) / 2 for xi in x], axis=1)


def _offdiag_corr(w, ref_w):
    mask = ~np.eye(w.shape[0], dtype=bool)
    return float(np.corrcoef(w[mask], ref_w[mask])[0, 1])


def test_scaled_baseline_removes_a_common_mode_change_on_a_film_with_spread(film):
    info = film.info
    g0 = film.truth()  # the twin's untrained paths: 30 % lognormal geometry spread
    assert np.std(g0) / np.mean(g0) > 0.25
    _, x = PatternChoice(names=NAMES).load()
    c = _anti(info, x).sum(axis=1)  # how many patterns hold each pair anti-aligned
    pattern = -0.0054 * np.mean(g0) * (c - c.mean()) / c.std()  # 0.54 % of Ḡ, zero mean
    lam = 1 - 0.0115  # training lowers every path by 1.15 %: the common mode
    g = lam * g0 + pattern
    target = field_matrix(info, pattern)

    w_new = hopfield_weights(info, g, g0, "scaled_baseline")
    assert scale_factor(g, g0) == pytest.approx(lam, rel=1e-9)
    assert _offdiag_corr(w_new, target) >= 0.99
    # the old read-out: G − G0 minus one uniform offset, the mean change over every field term
    ones = field_matrix(info, 1.0)
    w_old = field_matrix(info, g - g0) - field_matrix(info, g - g0).sum() / ones.sum() * ones
    assert _offdiag_corr(w_old, target) < 0.9  # common mode × spread stays in W

    # the same in recall: Hebbian-like weights for L T X O recall their cues
    cues, targets = ref.make_cues(x, 10, 0.1, 3)
    assert ref.evaluate(w_new, x, cues, targets).exact == 1.0
    assert ref.evaluate(w_old, x, cues, targets).exact < 0.9


def test_relative_recovers_the_texture_and_scaled_baseline_its_g0_weighted_form(film):
    info = film.info
    g0 = film.truth()
    _, x = PatternChoice(names=NAMES).load()
    texture = _anti(info, x).mean(axis=1)  # x of each path at the clamped-Oja fixed point
    a = 0.02
    g = g0 * (1 - a * texture)  # the AMR read-out of that texture
    dx = texture - texture.mean()
    rel = hopfield_weights(info, g, g0, "relative")
    assert _offdiag_corr(rel, field_matrix(info, -a * dx)) > 0.999
    scaled = hopfield_weights(info, g, g0, "scaled_baseline")
    # W = −a·G0·(x − ⟨x⟩_G0): the texture weighted by each path's conductance (what a multiply sums)
    xw = np.sum(g0 * texture) / np.sum(g0)
    assert np.allclose(scaled, field_matrix(info, -a * g0 * (texture - xw)), atol=1e-12)
    assert ScaledBaseline.unit == "S" and Relative.unit == "1"


def test_weights_are_symmetric_zero_diagonal_and_skip_unread_devices(film):
    info = film.info
    rng = np.random.default_rng(0)
    g0 = 1e-4 * np.exp(0.3 * rng.standard_normal(info.n_devices))
    g = g0 * (1 - 0.01 * rng.random(info.n_devices))
    g[[3, 17]] = np.nan  # devices a partial read did not measure
    for name in ("scaled_baseline", "relative"):
        w = hopfield_weights(info, g, g0, name)
        assert w.shape == (35, 35) and np.allclose(w, w.T) and np.all(np.diag(w) == 0) and np.isfinite(w).all()
        i, j = info.device_cells[3]
        assert w[i, j] == 0.0
    # a film's multiply view is already the Hopfield matrix
    assert np.allclose(field_weights(info, g, g0), hopfield_weights(info, g, g0))
    # no baseline: a uniform one, W = G − Ḡ
    w = hopfield_weights(info, g0, None)
    i, j = info.device_cells[0]
    assert w[i, j] == pytest.approx(g0[0] - np.nanmean(g0))
    with pytest.raises(ValueError, match="needs a baseline"):
        hopfield_weights(info, g, None, "relative")
    with pytest.raises(ValueError, match="unknown read-out"):
        get_readout("mean")


def test_in_materio_reference_subtracts_the_same_read_out(film):
    """One all-+1 multiply gives λ; the field it leaves is W s with the software W."""
    info = film.info
    rng = np.random.default_rng(1)
    g0 = 1e-4 * np.exp(0.3 * rng.standard_normal(info.n_devices))
    g = g0 * (1 - 0.02 * rng.random(info.n_devices))
    f = field_matrix(info, g)
    gen = measure_reference(info, "scaled_baseline", 0.05, tuple(g0))
    op = next(gen)
    assert op.pattern == (1,) * 35
    ones = np.ones(35)
    with pytest.raises(StopIteration) as stop:
        gen.send(MultiplyResult(0.05 * f @ ones, ones, 0.05))
    reference = stop.value.value
    s = np.where(rng.random(35) < 0.5, 1.0, -1.0)
    h = reference.subtract(MultiplyResult(0.05 * f @ s, s, 0.05), s)
    assert np.allclose(h, hopfield_weights(info, g, g0) @ s, rtol=1e-9, atol=1e-15)


def test_recall_reads_out_through_the_runner_and_refuses_relative_in_materio(film):
    runner = Runner(film)
    choice = PatternChoice(names=("T", "X"))
    res = runner.run(TrainHopfield(patterns=choice, epochs=1, read_every=0))
    baseline = tuple(res.returned["g"][0])
    out = runner.run(Recall(patterns=choice, cues={"per_pattern": 2, "seed": 1}, compute="software",
                            baseline=baseline, max_steps=5)).returned
    assert out["n_cues"] == 4 and out["bit_accuracy"] > 0.9
    log_before = len(film.command_log)
    with pytest.raises(PlanRejected, match="materio"):
        runner.run(Recall(patterns=choice, compute="materio", readout="relative", baseline=baseline))
    assert len(film.command_log) == log_before
