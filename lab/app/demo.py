"""``hopbench demo``: the paper's experiment, dry-run on the default simulated film.

Clamped training of four glyphs by the film's own physics (power-levelled, shuffled, a
harmonic dose: see :class:`protocols.train.TrainHopfield`), matrix reads at a few epochs,
recall of noisy cues scored in software from each measured matrix through the one read-out
(W = G − λ·G0, :mod:`protocols.readout`), software rules on the same cues for comparison,
then recall through the film itself (in-materio multiplies) beside software recall from the
last measured matrix on the same cues.

Terms, as printed: *exact recall* is the fraction of cues whose final state equals the cued
pattern bit for bit; *bit accuracy* the fraction of bits that do. Epoch 0 is the cues as
given (nothing learned yet: W = 0 leaves every cue as it is).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from lab.app.figures import accuracy_per_epoch, learned_change_heatmaps, save
from lab.app.progress import BenchProgress
from lab.app.report import report_run
from lab.archive import ArchiveWriter
from lab.bench import Bench
from lab.config import DEFAULT_BENCH
from lab.runner import Runner
from protocols import hopfield_reference as ref
from protocols.common import CueChoice, PatternChoice
from protocols.readout import hopfield_weights
from protocols.recall import Recall
from protocols.train import TrainHopfield

DEMO_PATTERNS = ("L", "T", "X", "O")
CUE_FLIP_FRACTION = 0.1  # 3 of 35 bits flipped per cue
SOFTWARE_RULES = {"Hebbian": ref.hebbian, "pseudo-inverse": ref.pseudo_inverse}


def run_demo(out_dir: str | Path, *, epochs: int = 10, progress: bool = True,
             cues_per_pattern: int = 20, materio_cues_per_pattern: int = 5,
             notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train, score per epoch, recall in materio; archives, figures and a summary in ``out_dir``.

    A previous demo's archives are kept, moved to ``out_dir/previous/`` under their start
    time, and ``notify`` says so before the new run starts (nothing measured is deleted).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    choice = PatternChoice(names=DEMO_PATTERNS)
    _, x = choice.load()
    # the matrix is read only where the table needs it: a read costs ~1.4 s of dry-run wall time
    train = TrainHopfield(patterns=choice, epochs=epochs, read_every=0,
                          read_epochs=tuple(e for e in (1, 2, 4, 6, 8) if e < epochs))
    train_file, recall_file = out / "demo-train.h5", out / "demo-recall.h5"
    replaced = keep_previous([train_file, recall_file], out / "previous")
    for old, new in replaced:
        if notify is not None:
            notify(f"the previous demo archive {old} is kept as {new}")
    cues, targets = ref.make_cues(x, cues_per_pattern, CUE_FLIP_FRACTION, 1)
    with Bench.open(DEFAULT_BENCH, simulate=True) as bench:
        runner = Runner(bench, [ArchiveWriter(train_file)], progress=BenchProgress() if progress else None)
        trained = runner.run(train).returned
        g0 = np.asarray(trained["g"][0])
        weights = [hopfield_weights(bench.info, np.asarray(g), g0) for g in trained["g"]]
        rows = [_scores(f"{int(e)}", int(e), w, x, cues, targets) for e, w in zip(trained["epochs"], weights)]
        rows[0]["epoch_label"] = "0 (cues as given)"
        software = [_scores(name, None, rule(x), x, cues, targets) for name, rule in SOFTWARE_RULES.items()]
        runner.observers = [ArchiveWriter(recall_file)]
        recall = Recall(patterns=choice, cues=CueChoice(per_pattern=materio_cues_per_pattern, seed=2,
                                                        flip_fraction=CUE_FLIP_FRACTION),
                        compute="materio", baseline=tuple(float(v) for v in g0))
        recalled = runner.run(recall).returned
    # the same cues, recalled in software from the last measured matrix: what in materio should match
    same = _scores("software, last measured matrix", None, weights[-1], x, recalled["cues"], recalled["targets"])
    table = pd.DataFrame(rows)
    table.drop(columns=["epoch_label"]).to_csv(out / "accuracy.csv", index=False)
    fig_dir = out / "figures"
    figures = [str(save(accuracy_per_epoch(table.drop(columns=["epoch_label", "correct_retrieval", "cues"])),
                        fig_dir / "accuracy_per_epoch.png"))]
    labels = [f"epoch {r['epoch']}" for r in rows[1:]]
    figures.append(str(save(learned_change_heatmaps(np.array(weights[1:]), labels, ref.hebbian(x)),
                            fig_dir / "learned_change.png")))
    for archive in (train_file, recall_file):
        figures += report_run(archive, fig_dir / archive.stem)["figures"]
    materio = {"bit_accuracy": float(recalled["bit_accuracy"]), "exact_recall": float(recalled["exact"]),
               "correct_retrieval": float(recalled["correct"]), "cues": int(recalled["n_cues"])}
    return {"patterns": "".join(DEMO_PATTERNS), "epochs": rows, "software_rules": software,
            "final_recall": materio, "final_recall_software": same, "replaced": replaced,
            "archive": str(train_file), "recall_archive": str(recall_file), "figures_dir": str(fig_dir),
            "figures": figures}


def keep_previous(files: list[Path], folder: Path) -> list[tuple[str, str]]:
    """Move existing ``files`` into ``folder``, named by their modification time; (old, new) pairs."""
    moved = []
    for f in files:
        if not f.exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(f.stat().st_mtime))
        target = folder / f"{f.stem}-{stamp}{f.suffix}"
        k = 1
        while target.exists():
            target = folder / f"{f.stem}-{stamp}-{k}{f.suffix}"
            k += 1
        f.replace(target)
        moved.append((str(f), str(target)))
    return moved


def _scores(label: str, epoch: int | None, w: np.ndarray, x: np.ndarray, cues: np.ndarray,
            targets: np.ndarray) -> dict[str, Any]:
    sc = ref.evaluate(w, x, cues, targets, mode="async", max_steps=30)
    return {"epoch_label": label, "epoch": epoch, "bit_accuracy": sc.bit_accuracy, "exact_recall": sc.exact,
            "correct_retrieval": sc.correct, "cues": int(len(cues))}
