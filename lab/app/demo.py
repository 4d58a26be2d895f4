"""``hopbench demo``: the paper's experiment, dry-run on the default simulated film."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lab.app.figures import accuracy_per_epoch, save
from lab.app.progress import BenchProgress
from lab.app.report import report_run
from lab.archive import ArchiveWriter
from lab.bench import Bench
from lab.config import DEFAULT_BENCH
from lab.runner import Runner
from protocols import hopfield_reference as ref
from protocols.common import CueChoice, PatternChoice, weights_from_conductances
from protocols.recall import Recall
from protocols.train import PulseShape, TrainHopfield

DEMO_PATTERNS = ("L", "T", "X", "O")


def run_demo(out_dir: str | Path, *, epochs: int = 6, progress: bool = True,
             cues_per_pattern: int = 20, materio_cues_per_pattern: int = 5) -> dict[str, Any]:
    """The paper's experiment, dry-run on the default simulated 35-contact film.

    Clamped training of four glyphs with a matrix read after every epoch (archived), recall
    scored per epoch in software from each measured matrix, then recall of noisy cues in
    materio on the trained film (archived), figures for both runs and a summary.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    choice = PatternChoice(names=DEMO_PATTERNS)
    _, x = choice.load()
    train = TrainHopfield(patterns=choice, epochs=epochs, v_train=1.0, pulse=PulseShape(width_s=1e-3, count=10),
                          read_first=True, read_every=1)
    train_file, recall_file = out / "demo-train.h5", out / "demo-recall.h5"
    for f in (train_file, recall_file):
        f.unlink(missing_ok=True)
    with Bench.open(DEFAULT_BENCH, simulate=True) as bench:
        runner = Runner(bench, [ArchiveWriter(train_file)], progress=BenchProgress() if progress else None)
        trained = runner.run(train).returned
        baseline = np.asarray(trained["g"][0])
        cues, targets = ref.make_cues(x, cues_per_pattern, 0.1, 1)
        rows = []
        for epoch, g in zip(trained["epochs"], trained["g"]):
            w = weights_from_conductances(bench.info, np.asarray(g), baseline, "mean")
            sc = ref.evaluate(w, x, cues, targets, mode="async", max_steps=30)
            rows.append({"epoch": int(epoch), "bit_accuracy": sc.bit_accuracy, "exact_recall": sc.exact,
                         "correct_retrieval": sc.correct})
        runner.observers = [ArchiveWriter(recall_file)]
        recall = Recall(patterns=choice, cues=CueChoice(per_pattern=materio_cues_per_pattern, seed=2),
                        compute="materio", baseline=tuple(float(v) for v in baseline))
        recalled = runner.run(recall).returned
    table = pd.DataFrame(rows)
    table.to_csv(out / "accuracy.csv", index=False)
    fig_dir = out / "figures"
    save(accuracy_per_epoch(table), fig_dir / "accuracy_per_epoch.png")
    figures = [str(fig_dir / "accuracy_per_epoch.png")]
    for archive in (train_file, recall_file):
        figures += report_run(archive, fig_dir / archive.stem)["figures"]
    final = {"bit_accuracy": float(recalled["bit_accuracy"]), "exact_recall": float(recalled["exact"]),
             "correct_retrieval": float(recalled["correct"]), "cues": int(recalled["n_cues"])}
    return {"patterns": "".join(DEMO_PATTERNS), "epochs": rows, "final_recall": final,
            "archive": str(train_file), "recall_archive": str(recall_file), "figures_dir": str(fig_dir),
            "figures": figures}
