"""Sweep scale-out: the same 16-point sweep serially and on a 2-worker LocalCluster.

    python benchmarks/bench_sweep.py [--points 16] [--workers 2]

Prints both wall times and the speed-up (target ≥ 1.6× on 2 cores).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lab.app.sweep import SweepSpec, expand, run_serial, run_sweep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    spec = SweepSpec(
        protocol="train_hopfield",
        fixed={"patterns": {"names": ["L", "T", "X", "O"]}, "epochs": 2, "read_every": 1,
               "pulse": {"width_s": 1e-3, "count": 5}},
        mode="random",
        samples=args.points,
        seed=7,
        random={"protocol.v_train": {"low": 0.8, "high": 1.2}},
    )
    with tempfile.TemporaryDirectory() as tmp:
        serial_pts = expand(spec, Path(tmp) / "serial")
        t0 = time.perf_counter()
        serial = run_serial(serial_pts)
        t_serial = time.perf_counter() - t0

        dask_pts = expand(spec, Path(tmp) / "dask")
        t0 = time.perf_counter()
        parallel = run_sweep(dask_pts, workers=args.workers)
        t_dask = time.perf_counter() - t0
    ok_s = int((serial["status"] == "complete").sum())
    ok_d = int((parallel["status"] == "complete").sum())
    print(f"points: {args.points} (complete: serial {ok_s}, dask {ok_d})")
    print(f"serial:                    {t_serial:7.2f} s")
    print(f"dask LocalCluster ({args.workers} workers): {t_dask:7.2f} s  (includes cluster start/stop)")
    print(f"speed-up: {t_serial / t_dask:.2f}x  (target >= 1.6x on 2 cores)")


if __name__ == "__main__":
    main()
