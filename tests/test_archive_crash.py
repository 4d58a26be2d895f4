"""Crash safety and live reading, with real processes: a writer killed with SIGKILL, and a
second process reading a run while it is written."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from lab.archive import list_runs, open_run

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

# Each operation k is a matrix read whose every device reads k·1e-6 S (+ device·1e-12), plus a
# record holding k: a row's content says which step it is, so a torn or stale row shows.
WRITER = r"""
import json, sys, time
import numpy as np
from lab.archive import ArchiveWriter
from lab.observer import OperationRecord
from lab.operations import Checkpoint, MatrixResult, ReadMatrix, Record
from test_archive_synthetic import film_bench, run_info

path, mode, flush_every = sys.argv[1], sys.argv[2], int(sys.argv[3])
bench = film_bench(35)
n, d = bench.n_neurons, bench.n_devices
cells = np.array(bench.device_cells)

def report(counts):
    sys.stdout.write(json.dumps(counts) + "\n")
    sys.stdout.flush()

w = ArchiveWriter(path, flush_every=flush_every or None, flush_interval_s=None, on_commit=report)
w.start(run_info(bench))
index = 0

def step(k):
    global index
    g = k * 1e-6 + np.arange(d) * 1e-12
    m = np.full((n, n), np.nan)
    m[cells[:, 0], cells[:, 1]] = g
    res = MatrixResult(g=g, g_std=g * 0.01, matrix=m, matrix_std=m * 0.01, v_read=0.1)
    w.operation(OperationRecord(index, ReadMatrix(), res, time.time(), float(k), 0.5, {"k": k}, truth=g))
    index += 1
    w.operation(OperationRecord(index, Record("step", {"k": k, "trace": [k] * 5}), None, time.time(), float(k), 0.0, {}))
    index += 1
    if k % 7 == 6:
        w.operation(OperationRecord(index, Checkpoint({"k": k}), None, time.time(), float(k), 0.0, {}))
        index += 1

k = 0
if mode == "forever":
    while True:
        step(k); k += 1
else:  # interactive: "go K" runs K steps then commits; "finish" ends the run
    report({"ready": 1})
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "go":
            for _ in range(int(cmd[1])):
                step(k); k += 1
            w.commit()
            report({"done": 1, **w.counts()})
        elif cmd[0] == "finish":
            w.finish("complete")
            report({"finished": 1})
            break
