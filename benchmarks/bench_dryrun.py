"""How much faster than the bench a dry run is, and what the pre-flight costs
(run: python benchmarks/bench_dryrun.py [--quick]).

Figures, one JSON line each after the table:
- dry-run wall / bench time of a full guarded read (``read_conductances``) on every
  shipped crossbar bench file (N = 35, 128 and 256; the N = 256 read, ~1,500 s of bench
  time, takes minutes and is left out with ``--quick``), and of a 10-epoch
  ``train_hopfield`` on the 35-contact film (target ≤ 0.05). The bench time is virtual, so
  a loaded machine moves only the numerator (the same code measured 0.045 and 0.070 minutes
  apart on 2 shared cores): each is the best of 3 dry runs, as the other benchmarks take the
  best of their repeats (1 run at N = 256), with every run's ratio in its JSON line;
- the circuit solve of one guarded reading at crossbar N = 35, 128, 256 (the structured
  iterative solve and the dense reference) over the bench time of that reading, solved with
  every device's read noise drawn (the reference reading, ``small_signal_noise = False``), and
  what a reading costs now: one noiseless solve and the small-signal noise σ of all 7 buses
  per relay configuration (``sim_backend/read_noise.py``), shared by its 5 readings;
- the pre-flight (``lab.preflight``) of ``train_hopfield`` on the film at 1,000 and 100,000
  epochs (targets 2 s and 30 s; ``--quick``: 1,000 and 10,000), with the share of the
  operations that touch the bench whose outcome was reused rather than replayed;
- bench-layer bytes per device (bench file, layout, bench info, guard, crossbar) over the
  simulator's own state per device (target ≤ 4).
"""
from __future__ import annotations

import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import preflight  # noqa: E402
from lab.bench import Bench, PaperBench, bench_info  # noqa: E402
from lab.config import SHIPPED_BENCHES, load_bench  # noqa: E402
from lab.crossbar import Crossbar  # noqa: E402
from lab.runner import Runner  # noqa: E402
from lab.safety import GuardedActuator, SafetyGuard  # noqa: E402
from lab.timing import TimingModel  # noqa: E402
from protocols.base import load_protocol  # noqa: E402
from sim_backend import Source, crossbar  # noqa: E402
from sim_backend.circuit import Circuit  # noqa: E402
from sim_backend.read_noise import current_sigmas  # noqa: E402

FIGURES: list[dict] = []


def figure(name: str, value: float, unit: str, target: float | None = None, runs: list[float] | None = None,
           **where) -> None:
    FIGURES.append({"bench": "dryrun", "figure": name, **where, "value": float(f"{value:.4g}"), "unit": unit,
                    **({"target": target, "met": bool(value <= target)} if target is not None else {}),
                    **({"runs": [float(f"{r:.4g}") for r in runs]} if runs else {})})
    print(f"{name:34s} {json.dumps(where):40s} {value:12.4g} {unit}"
          + (f"   (target ≤ {target:g})" if target is not None else ""))


def dry_run(bench_name: str, protocol: str, overrides: dict | None = None) -> tuple[float, float]:
    """(wall s, bench s) of one dry run of ``protocol`` on the twin of a shipped bench file."""
    bench = Bench.open(bench_name, simulate=True)
    try:
        proto = load_protocol(protocol, overrides or {})
        t0 = time.perf_counter()
        res = Runner(bench, lock=False).run(proto)
        return time.perf_counter() - t0, res.bench_time_s
    finally:
        bench.close()


def dry_run_ratios(bench_name: str, protocol: str, overrides: dict | None = None, repeat: int = 3) -> list[float]:
    """Wall / bench time of ``repeat`` dry runs, each on a freshly opened twin (same seed)."""
    out = []
    for _ in range(repeat):
        wall, bench_s = dry_run(bench_name, protocol, overrides)
        out.append(wall / bench_s)
    return out


