"""A simulated sample persists between dry runs and through a resume, as a real one does."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.app.jobs import run_protocol
from lab.app.sample import SampleError, load_sample
from lab.archive import ArchiveWriter, open_run
from lab.bench import Bench
from lab.operations import Checkpoint
from lab.runner import Runner
from protocols.base import load_protocol
from sim_backend import load_preset

TRAIN = {"epochs": 3, "read_every": 1, "read_first": True}


def _reads(path: Path) -> np.ndarray:
    with open_run(path) as run:
        return run.g.values


def _rms(d: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean(d**2)))


def _read_noise_S() -> float:
    p = load_preset("film-amr")
    return p.read_noise_window * p.window_S


@pytest.mark.slow
def test_a_dry_run_started_from_a_sample_continues_its_state(tmp_path: Path) -> None:
    trained = run_protocol("train_hopfield", overrides=TRAIN, out_dir=tmp_path, dry_run=True,
                           progress=False, sample="film-A")
    assert trained.status == "complete"
    assert (tmp_path / "samples" / "film-A.h5").exists()
    last_train_read = _reads(Path(trained.archive))[-1]
    first_train_read = _reads(Path(trained.archive))[0]

    again = run_protocol("read_conductances", out_dir=tmp_path, dry_run=True, progress=False, sample="film-A")
    fresh = run_protocol("read_conductances", out_dir=tmp_path, dry_run=True, progress=False)
    continued, new = _reads(Path(again.archive))[0], _reads(Path(fresh.archive))[0]
    sigma = _read_noise_S()
    # Two reads of one state differ by read noise alone: rms √2·σ over 595 devices (±3 %).
    # The read at the start of the next run is the trained film's last read ...
    assert _rms(continued - last_train_read) < 1.6 * sigma
    # ... while a fresh twin is the untrained film: it matches the training's first read, and
    # the trained film differs from it by more than read noise (so the check above can fail)
    assert _rms(new - first_train_read) < 1.6 * sigma
    assert _rms(continued - new) > 2.2 * sigma


def _interrupted_after(n_checkpoints: int, path: Path) -> None:
    proto = load_protocol("train_hopfield", TRAIN)

    class AbortAt:
        seen = 0

        def start(self, info): ...
        def checkpoint(self, index, state): ...
        def finish(self, status, error=None): ...

        def operation(self, rec) -> None:
            if isinstance(rec.op, Checkpoint):
                AbortAt.seen += 1
                if AbortAt.seen == n_checkpoints:
                    runner.abort()

    writer = ArchiveWriter(path)
    with Bench.open("sim-film35", simulate=True) as bench:
        runner = Runner(bench, [writer, AbortAt()])
        assert runner.run(proto).status == "aborted"
    writer.close()


@pytest.mark.slow
def test_a_resumed_dry_run_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    full = run_protocol("train_hopfield", overrides=TRAIN, archive=tmp_path / "full.h5", dry_run=True, progress=False)
    _interrupted_after(2, tmp_path / "part.h5")
    resumed = run_protocol("train_hopfield", resume=tmp_path / "part.h5", dry_run=True, progress=False)
    assert resumed.status == full.status == "complete"
    a, b = _reads(tmp_path / "full.h5"), _reads(tmp_path / "part.h5")
    assert a.shape == b.shape
    # same seeds, same film, same generator: the resumed reads are the uninterrupted ones
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-3 * _read_noise_S())
    # and the reads after the resume are of a trained film, not of a fresh one
    assert _rms(b[-1] - b[0]) > 2.2 * _read_noise_S()


def test_a_run_archive_is_a_sample_to_start_from_but_is_never_written(tmp_path: Path) -> None:
    _interrupted_after(2, tmp_path / "part.h5")
    before = (tmp_path / "part.h5").read_bytes()
    state = load_sample(tmp_path / "part.h5")
    assert state["seed"] and len(state["x"]) == 595
    res = run_protocol("read_conductances", out_dir=tmp_path / "out", dry_run=True, progress=False,
                       sample=tmp_path / "part.h5")
    assert res.status == "complete"
    assert (tmp_path / "part.h5").read_bytes() == before


def test_sample_misuse_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--dry-run"):
        run_protocol("read_conductances", out_dir=tmp_path, sample="film-A", progress=False)
    with pytest.raises(SampleError, match="no such sample"):
        load_sample(tmp_path / "missing.h5")
    with pytest.raises(SampleError, match="letters, digits"):
        run_protocol("read_conductances", out_dir=tmp_path, dry_run=True, sample="a b", progress=False)
