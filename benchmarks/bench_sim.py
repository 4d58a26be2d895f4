"""Speed and memory of the device simulator (run: python benchmarks/bench_sim.py).

For crossbars of N = 35, 256 and 1024 (1M devices) it prints pulsed device updates per
second, full nodal solves per second, the ratio of one update step to the floor of any
vectorised update (a single np.multiply over the same float32 state arrays), the memory per
device, and the time of one 35-contact film solve (every simulated measurement is one).
Targets: step/floor ≤ 8 at N = 1024, ≤ 64 B/device, film solve < 1 ms.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim_backend import DeviceArray, SimulatedBench, Source, crossbar, film, load_preset  # noqa: E402
from sim_backend.circuit import Circuit  # noqa: E402


def best_of(fn, repeat: int, budget_s: float = 3.0) -> float:
    """Best wall time of fn() over up to `repeat` runs within a time budget."""
    best, spent = np.inf, 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget_s:
            break
    return best


def crossbar_row(n: int, preset) -> dict:
    topo = crossbar(n, tied=True)
    array = DeviceArray(topo, preset, np.random.default_rng(0))
    s = np.random.default_rng(1).choice([-1.0, 1.0], n)
    V0 = preset.train_voltage_V / 2  # tied neurons: anti-aligned cells see the full write voltage
    volts = (V0 * (s[topo.devices[:, 0]] - s[topo.devices[:, 1] - n])).astype(np.float32)
    width = preset.train_pulse_width_s
    reps = 200 if n < 512 else 30

    step = best_of(lambda: array.advance(volts, width), reps)
    pattern_bytes = array.nbytes()  # the pattern drive is packed now: the largest footprint
    # a row write: row 0 at the write voltage, every other line at 0 V (n cells driven)
    row = np.zeros(topo.n_devices, np.float32)
    row[:n] = preset.train_voltage_V
    row_step = best_of(lambda: array.advance(row, width), reps)
    a, b, c = array.x, array.mobility, np.empty_like(array.x)
    floor = best_of(lambda: np.multiply(a, b, out=c), reps * 5)

    sources = {"drive": Source(0.2, 1.0, True), "sense": Source(0.0, 1.0, True)}
    circuit = Circuit(topo, sources)
    # a floating read: row 0 driven, column 0 sensed, every other line floats on 1 Ω contacts
    # to nothing; plus all lines on 1 Ω contacts so every node is an unknown
    links = [(0, 0, 1.0), (1, n, 1.0)] + [(1, line, 1e3) for line in range(1, 2 * n) if line != n]
    circuit.configure(links)
    G = array.conductance()
    solve = best_of(lambda: circuit.solve(G), 20 if n < 512 else 3, budget_s=10.0)

    topo_bytes = topo.devices.nbytes + (0 if topo.device_cells is topo.devices else topo.device_cells.nbytes)
    per_device = (max(array.nbytes(), pattern_bytes) + topo_bytes) / topo.n_devices
    return dict(n=n, devices=topo.n_devices, step=step, row_step=row_step, floor=floor, solve=solve,
                bytes=per_device)


def film_solve() -> dict:
    topo = film(35)
    xp = {f"1A{i + 1:02d}": ("drive", f"C{i}") for i in range(35)}
    xp.update({f"1B{i + 1:02d}": ("gnd", f"C{i}") for i in range(35)})
    out = {}
    for label, contact in (("1 ohm contacts", 1.0), ("ideal contacts (fast path)", 0.0)):
        bench = SimulatedBench(topo, "film-amr", seed=0, buses=["drive", "gnd"], crosspoints=xp,
                               contact_resistance_ohm=contact)
        bench.close(["1A01"] + [f"1B{i + 1:02d}" for i in range(1, 35)])
        bench.set_level("drive", 0.05)
        bench.set_output("drive", True)
        bench.set_output("gnd", True)
        G = bench.true_conductances()
        bench.solve_now()
        solve = best_of(lambda: bench.circuit.solve(G), 2000)
        measure = best_of(lambda: bench.measure("gnd", 0.001), 2000)
        out[label] = (solve, measure)
    return out


def main() -> None:
    preset = load_preset("crossbar-sot")
    print("crossbar-sot. pattern pulse: tied neurons at ±V0, half the cells driven;")
    print("row write: one row at the write voltage, all other lines at 0 V. floor: np.multiply over the state")
    print(f"{'N':>6} {'devices':>9} {'updates/s':>10} {'pattern':>10} {'ratio':>6} {'row write':>10} "
          f"{'ratio':>6} {'floor':>9} {'solves/s':>9} {'B/device':>9}")
    rows = []
    for n in (35, 256, 1024):
        r = crossbar_row(n, preset)
        rows.append(r)
        print(f"{r['n']:>6} {r['devices']:>9} {r['devices'] / r['step']:>10.3g} {r['step'] * 1e3:>8.3f}ms "
              f"{r['step'] / r['floor']:>6.1f} {r['row_step'] * 1e3:>8.3f}ms {r['row_step'] / r['floor']:>6.1f} "
              f"{r['floor'] * 1e3:>7.3f}ms {1 / r['solve']:>9.3g} {r['bytes']:>9.1f}", flush=True)
    print("\n35-contact film, grounded read of one contact")
    for label, (solve, measure) in film_solve().items():
        print(f"  {label:28s} solve {solve * 1e6:7.1f} µs   bench.measure {measure * 1e6:7.1f} µs")
    big = rows[-1]
    print(f"\nN=1024 step/floor: pattern pulse {big['step'] / big['floor']:.1f}, row write "
          f"{big['row_step'] / big['floor']:.1f} (target ≤ 8); memory {big['bytes']:.1f} B/device (target ≤ 64)")


if __name__ == "__main__":
    main()