def guarded_reading_solve(n: int, structured: bool, budget_s: float = 2.0, small_signal: bool = False) -> float:
    """Mean wall s of one reading's circuit solve in a guarded read of a crossbar of n: its own
    noisy solve, or (small_signal) a fifth of a configuration's solve and noise σ."""
    topo = crossbar(n)
    buses = ["drive", "guard"] + [f"s{k}" for k in range(5)]
    src = {b: Source(level_V=0.1 if b == "drive" else 0.0, compliance_A=0.1, output=True) for b in buses}
    c = Circuit(topo, src)
    c.structured = structured
    idx = c.bus_index
    sense = set(range(n, n + 5))
    links = [(idx["drive"], 0, 1.0)] + [(idx[f"s{k}"], n + k, 1.0) for k in range(5)]
    links += [(idx["guard"], line, 1.0) for line in range(1, 2 * n) if line not in sense]
    c.configure(links)
    rng = np.random.default_rng(0)
    g = rng.uniform(0.5e-4, 1.5e-4, topo.n_devices)
    c.solve(g)
    every_bus = list(range(len(buses)))
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < budget_s or k < 3:
        if small_signal:  # (the circuit caches by mode only: each pass solves afresh)
            current_sigmas(c, c.solve(g), 1e-6, c.unit_responses(g, every_bus))
        else:
            c.solve(g * (1 + 1e-3 * rng.standard_normal(g.size)))  # every reading draws its own noise
        k += 1
    return (time.perf_counter() - t0) / k / (5 if small_signal else 1)


def bench_layer_bytes(name: str) -> tuple[float, float]:
    """(bench-layer bytes per device, simulator state bytes per device) for a bench file."""
    load_bench(name)  # warm imports and shipped-file lookups out of the measurement
    gc.collect()
    tracemalloc.start()
    m0 = tracemalloc.get_traced_memory()[0]
    cfg = load_bench(name)
    lay = cfg.layout
    _ = lay.device_index, lay.owner
    info = bench_info(cfg, True)
    guard = SafetyGuard(cfg)
    paper = PaperBench(cfg)
    paper.guard = guard
    xbar = Crossbar(GuardedActuator(guard, paper, TimingModel.from_config(cfg)), cfg)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - m0
    tracemalloc.stop()
    n_dev = len(lay.devices)
    del info, xbar
    bench = Bench.open(cfg, simulate=True)
    try:
        sim = bench.twin.bench.array.nbytes() / n_dev
    finally:
        bench.close()
    return used / n_dev, sim


def main() -> None:
    quick = "--quick" in sys.argv
    print("figure                             where                                           value")
    crossbars = sorted(p.stem for p in SHIPPED_BENCHES.glob("sim-crossbar*.toml"))
    for name in crossbars:
        n = load_bench(name).array.n
        if quick and n > 128:
            continue
        runs = dry_run_ratios(name, "read_conductances", repeat=1 if n > 128 else 3)
        figure("guarded_read_wall_over_bench", min(runs), "ratio", 0.05, runs, n=n, bench_file=name)
    runs = dry_run_ratios("sim-film35", "train_hopfield", {"epochs": 10})
    figure("train10_wall_over_bench", min(runs), "ratio", 0.05, runs, n=35, bench_file="sim-film35")

    t_reading = TimingModel.from_config(load_bench(crossbars[0] if crossbars else "sim-film35")).measure_s
    for n in (35, 128, 256):
        for structured in (True, False):
            t = guarded_reading_solve(n, structured, 1.0 if quick else 2.0)
            figure("reading_solve_over_reading_bench_time", t / t_reading, "ratio", n=n,
                   solve="structured" if structured else "dense", noise="every device")
        t = guarded_reading_solve(n, True, 1.0 if quick else 2.0, small_signal=True)
        figure("reading_solve_over_reading_bench_time", t / t_reading, "ratio", n=n, solve="structured",
               noise="small signal")

    cfg = load_bench("sim-film35")
    info = bench_info(cfg, True)
    targets = {1_000: 2.0, 100_000: 30.0}
    for epochs in (1_000, 10_000 if quick else 100_000):
        proto = load_protocol("train_hopfield", {"epochs": epochs})
        t0 = time.perf_counter()
        rep = preflight.dry_check(cfg, info, proto)
        wall = time.perf_counter() - t0
        figure("preflight_wall", wall, "s", targets.get(epochs), epochs=epochs, operations=rep.n_operations)
        touching = rep.n_operations - sum(rep.counts.get(k, 0) for k in ("note", "record", "checkpoint"))
        figure("preflight_reused_share", rep.reused / max(touching, 1), "fraction", epochs=epochs)

    for name in (*crossbars, "sim-film35"):
        lab_b, sim_b = bench_layer_bytes(name)
        figure("bench_layer_bytes_per_device", lab_b, "B", bench_file=name)
        figure("bench_layer_over_sim_state", lab_b / sim_b, "ratio", 4.0, bench_file=name)
    print()
    for f in FIGURES:
        print(json.dumps(f))


if __name__ == "__main__":
    main()
