"""Speed of the continuous film (sim_backend.thinfilm); run: python benchmarks/bench_film.py

Prints, measured in one run, and one JSON line per figure:
  - one pulse step at 64×64 cells (interior potential from the present factorization, per-cell
    E, j and Joule power, heat and texture update): target < 10 ms
  - the full 35-contact conductance matrix from one factorization (assembly, banded Cholesky,
    35 back-solves, Schur complement) at 64×64: target < 20 ms
  - a guarded matrix read of the 595 pairs through the simulated instruments (sim-film35,
    ReadConductances) with the continuous film, over the same read with the pair model
    (film-amr): target ≤ 2×
The film's banded solves run on one BLAS thread (sim_backend.blas); the figures are
wall times, so on a loaded machine they rise with its load (run it alone).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_sim  # noqa: E402  (its neighbour in benchmarks/: one timing helper for both)
from sim_backend import FilmArray, film, load_preset  # noqa: E402
from sim_backend.thinfilm.dtn import ContactMap  # noqa: E402
from sim_backend import thinfilm  # noqa: E402

CONTINUOUS = "film-continuous"
PAIRS = "film-amr"


def best_of(fn, repeat: int, budget_s: float = 5.0) -> float:
    return bench_sim.best_of(fn, repeat, budget_s)


def emit(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"benchmark": "film", "figure": name, "value": value, "unit": unit, **extra}))


def mesh_figures(n_cells: int = 64) -> dict:
    p = load_preset(CONTINUOUS, {"cells_per_side": n_cells})
    topo = film(35)
    arr = FilmArray(topo, p, np.random.default_rng(0))
    arr.conductance()
    rng = np.random.default_rng(1)
    patterns = [p.train_voltage_V * rng.choice([-1.0, 1.0], 35) for _ in range(8)]
    drives = [V[topo.devices[:, 0]] - V[topo.devices[:, 1]] for V in patterns]
    k = iter(range(10**9))

    def step() -> None:  # a fresh drive each time: no cached fields; factorization current
        arr.contact_map()
        arr._fields.clear()
        t0 = time.perf_counter()
        arr.advance(drives[next(k) % len(drives)], p.train_pulse_width_s)
        step.t = min(getattr(step, "t", np.inf), time.perf_counter() - t0)

    for _ in range(20):
        step()
    sigma = thinfilm.texture.conductivity(arr.q, arr.T, arr.rho_rel, p)
    factor = best_of(lambda: ContactMap(arr.mesh, *sigma), 20)
    return {"cells": f"{n_cells}x{n_cells}", "nodes": arr.mesh.n_nodes, "step_s": step.t, "matrix_s": factor}


def guarded_read_s(preset: str, v_read: float) -> float:
    from lab.bench import Bench
    from lab.config import loads_bench
    from lab.runner import Runner
    from protocols.read_conductances import ReadConductances

    path = Path(__file__).resolve().parent.parent / "data" / "benches" / "sim-film35.toml"
    text = path.read_text()
    text = text.replace('[simulation]\npreset = "film-amr"', f'[simulation]\npreset = "{preset}"')
    assert f'preset = "{preset}"' in text
    cfg = loads_bench(text, source=str(path))
    with Bench.open(cfg, simulate=True) as bench:
        runner = Runner(bench, [], lock=False)
        proto = ReadConductances(v_read=v_read)
        runner.run(proto)  # warm: factorization, caches
        return best_of(lambda: runner.run(proto), 3, budget_s=60.0)


def main() -> None:
    m = mesh_figures()
    print(f"continuous film, mesh {m['cells']} cells ({m['nodes']} nodes), 35 contacts")
    print(f"  one pulse step          {m['step_s'] * 1e3:7.2f} ms   (target < 10 ms: ratio {m['step_s'] / 10e-3:.2f})")
    print(f"  35-contact matrix       {m['matrix_s'] * 1e3:7.2f} ms   (target < 20 ms: ratio {m['matrix_s'] / 20e-3:.2f})")
    emit("pulse_step_64", m["step_s"], "s", cells=m["cells"], target_s=10e-3, ratio=m["step_s"] / 10e-3)
    emit("conductance_matrix_64", m["matrix_s"], "s", cells=m["cells"], target_s=20e-3, ratio=m["matrix_s"] / 20e-3)
    v_read = load_preset(CONTINUOUS).read_voltage_V
    pairs = guarded_read_s(PAIRS, v_read)
    cont = guarded_read_s(CONTINUOUS, v_read)
    cells = load_preset(CONTINUOUS).cells_per_side
    print(f"  guarded 595-pair read   {cont:7.2f} s continuous ({cells}x{cells}) vs {pairs:.2f} s pairs: "
          f"ratio {cont / pairs:.2f} (target ≤ 2)")
    emit("guarded_read_pairs", pairs, "s", preset=PAIRS, v_read_V=v_read)
    emit("guarded_read_continuous", cont, "s", preset=CONTINUOUS, cells=f"{cells}x{cells}", v_read_V=v_read)
    emit("guarded_read_ratio", cont / pairs, "ratio", target=2.0)


if __name__ == "__main__":
    main()
