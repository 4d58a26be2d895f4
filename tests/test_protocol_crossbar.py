"""Protocols on a small simulated crossbar of bipolar (spin-orbit-torque) devices."""
from pathlib import Path

import numpy as np
import pytest

from lab.bench import Bench
from lab.config import loads_bench
from lab.runner import Runner
from protocols import hopfield_reference as ref
from protocols.common import PatternChoice
from protocols.readout import field_weights
from protocols.read_conductances import ReadConductances
from protocols.recall import Recall
from protocols.train import TrainErrorDriven, TrainHopfield

N = 6
ROOT = Path(__file__).resolve().parents[1]


def crossbar_text(n=N, preset="crossbar-sot", seed=7):
    film = (ROOT / "data" / "benches" / "sim-film35.toml").read_text()
    head = film[: film.index("[array]")].replace("cards = 3", "cards = 1").replace("sim-film35", "sim-crossbar")
    lines = "\n".join([f"R{k} = [1, {1 + k}]" for k in range(n)] + [f"K{k} = [1, {1 + n + k}]" for k in range(n)])
    return head + f"""[array]
topology = "crossbar"
n = {n}
g_nominal_S = 0.75e-4
[wiring]
matrix = "matrix"
[wiring.rows]
drive_pos = "A"
drive_neg = "B"
guard = "C"
sense0 = "D"
sense1 = "E"
sense2 = "F"
sense3 = "G"
sense4 = "H"
[wiring.lines]
{lines}
[limits]
v_max_V = 1.5
power_max_W = 0.005
g_max_expected_S = 5.0e-4
pulse_width_max_s = 0.05
v_read_max_V = 0.2
v_read_default_V = 0.1
v_threshold_V = 0.3
[simulation]
preset = "{preset}"
seed = {seed}
[timing]
nplc = 1.0
line_frequency_Hz = 50
command_latency_s = 0.001
"""


@pytest.fixture()
def xbar():
    bench = Bench.open(loads_bench(crossbar_text(), source="crossbar-test"), simulate=True)
    yield bench
    bench.close()


PATTERNS = ((1, -1, 1, -1, 1, -1), (1, 1, -1, -1, 1, 1))


def test_outer_product_training_moves_each_device_with_the_sign_of_the_product(xbar):
    before = xbar.truth()
    s = np.array(PATTERNS[0], dtype=float)
    Runner(xbar).run(TrainHopfield(patterns=PatternChoice(vectors=(PATTERNS[0],)), epochs=1, v_train=1.5,
                                   encoding="outer_product", pulse={"count": 20}, read_every=0))
    change = xbar.truth() - before
    product = np.array([s[i] * s[j] for i, j in xbar.info.device_cells])
    moved = np.abs(change) > 0.02 * 0.5 * np.median(before)
    # crossbar-sot: a positive device voltage lowers G, so potentiate_polarity −1 raises G on s_i s_j = +1
    agree = np.sign(change[moved]) == product[moved]
    assert moved.mean() > 0.6 and agree.mean() > 0.95


def test_clamped_crossbar_training_can_spare_self_couplings(xbar):
    before = xbar.truth()
    Runner(xbar).run(TrainHopfield(patterns=PatternChoice(vectors=PATTERNS), epochs=2, v_train=1.5,
                                   encoding="outer_product", pulse={"count": 20}, read_every=0, spare_self=True))
    change = np.abs(xbar.truth() - before) / before
    diagonal = np.array([i == j for i, j in xbar.info.device_cells])
    assert change[diagonal].max() < 0.2 * np.median(change[~diagonal][change[~diagonal] > 1e-3])


def test_error_driven_training_stores_patterns_and_stops_when_right(xbar):
    runner = Runner(xbar)
    x = np.array(PATTERNS, dtype=float)
    res = runner.run(TrainErrorDriven(patterns=PatternChoice(vectors=PATTERNS), epochs=8, v_train=1.5,
                                      pulse={"count": 20}, margin=1.0, read_repeats=2))
    out = res.returned
    epochs = [v for s, v in res.records if s == "train_epoch"]
    assert epochs[0]["updates"] > 0 and epochs[-1]["errors"] < epochs[0]["errors"]
    w = field_weights(xbar.info, out["g"][-1], out["baseline"])  # W = G − λ·G0, as recall sums it
    assert ref.stable_patterns(w, x).all()
    # the network, computing in materio, holds every stored pattern
    rec = runner.run(Recall(patterns=PatternChoice(vectors=PATTERNS), probes=PatternChoice(vectors=PATTERNS),
                            mode="sync", baseline=tuple(out["baseline"]))).returned
    assert rec["exact"] == 1.0


def test_error_driven_with_in_materio_probes(xbar):
    res = Runner(xbar).run(TrainErrorDriven(patterns=PatternChoice(vectors=PATTERNS), epochs=2, v_train=1.5,
                                            probe="materio", read_repeats=1))
    assert res.status == "complete"
    assert [v["epoch"] for s, v in res.records if s == "train_epoch"] == [1, 2]


def test_software_and_materio_fields_use_the_same_weights(xbar):
    runner = Runner(xbar)
    base = runner.run(ReadConductances(repeats=2)).returned["g"]
    runner.run(TrainHopfield(patterns=PatternChoice(vectors=PATTERNS), epochs=4, v_train=1.5,
                             encoding="outer_product", pulse={"count": 20}, read_every=0))
    common = dict(patterns=PatternChoice(vectors=PATTERNS), probes=PatternChoice(vectors=PATTERNS), mode="sync",
                  baseline=tuple(base), max_steps=1)
    energies = {}
    for compute in ("materio", "software"):
        run = runner.run(Recall(compute=compute, read_repeats=4, **common))
        energies[compute] = np.array([v["energy"][0] for s, v in run.records if s == "recall"])
    # the energy of each stored pattern, −½ s·W s: summed currents in materio, W from the
    # matrix in software; Hebbian training makes it clearly negative in both
    assert np.all(energies["software"] < 0)
    assert energies["materio"] == pytest.approx(energies["software"], rel=0.2)


def test_records_reach_the_archive(xbar, tmp_path):
    from lab.archive import ArchiveWriter, open_run

    path = tmp_path / "ed.h5"
    res = Runner(xbar, observers=[ArchiveWriter(path)]).run(
        TrainErrorDriven(patterns=PatternChoice(vectors=PATTERNS), epochs=2, v_train=1.5, read_repeats=1))
    run = open_run(path)
    assert {"baseline", "conductance", "train_epoch"} <= set(run.streams)
    epochs = run.records("train_epoch")
    assert list(epochs["epoch"]) == [1, 2]
    assert res.status == "complete"
