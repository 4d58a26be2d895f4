"""Archive throughput and overhead.

    python benchmarks/bench_archive.py [--rows 3000] [--repeats 5] [--crash 0] [--no-dry-run]

1. One 35×35 float64 matrix per append into a SWMR v110 file, committed (flush, counter,
   flush) every C appends, as the archive does it (rows buffered, written at the commit
   with write_direct_chunk or one block write), against per-row ``ds[i] = row`` and against
   one bulk h5py write of the same data.
2. The ArchiveWriter end to end: a matrix read per operation (matrix, errors, per-device
   g, errors and simulator truth, log rows, JSON) with a checkpoint every C operations.
3. The archive's share of a dry run's wall time (target ≤ 10 %): the paper's clamped
   training on the simulated 35-node film, every observer call timed.
4. ``--crash N``: N SIGKILLs of a writer mid-run, each file checked (v110 crash behaviour).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.archive import LIBVER, ArchiveWriter  # noqa: E402
from lab.observer import OperationRecord, RunInfo  # noqa: E402
from lab.operations import BenchInfo, Checkpoint, MatrixResult, ReadMatrix  # noqa: E402

N = 35
ROW_BYTES = N * N * 8


def _median_rate(fn, repeats: int) -> tuple[float, float]:
    times = [fn() for _ in range(repeats)]
    t = float(np.median(times))
    return t, float(np.min(times))


def _swmr_file(path: Path, chunk_rows: int) -> tuple[h5py.File, h5py.Dataset, h5py.Dataset]:
    f = h5py.File(path, "w", libver=LIBVER)
    ds = f.create_dataset("g", (0, N, N), maxshape=(None, N, N), chunks=(chunk_rows, N, N), dtype="<f8")
    counter = f.create_dataset("committed", data=np.int64(0))
    f.swmr_mode = True
    return f, ds, counter


def appends(tmp: Path, data: np.ndarray, every: int, method: str) -> float:
    path = tmp / f"appends_{method}_{every}.h5"
    f, ds, counter = _swmr_file(path, 1)
    t0 = time.perf_counter()
    n = 0
    pending: list[np.ndarray] = []
    for i, row in enumerate(data):
        if method == "per-row":  # the naive way: write every row as it comes
            ds.resize(i + 1, axis=0)
            ds[i] = row
        else:
            pending.append(row)
        if (i + 1) % every == 0 or i + 1 == len(data):
            if method == "archive":
                k = len(pending)
                ds.resize(n + k, axis=0)
                if k <= 32:
                    for j, r in enumerate(pending):
                        ds.id.write_direct_chunk((n + j, 0, 0), r.tobytes())
                else:
                    ds[n: n + k] = np.asarray(pending)
                n += k
                pending.clear()
            f.flush()
            counter[()] = i + 1
            f.flush()
    dt = time.perf_counter() - t0
    f.close()
    path.unlink()
    return dt


def bulk(tmp: Path, data: np.ndarray) -> float:
    path = tmp / "bulk.h5"
    t0 = time.perf_counter()
    with h5py.File(path, "w", libver=LIBVER) as f:
        f.create_dataset("g", data=data, chunks=(64, N, N))
        f.flush()
    dt = time.perf_counter() - t0
    path.unlink()
    return dt


def film_info() -> BenchInfo:
    from itertools import combinations

    devices = tuple(combinations(range(N), 2))
    return BenchInfo(
        line_names=tuple(f"C{i}" for i in range(N)), neuron_lines=tuple((i,) for i in range(N)),
        devices=devices, device_cells=devices, topology="film", v_max=5.0, v_read_max=0.2,
        max_pulse_width_s=1e-3, default_v_read=0.1, simulated=True,
    )


def run_info(bench: BenchInfo) -> RunInfo:
    return RunInfo(
        run_id="bench", protocol_name="bench", protocol_params={}, bench_text="", bench_parsed={},
        bench=bench, seeds={}, software_version="bench", git_revision=None, host="", start_time="",
        simulated=True,
    )


def writer_end_to_end(tmp: Path, n_ops: int, every: int) -> tuple[float, int]:
    bench = film_info()
    d = bench.n_devices
    cells = np.array(bench.device_cells)
    rng = np.random.default_rng(0)
    g = rng.uniform(1e-6, 1e-4, (64, d))
    mats = np.full((64, N, N), np.nan)
    for k in range(64):
        mats[k][cells[:, 0], cells[:, 1]] = g[k]
    results = [MatrixResult(g=g[k], g_std=g[k] * 0.01, matrix=mats[k], matrix_std=mats[k] * 0.01, v_read=0.1)
               for k in range(64)]
    path = tmp / f"writer_{every}.h5"
    w = ArchiveWriter(path, flush_interval_s=None, overwrite=True)
    w.start(run_info(bench))
    settings = {"v_read": 0.1, "nplc": 1.0, "relay_operations": 36}
    op = ReadMatrix()
    t0 = time.perf_counter()
    index = 0
    for i in range(n_ops):
        w.operation(OperationRecord(index, op, results[i % 64], time.time(), float(i), 0.1, settings, truth=g[i % 64]))
        index += 1
        if (i + 1) % every == 0:
            w.operation(OperationRecord(index, Checkpoint({"i": i}), None, time.time(), float(i), 0.0, {}))
            w.checkpoint(index, {"i": i})
            index += 1
    w.finish("complete")
    dt = time.perf_counter() - t0
    size = path.stat().st_size
    path.unlink()
    return dt, size


# --------------------------------------------------------------------------- dry run share


class Timed:
    """Wraps an observer and adds up the wall time spent in it."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.seconds = 0.0
        self.by_call: dict[str, float] = {}

    def _timed(self, name: str, *a: Any) -> None:
        t0 = time.perf_counter()
        try:
            getattr(self.inner, name)(*a)
        finally:
            dt = time.perf_counter() - t0
            self.seconds += dt
            self.by_call[name] = self.by_call.get(name, 0.0) + dt

    def start(self, info: Any) -> None:
        self._timed("start", info)

    def operation(self, rec: Any) -> None:
        self._timed("operation", rec)

    def checkpoint(self, index: int, state: Any) -> None:
        self._timed("checkpoint", index, state)

    def finish(self, status: Any, error: Any = None) -> None:
        self._timed("finish", status, error)


