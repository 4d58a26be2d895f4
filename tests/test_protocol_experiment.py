"""The experiment function end to end on the simulated film (tiny sizes), and its table."""
import pytest

from lab.bench import Bench
from lab.runner import Runner
from lab.app.experiment import ExperimentConfig, experiment_summary, run_experiment


@pytest.fixture()
def film_runners():
    opened = []

    def open_runner(seed):
        bench = Bench.open("sim-film35", simulate=True)
        opened.append(bench)
        return Runner(bench)

    yield open_runner
    for bench in opened:
        bench.close()


def test_experiment_runs_train_read_recall_per_epoch_and_tabulates(film_runners):
    cfg = ExperimentConfig(
        sets={"pair": ("L", "T")}, methods=("clamped", "error_driven", "hebbian", "pseudo_inverse"),
        clamped_epochs=2, best_epochs=1, read_repeats=1, cues_per_pattern=3, materio_cues_per_pattern=0,
        max_steps=3, best_pulse={"count": 3},
    )
    lines = []
    result = run_experiment(film_runners, None, cfg, log=lines.append)
    (s,) = result.sets
    assert s.names == ("L", "T") and -1 <= s.mean_overlap <= 1
    clamped = s.methods["clamped"]
    assert len(clamped.per_epoch) == 3  # untrained, then after each epoch
    assert clamped.materio is None  # in-materio recall is tested with the Recall protocol
    # the learned W = G − λ·G0 against the fixed Hebbian point, no fitted rate: already close
    assert clamped.weight_correlation is not None and clamped.weight_correlation > 0.5
    assert s.methods["error_driven"].method == "error-driven (film)"
    assert s.methods["hebbian"].scores.exact == 1.0
    table = result.table()
    assert "clamped (film)" in table and "software pseudo-inverse" in table
    assert len(experiment_summary(result)["rows"]) == 4
    assert len(lines) == 2
