"""Figures a physicist reads at a glance, checked on the matplotlib figures the report draws
from real dry runs: the learned change of a training (not raw G), per-protocol figure sets,
log time axes for log-spaced times, physics labels and units, recall's per-pattern confusion
matrix, and every term the summary uses defined in it."""
from __future__ import annotations

import numpy as np
import pytest

from lab.app.figures import (
    RATE_DEFINITIONS,
    accuracy_per_epoch,
    device_characterization,
)
from lab.app.report import report
from lab.archive import ArchiveWriter
from lab.bench import Bench
from lab.runner import Runner
from protocols.common import CueChoice, glyphs
from protocols.read_conductances import ReadConductances
from protocols.recall import Recall
from protocols.retention import Retention
from protocols.train import TrainHopfield

GLYPHS = ("L", "T", "X")


@pytest.fixture(scope="module")
def bench():
    with Bench.open(simulate=True) as b:
        yield b


def _run(bench, proto, path):
    assert Runner(bench, observers=[ArchiveWriter(path)]).run(proto).status == "complete"
    return path


def _labels(fig) -> list[str]:
    return [t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title())]


def test_a_training_shows_the_learned_change_not_raw_conductance(bench, tmp_path):
    path = _run(bench, TrainHopfield(patterns=glyphs(*GLYPHS), epochs=2, v_train=0.6 * bench.info.v_max),
                tmp_path / "train.h5")
    rep = report(path, tmp_path / "fig")
    assert {"conductance", "learned_weights"} <= set(rep.figures)
    assert all(p.exists() for p in rep.figures.values())
    fig = rep.objects["conductance"]
    labels = " ".join(_labels(fig))
    assert "ΔG/G0 (%)" in labels and "µS" not in labels  # a colour bar in % of G0, not raw G
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2  # epochs 1 and 2, each against the read before training
    change = np.asarray(images[-1].get_array(), float)
    finite = change[np.isfinite(change)]
    assert finite.std() > 0.05  # a non-constant learned change of tenths of a percent, visible
    lo, hi = images[-1].get_clim()
    assert lo == pytest.approx(-hi) and hi < 20  # centred on 0, scaled to the change (not to G)
    w = rep.objects["learned_weights"]
    assert any("W = G − λ·G0" in t for t in _labels(w))
    assert "over training" not in " ".join(t.get_text() for t in fig.texts)
    text = rep.text
    for term in ("ΔG/G0 = (G − G0)/G0", "W = G − λ·G0", "epoch:"):
        assert term in text, term


def test_a_run_without_training_gets_no_training_figure(bench, tmp_path):
    path = _run(bench, ReadConductances(), tmp_path / "read.h5")
    rep = report(path, tmp_path / "fig")
    assert "learned_weights" not in rep.figures
    fig = rep.objects["conductance"]
    title = fig.get_suptitle()
    assert title.startswith("Conductance matrix") and "training" not in title
    assert "ΔG/G0" not in " ".join(_labels(fig))


def test_retention_is_drawn_on_a_log_time_axis_with_its_fit(bench, tmp_path):
    times = (0.0, 1.0, 10.0, 100.0, 1000.0)
    path = _run(bench, Retention(times_s=times), tmp_path / "ret.h5")
    rep = report(path, tmp_path / "fig")
    assert "conductance" not in rep.figures  # its reads are the curve, not a matrix over training
    (name,) = [n for n in rep.figures if n.startswith("retention")]
    fig = rep.objects[name]
    bottom = fig.axes[-1]
    assert bottom.get_xscale() in ("log", "symlog") and bottom.get_xlabel() == "time after programming t (s)"
    assert fig.axes[0].get_ylabel() == "conductance G (µS)"
    assert any("fit" in line.get_label() for line in fig.axes[0].get_lines())
    assert "τ: relaxation time" in rep.text


def test_recall_has_a_per_pattern_confusion_matrix_and_defines_its_rates(bench, tmp_path):
    proto = Recall(patterns=glyphs(*GLYPHS), cues=CueChoice(per_pattern=2, flip_fraction=0.1), compute="software")
    path = _run(bench, proto, tmp_path / "recall.h5")
    rep = report(path, tmp_path / "fig")
    fig = rep.objects["recall"]
    conf_ax = [ax for ax in fig.axes if ax.get_xlabel().startswith("retrieved pattern")]
    assert len(conf_ax) == 1 and conf_ax[0].get_ylabel().startswith("cued pattern")
    ticks = [t.get_text() for t in conf_ax[0].get_xticklabels()]
    assert ticks == [*GLYPHS, "none"]
    conf = np.array(rep.summary["confusion"])
    assert conf.shape == (3, 4) and conf.sum() == 6 and (conf.sum(axis=1) == 2).all()
    for name in ("exact recall", "correct retrieval", "bit accuracy"):
        assert f"{name}: {RATE_DEFINITIONS[name]}" in rep.text


def test_equal_rates_stay_distinguishable_and_are_defined_on_the_figure():
    import pandas as pd

    table = pd.DataFrame({"epoch": [1, 2, 3], "bit_accuracy": [0.9, 0.95, 1.0], "exact": [0.5, 0.5, 1.0],
                          "correct": [0.5, 0.5, 1.0]})
    fig = accuracy_per_epoch(table)
    lines = fig.axes[0].get_lines()
    exact, correct = (next(ln for ln in lines if ln.get_label() == name) for name in ("exact recall", "correct retrieval"))
    assert np.array_equal(exact.get_ydata(), correct.get_ydata())  # same numbers ...
    assert (exact.get_marker(), exact.get_linestyle()) != (correct.get_marker(), correct.get_linestyle())  # ... both seen
    notes = " ".join(t.get_text() for t in fig.texts)
    assert RATE_DEFINITIONS["exact recall"] in notes and RATE_DEFINITIONS["correct retrieval"] in notes


def test_a_device_characterization_is_labelled_by_physics():
    v = np.linspace(-3, 3, 13)
    vd, g0 = 1.3, 60e-6
    dg = -np.sign(v) * 1e-9 * np.maximum(np.abs(v) - vd, 0) ** 2
    rec = {"lines": "C0-C1", "g_initial_S": g0, "threshold_V": vd, "onset_V": 1.0, "amplitudes_V": list(v),
           "delta_g_S": list(dg), "fit_delta_g_S": list(dg), "delta_g_err_S": [1e-10] * 13,
           "widths_s": [2.5e-4, 2.5e-4, 4e-3, 4e-3], "width_delta_g_S": [3e-8, 7e-8, 2e-8, 4e-8],
           "curve_up_S": list(g0 - 1e-8 * np.arange(10)), "curve_down_S": []}
    fig = device_characterization(rec)
    amp = fig.axes[0]
    assert amp.get_ylabel() == "ΔG/G0 per pulse (%)" and amp.get_xlabel().startswith("pulse amplitude")
    marks = [ln.get_xdata()[0] for ln in amp.get_lines() if ln.get_linestyle() in ("--", ":")]
    assert vd in marks  # the threshold is drawn
    assert any(ln.get_label().startswith("fit") for ln in amp.get_lines())
    assert fig.axes[1].get_xscale() == "log" and fig.axes[1].get_ylabel() == "|ΔG| per pulse (nS)"
    assert fig.axes[2].get_xlabel() == "pulse number" and fig.axes[2].get_ylabel() == "conductance G (µS)"
    assert "characterize_device" not in fig.get_suptitle() and "versus" not in fig.get_suptitle()