def dry_run_share(tmp: Path) -> dict[str, Any] | str:
    try:
        from lab.bench import Bench
        from lab.runner import Runner
        from protocols.common import glyphs
        from protocols.train import TrainHopfield
    except Exception as exc:  # noqa: BLE001 - report what is missing instead
        return f"runner or protocols not importable ({type(exc).__name__}: {exc})"
    out: dict[str, Any] = {}
    with Bench.open(simulate=True) as bench:
        proto = TrainHopfield(patterns=glyphs("L", "T", "X", "O"), epochs=3, v_train=0.6 * bench.info.v_max,
                              read_every=1)
        w = ArchiveWriter(tmp / "dry.h5", overwrite=True)
        timed = Timed(w)
        t0 = time.perf_counter()
        res = Runner(bench, observers=[timed]).run(proto)
        wall = time.perf_counter() - t0
    out.update(protocol="train_hopfield (4 glyphs, 3 epochs, read every epoch)", status=res.status,
               operations=res.n_operations, wall_s=wall, archive_s=timed.seconds, share=timed.seconds / wall,
               commit_s=w.commit_seconds, by_call=timed.by_call, file_bytes=(tmp / "dry.h5").stat().st_size)
    return out


# --------------------------------------------------------------------------- crash survey

CRASH_WRITER = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[3])
from benchmarks.bench_archive import film_info, run_info
from lab.archive import ArchiveWriter
from lab.observer import OperationRecord
from lab.operations import MatrixResult, ReadMatrix
bench = film_info(); d = bench.n_devices
def report(c):
    sys.stdout.write(json.dumps(c) + "\n"); sys.stdout.flush()
w = ArchiveWriter(sys.argv[1], flush_every=int(sys.argv[2]), flush_interval_s=None, on_commit=report)
w.start(run_info(bench))
k = 0
while True:
    g = np.full(d, k * 1e-6)
    m = np.full((35, 35), k * 1e-6)
    w.operation(OperationRecord(k, ReadMatrix(), MatrixResult(g, g, m, m, 0.1), time.time(), float(k), 0.1, {"k": k}))
    k += 1
