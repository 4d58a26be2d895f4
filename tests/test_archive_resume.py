"""Resume: a run killed mid-way is reopened and continued from its last checkpoint, in the same file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from lab.archive import ArchiveError, ArchiveWriter, open_run
from test_archive_synthetic import SyntheticRun, film_bench, run_info

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

# Trains 5 epochs, commits at each checkpoint; after the checkpoint of epoch 2 it runs part
# of epoch 3 (never committed) and SIGKILLs itself.
CRASHER = r"""
import os, signal, sys
from lab.archive import ArchiveWriter
from test_archive_synthetic import SyntheticRun, film_bench, run_info
bench = film_bench(35)
w = ArchiveWriter(sys.argv[1], flush_interval_s=None)
w.start(run_info(bench, epochs=5))
run = SyntheticRun(w, bench)
run.read_matrix()
for e in range(2):
    run.epoch(e)
for p in run.patterns.values():
    run.pulse(p)
run.read_matrix()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _crashed_run(tmp_path: Path) -> Path:
    path = tmp_path / "crashed.h5"
    script = tmp_path / "crasher.py"
    script.write_text(CRASHER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    p = subprocess.run([sys.executable, str(script), str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == -9, p.stderr
    return path


def test_resume_after_sigkill_continues_in_the_same_file(tmp_path):
    path = _crashed_run(tmp_path)
    with h5py.File(path, "r", swmr=True) as f:
        assert f["entry/status"][()] == b"running"
        assert f["entry/devices/g"].shape[0] >= 3  # rows of epoch 3 may have reached the file ...
        committed_reads = int(f["entry/committed"][0]["reads"])
    assert committed_reads == 3  # ... but only the two epochs' reads (plus the first) are committed

    w = ArchiveWriter.resume(path)
    point = w.resume_point
    assert point.state == {"epoch": 2, "rng": [1, 2, 3]} and point.status == "running"
    assert point.counts["reads"] == 3 and point.counts["checkpoints"] == 2 and point.segment == 1
    assert point.protocol_name == "synthetic_train" and point.seeds == {"seed": 7, "sim": 1234}
    # the runner restarts the protocol from the checkpoint state
    bench = film_bench(35)
    w.start(run_info(bench, epochs=5))  # same run: accepted
    run = SyntheticRun(w, bench)
    run.index = 1000
    for e in range(point.state["epoch"], 5):
        run.epoch(e)
    w.finish("complete")

    with open_run(path) as r:
        assert r.status == "complete"
        assert len(r.resumes) == 1 and r.resumes.loc[0, "segment"] == 1
        assert r.resumes.loc[0, "from_index"] == point.checkpoint_index
        acc = r.records("accuracy")
        assert list(acc["epoch"]) == [1, 2, 3, 4, 5]  # epoch 3's uncommitted attempt left no trace
        assert r.counts["reads"] == 3 + 3 == r.g.shape[0]
        ops = r.operations
        assert set(ops["segment"]) == {0, 1}
        assert (ops["segment"].diff().fillna(0) >= 0).all()
        assert ops.loc[ops["segment"] == 1, "index"].min() == 1000
        assert list(r.checkpoints["state"].map(lambda s: s["epoch"])) == [1, 2, 3, 4, 5]
        assert list(r.conductance.coords["epoch"].values[1:]) == [1, 2, 3, 4, 5]
    with h5py.File(path, "r") as f:  # finished: a plain reader opens it and shapes match counts
        assert f["entry/devices/g"].shape[0] == 6


HOLDER = r"""
import sys
from lab.archive import ArchiveWriter
w = ArchiveWriter.resume(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
w.finish("aborted", "held")
"""


def test_resume_refuses_a_file_another_process_writes(tmp_path):
    path = _crashed_run(tmp_path)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    p = subprocess.Popen([sys.executable, str(script), str(path)], env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == "holding\n", p.stderr.read()
        with pytest.raises(ArchiveError, match="another process is writing"):
            ArchiveWriter.resume(path)
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.wait(timeout=30) == 0, p.stderr.read()
    finally:
        p.kill()
        p.wait()
    with open_run(path) as r:  # the refused resume changed nothing
        assert r.status == "aborted" and r.error == "held"
        assert r.counts["reads"] == 3 and len(r.resumes) == 1


def test_resume_refuses_other_protocols_and_double_writers(tmp_path):
    path = _crashed_run(tmp_path)
    w = ArchiveWriter.resume(path)
    with pytest.raises(ArchiveError, match="already open for writing in this process"):
        ArchiveWriter.resume(path)
    bench = film_bench(35)
    info = run_info(bench, epochs=5)
    info.protocol_name = "other"
    info.protocol_params["v_train"] = 3.0
    with pytest.raises(ArchiveError, match="protocol 'other' != archived 'synthetic_train'.*parameters"):
        w.start(info)
    w.finish("aborted", "wrong protocol")
    with open_run(path) as r:
        assert r.status == "aborted" and r.error == "wrong protocol"
        assert r.counts["reads"] == 3
    w2 = ArchiveWriter.resume(path)  # aborted runs can be resumed too
    assert w2.resume_point.status == "aborted" and w2.resume_point.segment == 2
    w2.finish("complete")
    with pytest.raises(ArchiveError, match="complete"):
        ArchiveWriter.resume(path)
