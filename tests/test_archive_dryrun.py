"""The report from real dry runs: the runner drives the simulated 35-node film bench through
the drivers, the ArchiveWriter archives it, the report reads it back."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lab.runner", reason="needs the runner (lab/runner.py)")

from lab.archive import ArchiveWriter, open_run  # noqa: E402
from lab.bench import Bench  # noqa: E402
from lab.app.report import report  # noqa: E402
from protocols.readout import hopfield_weights  # noqa: E402
from lab.runner import Runner  # noqa: E402
from protocols import hopfield_reference as ref  # noqa: E402
from protocols.common import CueChoice, glyphs  # noqa: E402
from protocols.recall import Recall  # noqa: E402
from protocols.train import TrainHopfield  # noqa: E402

GLYPHS = ("L", "T", "X", "O")


@pytest.fixture(scope="module")
def bench():
    with Bench.open(simulate=True) as b:
        yield b


def test_report_from_a_dry_training_run(bench, tmp_path):
    path = tmp_path / "train.h5"
    proto = TrainHopfield(patterns=glyphs(*GLYPHS), epochs=2, v_train=0.6 * bench.info.v_max, read_every=1)
    w = ArchiveWriter(path)
    res = Runner(bench, observers=[w]).run(proto)
    assert res.status == "complete"
    _, x = proto.patterns.for_bench(bench.info)
    oja = lambda epoch: ref.clamped_oja(x, epochs=max(1, int(epoch)))  # noqa: E731
    rep = report(path, tmp_path / "fig", reference=oja, patterns=x)
    assert {"conductance", "measurement_error", "weight_convergence"} <= set(rep.figures)
    for p in rep.figures.values():
        assert p.stat().st_size > 10_000
    with open_run(path) as r:
        assert r.status == "complete" and r.protocol_name == "train_hopfield"
        assert r.counts["operations"] == res.n_operations
        assert list(r.conductance.coords["epoch"].values) == [0, 1, 2]  # the baseline read, then each epoch
        assert r.info["simulated"] and r.info["sim_preset"] and r.info["bench_text"]
        # the report's convergence number is the software reference's own correlation measure
        # of the one read-out recall uses, W = G − λ·G0 against the read before training
        g = r.g.values
        expect = ref.weight_correlation(hopfield_weights(bench.info, g[-1], g[0]), oja(2))
        assert rep.summary["convergence_final_correlation"] == pytest.approx(expect, abs=1e-9)
        # a guarded read on the simulator agrees with the true conductances within a few %
        assert rep.summary["read_error_rel"] < 0.05
        # the archive kept every pulse the runner applied, with its line voltages
        pulses = r.operations[r.operations["kind"] == "pulse"]
        assert len(pulses) == len(r.applied) == 2 * len(GLYPHS)
        assert np.nanmax(np.abs(r.applied.values)) == pytest.approx(float(np.max(res.returned["v_levels"])))


def test_report_from_a_dry_recall_run(bench, tmp_path):
    path = tmp_path / "recall.h5"
    proto = Recall(patterns=glyphs(*GLYPHS), cues=CueChoice(per_pattern=2, flip_fraction=0.1), compute="software")
    w = ArchiveWriter(path)
    res = Runner(bench, observers=[w]).run(proto)
    assert res.status == "complete"
    _, x = proto.patterns.for_bench(bench.info)
    rep = report(path, tmp_path / "fig", patterns=x)
    assert {"recall", "accuracy", "conductance"} <= set(rep.figures)
    summary = dict(res.records)["recall_summary"]
    assert rep.summary["accuracy"]["bit_accuracy"] == pytest.approx(summary["bit_accuracy"])
    assert rep.summary["accuracy"]["exact"] == pytest.approx(summary["exact"])


KILLED_RUNNER = r"""
import os, signal, sys
from lab.archive import ArchiveWriter
from lab.bench import Bench
from lab.runner import Runner
from protocols.common import glyphs
from protocols.train import TrainHopfield

class KillAfterFirstEpoch:  # a crash right after the archive committed epoch 1's checkpoint
    def start(self, info): pass
    def operation(self, rec): pass
    def finish(self, status, error=None): pass
    def checkpoint(self, index, state):
        if state.get("epoch") == 1:
            os.kill(os.getpid(), signal.SIGKILL)

with Bench.open(simulate=True) as bench:
    proto = TrainHopfield(patterns=glyphs("L", "T", "X", "O"), epochs=2, v_train=0.6 * bench.info.v_max)
    Runner(bench, observers=[ArchiveWriter(sys.argv[1]), KillAfterFirstEpoch()]).run(proto)
"""


def test_resume_a_killed_dry_run_with_the_runner(bench, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    script = tmp_path / "killed.py"
    script.write_text(KILLED_RUNNER)
    path = tmp_path / "train.h5"
    p = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(root)})
    assert p.returncode == -9, p.stderr
    with open_run(path) as r:
        assert r.status == "interrupted" and r.counts["reads"] == 2 and r.counts["checkpoints"] == 1

    w = ArchiveWriter.resume(path)
    point = w.resume_point
    assert point.state["epoch"] == 1
    proto = TrainHopfield(patterns=glyphs(*GLYPHS), epochs=2, v_train=0.6 * bench.info.v_max)
    res = Runner(bench, observers=[w]).run(proto, resume=point.state, start_index=point.next_index)
    assert res.status == "complete"
    with open_run(path) as r:
        assert r.status == "complete" and len(r.resumes) == 1
        assert list(r.conductance.coords["epoch"].values) == [0, 1, 2]  # the baseline read, then each epoch
        assert list(r.checkpoints["state"].map(lambda s: s["epoch"])) == [1, 2]
        ops = r.operations
        assert ops["index"].is_unique and ops["index"].is_monotonic_increasing
        assert ops.loc[ops["segment"] == 1, "index"].min() == point.next_index


@pytest.mark.slow
def test_characterization_curves_from_dry_runs(bench, tmp_path):
    from protocols.characterize import Characterize
    from protocols.ivsweep import IVSweep

    for name, proto in (("iv", IVSweep(a=0, b=1)), ("char", Characterize(curve_pulses=10, noise_reads=3))):
        path = tmp_path / f"{name}.h5"
        assert Runner(bench, observers=[ArchiveWriter(path)]).run(proto).status == "complete"
        rep = report(path, tmp_path / name)
        for p in rep.figures.values():
            assert p.stat().st_size > 10_000
        kinds = {n.rsplit("_", 1)[0] for n in rep.figures}  # drop the curve length
        if name == "iv":
            assert kinds == {"characterization_iv_voltage"}
        else:  # one device figure (ΔG/G0 vs signed amplitude with fit, V_d and onset; ΔG vs width;
            # the programming curve vs pulse number), and the learning rule: ΔG per pulse vs
            # amplitude per polarity, threshold and fit drawn
            assert kinds == {"device", "learning_rule_characterize"}
