"""Figures and the report, rendered from a synthetic run (Agg, PNG)."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from lab.archive import ArchiveWriter, open_run
from lab.app.figures import convergence_metrics, recall_grid, save
from lab.app.report import report
from lab.operations import Record
from protocols.base import Protocol
from test_archive_synthetic import SyntheticRun, film_bench, run_info


class SyntheticTrain(Protocol):
    """The synthetic run's protocol, declaring which of its streams get which figure."""

    name = "synthetic_train"
    figures = {"accuracy": "accuracy", "recall": "recall", "characterize_amplitude": "curves"}


def _png_ok(path, min_bytes=8_000):
    assert path.exists() and path.stat().st_size > min_bytes, path
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert img[..., :3].std() > 0.02  # not a blank canvas


def _run_with_everything(path):
    bench = film_bench(35)
    w = ArchiveWriter(path)
    w.start(run_info(bench, epochs=4))
    run = SyntheticRun(w, bench)
    run.run(epochs=4)
    for pol in ("positive", "negative"):  # a characterization sweep
        for v in (0.5, 1.0, 1.5, 2.0):
            run._send(Record("characterize_amplitude", {"amplitude_V": v, "delta_g": (1 if pol == "positive" else -1) * 1e-7 * v**2, "polarity": pol}))
    w.finish("complete")
    return run


def test_report_renders_every_figure_with_the_right_numbers(tmp_path):
    path = tmp_path / "run.h5"
    run = _run_with_everything(path)
    x = np.array(list(run.patterns.values()), dtype=float)
    hebb = x.T @ x
    np.fill_diagonal(hebb, 0)
    rep = report(path, tmp_path / "fig", reference=hebb)
    names = set(rep.figures)
    assert {"conductance", "measurement_error", "weight_convergence", "accuracy", "recall"} <= names
    assert any(n.startswith("characterization_characterize_amplitude") for n in names)
    for p in rep.figures.values():
        _png_ok(p)
    # the numbers in the summary are the run's
    assert rep.summary["accuracy"]["bit_accuracy"] == pytest.approx(1.0)  # epoch 4: min(1, 0.7 + 0.3)
    assert rep.summary["accuracy"]["epoch"] == 4
    assert 0.5e-7 < rep.summary["read_error_rms_S"] < 2e-7  # the synthetic read noise is 1e-7 S
    with open_run(path) as r:
        g = r.conductance.values
        assert rep.summary["g_mean_last_S"] == pytest.approx(np.nanmean(g[-1]))
    # training by outer products drives the learned change towards the Hebbian reference
    assert rep.summary["convergence_compared"].startswith("change since the first read")
    conv = (tmp_path / "fig" / "weight_convergence.csv").read_text().splitlines()
    corr = [float(line.split(",")[1]) for line in conv[1:]]
    assert corr == sorted(corr) and corr[-1] > 0.3
    text = rep.summary_path.read_text()
    assert "status complete" in text and "accuracy per epoch" in text and "conductance.png" in text


def test_report_of_a_run_without_measurements_says_so(tmp_path):
    path = tmp_path / "empty.h5"
    w = ArchiveWriter(path)
    w.start(run_info(film_bench(6)))
    w.finish("failed", "instrument stopped answering")
    rep = report(path, tmp_path / "fig")
    assert rep.figures == {}
    assert "status failed" in rep.text and "instrument stopped answering" in rep.text


def test_recall_grid_and_convergence_metrics(tmp_path):
    rng = np.random.default_rng(1)
    targets = rng.choice([-1, 1], (3, 35))
    cues = targets.copy()
    cues[:, :4] *= -1
    p = save(recall_grid(cues, targets, targets), tmp_path / "grid.png")
    _png_ok(p, 3_000)
    ref = np.outer(targets[0], targets[0]).astype(float)
    same = convergence_metrics(np.array([3e-6 * ref + 1e-5]), [1], ref)  # scale and offset do not matter
    assert same["correlation"][0] == pytest.approx(1.0) and same["distance"][0] == pytest.approx(0.0, abs=1e-9)
    opposite = convergence_metrics(np.array([-ref]), [1], lambda epoch: ref)
    assert opposite["correlation"][0] == pytest.approx(-1.0) and opposite["distance"][0] == pytest.approx(2.0)
