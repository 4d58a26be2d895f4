"""Synthetic runs for the archive tests: a plausible training run fed to a RunObserver.

Kept free of heavy imports (no pandas/xarray) because writer subprocesses import it.
"""
from __future__ import annotations

import time
from itertools import combinations
from pathlib import Path

import numpy as np

from lab.archive import ArchiveWriter
from lab.observer import OperationRecord, RunInfo
from lab.operations import (
    ApplyResult,
    BenchInfo,
    Checkpoint,
    MatrixResult,
    Multiply,
    MultiplyResult,
    Note,
    PairResult,
    Pulse,
    ReadMatrix,
    ReadPair,
    Record,
    Wait,
)

def film_bench(n: int = 35) -> BenchInfo:
    devices = tuple(combinations(range(n), 2))
    return BenchInfo(
        line_names=tuple(f"C{i}" for i in range(n)),
        neuron_lines=tuple((i,) for i in range(n)),
        devices=devices,
        device_cells=devices,
        topology="film",
        v_max=5.0,
        v_read_max=0.2,
        max_pulse_width_s=1e-3,
        default_v_read=0.1,
        simulated=True,
    )


def run_info(bench: BenchInfo, run_id: str = "synthetic01", **params) -> RunInfo:
    return RunInfo(
        run_id=run_id,
        protocol_name="synthetic_train",
        protocol_params={"epochs": params.get("epochs", 3), "v_train": 2.5, "seed": 7, "pattern_names": ["L", "T"]},
        bench_text='[bench]\nname = "sim-film"\n',
        bench_parsed={"bench": {"name": "sim-film"}, "limits": {"v_max": 5.0}},
        bench=bench,
        seeds={"seed": 7, "sim": 1234},
        software_version="0.1.0",
        git_revision="abc1234",
        host="testhost",
        start_time="2026-01-02T03:04:05+00:00",
        simulated=True,
        sim_preset={"name": "film-amr", "g_min": 1e-5},
    )


class SyntheticRun:
    """Feeds an observer a plausible training run; remembers what it sent."""

    def __init__(self, observer, bench: BenchInfo, seed: int = 0):
        self.obs = observer
        self.bench = bench
        self.rng = np.random.default_rng(seed)
        self.index = 0
        self.t_bench = 0.0
        self.sent: list[OperationRecord] = []
        n, d = bench.n_neurons, bench.n_devices
        self.g = self.rng.uniform(2e-5, 4e-5, d)
        self.cells = np.array(bench.device_cells)
        self.patterns = {k: self.rng.choice([-1, 1], n) for k in ("L", "T")}

    def _send(self, op, result=None, duration=1e-3, truth=None, settings=None):
        rec = OperationRecord(
            index=self.index, op=op, result=result, t_wall=time.time(), t_bench=self.t_bench,
            duration_bench=duration, settings=settings or {"v_read": 0.1, "nplc": 1.0, "buses": ["drive_pos"]},
            truth=truth,
        )
        self.obs.operation(rec)
        self.sent.append(rec)
        self.index += 1
        self.t_bench += duration

    def matrix(self, g: np.ndarray) -> np.ndarray:
        n = self.bench.n_neurons
        m = np.full((n, n), np.nan)
        m[self.cells[:, 0], self.cells[:, 1]] = g
        m[self.cells[:, 1], self.cells[:, 0]] = g
        return m

    def read_matrix(self):
        noise = self.rng.normal(0, 1e-7, self.g.size)
        g = self.g + noise
        std = np.full_like(g, 1e-7)
        res = MatrixResult(g=g, g_std=std, matrix=self.matrix(g), matrix_std=self.matrix(std), v_read=0.1)
        self._send(ReadMatrix(), res, duration=0.2, truth=self.g.copy())
        return res

    def pulse(self, pattern: np.ndarray):
        v = 2.5 * pattern
        op = Pulse.of(self.bench.neuron_voltages(v), width_s=1e-4, count=3)
        lv = np.asarray(v, dtype=float)
        self._send(op, ApplyResult(line_voltages=lv, duration_s=3e-4, bus_currents={"drive_pos": 1e-3}), duration=6e-4)
        outer = np.outer(pattern, pattern)[self.cells[:, 0], self.cells[:, 1]]
        self.g = np.clip(self.g + 5e-7 * outer, 1e-5, 5e-5)

    def epoch(self, e: int):
        # like protocols/train.py: records carry the number of epochs completed
        for name, p in self.patterns.items():
            self.pulse(p)
        self._send(Record("train_epoch", {"epoch": e + 1, "order": [0, 1]}))
        res = self.read_matrix()
        cue = self.patterns["L"].copy()
        cue[:3] *= -1
        cur = res.matrix.copy()
        np.nan_to_num(cur, copy=False)
        mres = MultiplyResult(currents=0.1 * cur @ cue, pattern=cue, v_read=0.1)
        self._send(Multiply(pattern=tuple(int(x) for x in cue)), mres)
        recalled = self.patterns["L"] if e > 0 else cue
        self._send(Record("recall", {
            "epoch": e + 1, "cue_name": "L", "cue": cue, "recalled": recalled, "target": self.patterns["L"],
            "steps": 3, "energy": [-1.0, -2.0, -2.5],
        }))
        acc = min(1.0, 0.7 + 0.1 * e)
        self._send(Record("accuracy", {"epoch": e + 1, "bit_accuracy": acc, "exact_recall": acc - 0.1,
                                        "correct_retrieval": acc - 0.05, "stats": {"cues": 20}}))
        self._send(ReadPair(0, 1), PairResult(g=float(self.g[0]), g_std=1e-8, current=1e-6, v_read=0.1),
                   truth=self.g.copy())
        self._send(Checkpoint({"epoch": e + 1, "rng": [1, 2, 3]}))

    def run(self, epochs: int = 3, start: int = 0):
        self._send(Note("start"))
        self.read_matrix()
        for e in range(start, epochs):
            self.epoch(e)
        self._send(Wait(0.01), duration=0.01)


def write_synthetic(path: Path, epochs: int = 3, **kw) -> tuple[ArchiveWriter, SyntheticRun]:
    bench = film_bench(kw.pop("n", 35))
    w = ArchiveWriter(path, **kw)
    w.start(run_info(bench, epochs=epochs))
    run = SyntheticRun(w, bench)
    run.run(epochs)
    w.finish("complete")
    return w, run