"""


def crash_survey(tmp: Path, kills: int) -> dict[str, Any]:
    script = tmp / "crash_writer.py"
    script.write_text(CRASH_WRITER)
    rng = np.random.default_rng()
    tally = {"kills": 0, "exact": 0, "plain_open_refused": 0, "swmr_open_failed": 0, "lost_committed": 0,
             "torn_rows": 0, "uncommitted_rows_present": 0}
    for i in range(kills):
        path = tmp / f"crash{i}.h5"
        p = subprocess.Popen([sys.executable, str(script), str(path), str(int(rng.integers(1, 8))), str(ROOT)],
                             stdout=subprocess.PIPE, text=True)
        first = p.stdout.readline()
        time.sleep(float(rng.uniform(0.05, 0.8)))
        p.send_signal(signal.SIGKILL)
        lines = [first] + p.stdout.read().splitlines()
        p.wait()
        reported = json.loads([x for x in lines if x.strip()][-1])["reads"]
        tally["kills"] += 1
        try:
            h5py.File(path, "r").close()
        except OSError:
            tally["plain_open_refused"] += 1
        try:
            with h5py.File(path, "r", swmr=True) as f:
                c = int(f["entry/committed"][0]["reads"])
                g = f["entry/devices/g"][:c]
                m = f["entry/data/conductance"][:c]
                ok = c >= reported and np.array_equal(g[:, 0], np.arange(c) * 1e-6) and \
                    np.array_equal(m[:, 0, 0], np.arange(c) * 1e-6)
                tally["exact"] += ok
                tally["lost_committed"] += c < reported
                tally["torn_rows"] += not ok and c >= reported
                tally["uncommitted_rows_present"] += f["entry/devices/g"].shape[0] > c
        except OSError:
            tally["swmr_open_failed"] += 1
        path.unlink()
    return tally


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--crash", type=int, default=0, help="SIGKILL survey: number of kills (0 = skip)")
    ap.add_argument("--no-dry-run", action="store_true")
    args = ap.parse_args()
    rows, reps = args.rows, args.repeats
    data = np.random.default_rng(0).uniform(1e-6, 1e-4, (rows, N, N))
    mb = rows * ROW_BYTES / 1e6
    print(f"h5py {h5py.version.version}, HDF5 {h5py.version.hdf5_version}, libver {LIBVER}; "
          f"{rows} appends of one {N}x{N} float64 matrix ({mb:.1f} MB), median of {reps}\n")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmpdir:
        tmp = Path(tmpdir)
        print(f"{'method':<44}{'appends/s':>12}{'MB/s':>10}")
        t, _ = _median_rate(lambda: bulk(tmp, data), reps)
        print(f"{'single bulk write (h5py, one flush)':<44}{rows / t:>12,.0f}{mb / t:>10,.0f}")
        for every in (1, 10, 100):
            for method in ("archive", "per-row"):
                t, _ = _median_rate(lambda: appends(tmp, data, every, method), reps)
                label = f"{'archive (buffer+direct chunk)' if method == 'archive' else 'per-row ds[i]=row'}, commit/{every}"
                print(f"{label:<44}{rows / t:>12,.0f}{mb / t:>10,.0f}")
        print()
        print(f"{'ArchiveWriter.operation(ReadMatrix), full row':<44}{'ops/s':>12}{'MB/s':>10}{'us/op':>9}")
        for every in (1, 10, 100):
            res = [writer_end_to_end(tmp, rows, every) for _ in range(max(1, reps // 2))]
            t = float(np.median([r[0] for r in res]))
            size = res[0][1]
            print(f"{'  checkpoint every ' + str(every):<44}{rows / t:>12,.0f}{size / 1e6 / t:>10,.0f}{1e6 * t / rows:>9.0f}"
                  f"   (file {size / 1e6:.1f} MB)")
        print()
        if not args.no_dry_run:
            share = dry_run_share(tmp)
            if isinstance(share, str):
                print("dry-run share: not measured:", share)
            else:
                print(f"dry run {share['protocol']}: {share['operations']} operations, {share['status']}, "
                      f"wall {share['wall_s']:.2f} s, in the archive {share['archive_s'] * 1e3:.1f} ms "
                      f"(commits {share['commit_s'] * 1e3:.1f} ms) = {100 * share['share']:.2f} % "
                      f"(target <= 10 %); file {share['file_bytes'] / 1e6:.2f} MB")
                per = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in share["by_call"].items())
                print(f"  by observer call: {per}; per operation "
                      f"{1e3 * share['by_call'].get('operation', 0) / max(1, share['operations']):.2f} ms")
        if args.crash:
            t = crash_survey(tmp, args.crash)
            print(f"\nSIGKILL survey (v110 + SWMR, commit every 1-7 reads): {t}")


if __name__ == "__main__":
    main()
