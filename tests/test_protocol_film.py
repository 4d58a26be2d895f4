"""Protocols on the default simulated bench: a 35-contact AMR film behind a 707B and 2636Bs.

Everything runs through the real runner, drivers and simulated instruments (in-process
VISA); the simulator's true conductances are the yardstick.
"""
import numpy as np
import pytest

from lab.bench import Bench
from lab.errors import PlanRejected
from lab.runner import Runner
from protocols import hopfield_reference as ref
from protocols.common import PatternChoice
from protocols.readout import hopfield_weights
from protocols.ivsweep import IVSweep
from protocols.read_conductances import ReadConductances
from protocols.recall import Recall
from protocols.retention import Retention
from protocols.train import TrainHopfield


@pytest.fixture()
def film():
    bench = Bench.open("sim-film35", simulate=True)
    yield bench
    bench.close()


def test_read_conductances_matches_truth(film):
    out = Runner(film).run(ReadConductances(repeats=2)).returned
    truth = film.truth()
    # the window is 2 % of G; reads must resolve a fraction of it
    window = 0.02 * np.median(truth)
    assert np.median(np.abs(out["g"] - truth)) < 0.2 * window
    assert out["matrix"].shape == (35, 35) and np.isnan(out["matrix"][3, 3])
    assert out["matrix"][4, 9] == out["matrix"][9, 4]
    some = Runner(film).run(ReadConductances(pairs=((0, 1), (5, 2)))).returned
    assert np.isfinite(some["g"]).sum() == 2


def test_train_lowers_anti_aligned_paths_only_and_resumes(film):
    runner = Runner(film)
    x = PatternChoice(names=("T",)).load()[1][0]
    before = film.truth()
    train = TrainHopfield(patterns=PatternChoice(names=("T",)), epochs=2, v_train=1.0, pulse={"count": 5},
                          read_every=0)
    res = runner.run(train)
    assert res.status == "complete" and res.last_checkpoint["epoch"] == 2
    change = (film.truth() - before) / before
    devices = np.array(film.info.devices)
    anti = x[devices[:, 0]] != x[devices[:, 1]]
    assert np.median(change[anti]) < -1e-3  # the paths that carried current lost conductance
    assert np.median(np.abs(change[~anti])) < 1e-4  # no current, no change
    # resuming from the last checkpoint has nothing left to do
    again = runner.run(train, resume=res.last_checkpoint)
    assert again.returned["epochs"] == [] and again.n_operations == 1  # the opening note


def test_unsafe_training_is_rejected_before_anything_is_sent(film):
    runner = Runner(film)
    log_before = len(film.command_log)
    with pytest.raises(PlanRejected, match="v_max"):
        runner.run(TrainHopfield(patterns=PatternChoice(names=("L",)), v_train=5.0))
    assert len(film.command_log) == log_before


def test_in_materio_recall_agrees_with_software_recall_on_the_measured_matrix(film):
    runner = Runner(film)
    names = ("T", "X")
    res = runner.run(TrainHopfield(patterns=PatternChoice(names=names), epochs=3, v_train=1.0,
                                   pulse={"count": 10}, read_first=True, read_every=0, read_repeats=2))
    baseline = res.returned["g"][0]
    common = dict(patterns=PatternChoice(names=names), cues={"per_pattern": 1, "seed": 3}, mode="sync",
                  baseline=tuple(baseline), max_steps=4)
    materio = runner.run(Recall(compute="materio", **common)).returned
    software = runner.run(Recall(compute="software", read_repeats=2, **common)).returned
    assert materio["n_cues"] == 2
    # both recall from noisy measurements of the same weights: they agree on most bits
    assert np.mean(materio["finals"] == software["finals"]) > 0.9
    assert materio["bit_accuracy"] > 0.85
    recs = [v for s, v in runner.last_result.records if s == "recall"]
    assert all(len(r["energy"]) >= 1 and r["overlaps"].shape == (2,) for r in recs)


def test_learned_weights_follow_clamped_oja(film):
    """The texture learns Oja's rule: ΔG/G0 correlates with software clamped Oja."""
    names = ("C", "O", "D", "G")
    x = PatternChoice(names=names).load()[1]
    res = Runner(film).run(TrainHopfield(patterns=PatternChoice(names=names), epochs=6, v_train=1.0,
                                         pulse={"count": 10}, read_first=True, read_every=0, read_repeats=2))
    g0, g = res.returned["g"][0], res.returned["g"][-1]
    w = hopfield_weights(film.info, g, g0, "relative")  # ΔG/G0 minus its mean: the texture itself
    best = max(ref.weight_correlation(w, ref.clamped_oja(x, eta=eta, epochs=6)) for eta in (0.05, 0.1, 0.2))
    assert best > 0.9


def test_iv_sweep_is_ohmic_and_reads_the_device(film):
    out = Runner(film).run(IVSweep(a="C3", b="C7", points=3)).returned
    truth = film.truth()[film.info.devices.tolist().index([3, 7])]
    assert out["g_fit"] == pytest.approx(truth, rel=0.01)
    assert out["g_relative_spread"] < 0.01
    assert np.all(np.sign(out["current"]) == np.sign(out["voltage"]))
    with pytest.raises(PlanRejected, match="read ceiling"):
        Runner(film).run(IVSweep(a=0, b=1, v_max=1.0))


def test_retention_holds_at_room_temperature(film):
    out = Runner(film).run(Retention(pairs=(("C0", "C1"), (2, 9)), times_s=(0.0, 10.0, 1000.0),
                                     program={"v": 2.0, "count": 20})).returned
    assert out["g"].shape == (3, 2)
    # E_b/k_B T0 ≈ 42: nothing relaxes in a quarter of an hour
    assert np.all(np.abs(out["g"][-1] - out["g"][0]) < 0.1 * 0.02 * out["g"][0])


@pytest.mark.slow
def test_the_trained_film_recalls_ltxo_and_in_materio_matches_software(film):
    """The paper's experiment with the protocol's defaults: the film stores L T X O within 10
    epochs (read-out W = G − λ·G0), and recall through the film itself agrees with software
    recall from the measured matrix on the same cues within 5 % exact."""
    names = ("L", "T", "X", "O")
    runner = Runner(film)
    trained = runner.run(TrainHopfield(patterns=PatternChoice(names=names), epochs=10, read_every=0)).returned
    g0, g = np.asarray(trained["g"][0]), np.asarray(trained["g"][-1])
    x = PatternChoice(names=names).load()[1]
    cues, targets = ref.make_cues(x, 20, 0.1, 1)
    untrained = ref.score_finals(cues, targets, x)  # the cues as given
    learned = ref.evaluate(hopfield_weights(film.info, g, g0), x, cues, targets, mode="async", max_steps=30)
    assert learned.exact >= 0.95 and learned.bit_accuracy > untrained.bit_accuracy
    common = dict(patterns=PatternChoice(names=names), cues={"per_pattern": 4, "seed": 2}, baseline=tuple(g0))
    materio = runner.run(Recall(compute="materio", **common)).returned
    software = runner.run(Recall(compute="software", **common)).returned
    assert abs(materio["exact"] - software["exact"]) <= 0.05
    assert materio["exact"] >= 0.9