"""


def _spawn(tmp_path: Path, path: Path, mode: str, flush_every: int = 3) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    if not script.exists():
        script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    return subprocess.Popen(
        [sys.executable, str(script), str(path), mode, str(flush_every)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _check_rows(path: Path, reported: dict) -> dict:
    """Open a killed run as a reader would and check every committed row; return findings."""
    out: dict = {}
    try:
        h5py.File(path, "r").close()
        out["plain_open"] = "ok"
    except OSError as exc:
        out["plain_open"] = "refused" if "already open for write" in str(exc) else f"error: {exc}"
    with h5py.File(path, "r", swmr=True) as f:
        c = f["entry/committed"][0]
        assert f["entry/status"][()] == b"running"
        reads = int(c["reads"])
        # at least what the writer reported; at most one commit more (killed before reporting it)
        assert reported["reads"] <= reads <= reported["reads"] + 3, (reported, reads)
        G = f["entry/devices/g"][:reads]
        truth = f["entry/devices/truth"][:reads]
        M = f["entry/data/conductance"][:reads]
        expect = np.arange(reads)[:, None] * 1e-6 + np.arange(G.shape[1])[None, :] * 1e-12
        np.testing.assert_array_equal(G, expect)
        np.testing.assert_array_equal(truth, expect)
        np.testing.assert_array_equal(np.nanmax(M, axis=(1, 2)), expect[:, -1])
        ops = f["entry/log/operations"][: int(c["operations"])]
        js = f["entry/log/json"][: int(c["json_bytes"])]
        assert int(c["operations"]) >= reported["operations"]
        for row in ops:  # every committed log row points at complete JSON
            json.loads(js[row["json_offset"]: row["json_offset"] + row["json_length"]].tobytes())
        recs = f["entry/log/records"][: int(c["records"])]
        ks = [json.loads(js[r["json_offset"]: r["json_offset"] + r["json_length"]].tobytes())["k"] for r in recs]
        assert ks == list(range(len(recs)))
        out["extra_rows"] = int(f["entry/devices/g"].shape[0]) - reads  # written, never committed
        out["reads"] = reads
        out["lost_vs_report"] = reads - reported["reads"]
    with open_run(path) as r:  # the reader sees exactly the committed rows
        # the file still says running; its writer's lock is gone, so the reader says interrupted
        assert r.recorded_status == "running" and r.status == "interrupted" and r.g.shape[0] == reads
    return out


def test_sigkill_keeps_every_committed_step(tmp_path):
    rng = np.random.default_rng()
    kills = 6
    findings = []
    for batch in range(kills // 2):  # two writers at a time (2 cores)
        procs = []
        for j in range(2):
            path = tmp_path / f"kill{batch}_{j}.h5"
            procs.append((path, _spawn(tmp_path, path, "forever", flush_every=int(rng.integers(1, 6)))))
        for path, p in procs:
            first = p.stdout.readline()
            assert first, p.stderr.read()
        time.sleep(float(rng.uniform(0.1, 0.4)))
        for path, p in procs:
            p.send_signal(signal.SIGKILL)
        for path, p in procs:
            lines = [first] + p.stdout.read().splitlines()  # everything the writer reported
            p.wait()
            assert p.returncode == -signal.SIGKILL
            reported = json.loads([ln for ln in lines if ln.strip()][-1])
            findings.append(_check_rows(path, reported))
    summary = {
        "kills": len(findings),
        "plain_open_refused": sum(f["plain_open"] == "refused" for f in findings),
        "rows_committed": [f["reads"] for f in findings],
        "uncommitted_rows_in_file": [f["extra_rows"] for f in findings],
    }
    print("v110 SWMR SIGKILL:", summary)
    assert all(f["plain_open"] in ("ok", "refused") for f in findings)
    assert min(summary["rows_committed"]) > 0


def test_second_process_reads_a_live_run(tmp_path):
    path = tmp_path / "live.h5"
    p = _spawn(tmp_path, path, "interactive", flush_every=0)  # commits only when told
    try:
        def ask(cmd: str) -> dict:
            p.stdin.write(cmd + "\n")
            p.stdin.flush()
            while True:  # skip the commits made at checkpoints on the way
                line = p.stdout.readline()
                assert line, p.stderr.read()
                reply = json.loads(line)
                if "done" in reply or "finished" in reply:
                    return reply

        assert json.loads(p.stdout.readline()) == {"ready": 1}
        c1 = ask("go 5")
        with open_run(path) as run:  # this process is the second one
            assert run.status == "running" and run.counts["reads"] == c1["reads"] == 5
            np.testing.assert_allclose(run.g.values[:, 0], np.arange(5) * 1e-6)
            assert list(run.records("step")["k"]) == list(range(5))
            listing = list_runs(tmp_path)
            assert listing.loc[0, "status"] == "running"
            c2 = ask("go 9")
            run.refresh()
            assert run.counts["reads"] == c2["reads"] == 14
            np.testing.assert_allclose(run.g.values[:, 0], np.arange(14) * 1e-6)
            assert len(run.checkpoints) == 2 and run.checkpoints["state"].iloc[-1] == {"k": 13}
            with h5py.File(path, "r", swmr=True) as f:  # plain h5py SWMR reader too
                assert f["entry/committed"][0]["reads"] == 14
            assert ask("finish") == {"finished": 1}
            run.refresh()
            assert run.status == "complete" and run.end_time
    finally:
        p.kill()
        p.wait()
