"""The self-learning Hopfield experiment on the simulated benches: the table, then one JSON line
per (set, method).

    python benchmarks/experiment_table.py            # the full table (~45 min on 2 cores)
    python benchmarks/experiment_table.py --quick    # demo-sized (~1 min)

Clamped (paper) training runs on the shipped 35-contact film bench (data/benches/
sim-film35.toml, film-amr preset); the error-driven training on a simulated 35×35 crossbar
of bipolar spin-orbit-torque devices (crossbar-sot preset) wired like the film bench with
six matrix cards. Every physical number comes from operations through the runner; device
noise and spread are on; seeds are fixed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.bench import Bench  # noqa: E402
from lab.config import loads_bench  # noqa: E402
from lab.runner import Runner  # noqa: E402
from lab.app.experiment import ExperimentConfig, experiment_summary, run_experiment  # noqa: E402

BUS_ROWS = ("drive_pos", "drive_neg", "guard", "sense0", "sense1", "sense2", "sense3", "sense4")


def crossbar_bench_text(n: int = 35, preset: str = "crossbar-sot", seed: int = 1234) -> str:
    """A simulated n×n crossbar (rows R*, columns K*) on the film bench's instruments, 6 cards.

    A V/2 phase drives a quarter of the array at full and half of it at half voltage: up
    to ~50 mA per drive bus, within the film bench's 0.2 A drive limit.
    """
    film = film_bench_text()
    head = film[: film.index("[array]")].replace("cards = 3", "cards = 6")
    head = head.replace('name = "sim-film35"', f'name = "sim-crossbar{n}"')
    lines = [f"R{k} = [{1 + k // 12}, {1 + k % 12}]" for k in range(n)]
    lines += [f"K{k} = [{4 + k // 12}, {1 + k % 12}]" for k in range(n)]
    rows = "\n".join(f'{bus} = "{row}"' for bus, row in zip(BUS_ROWS, "ABCDEFGH"))
    return head + f"""[array]
topology = "crossbar"
n = {n}
tied = false
g_nominal_S = 0.75e-4

[wiring]
matrix = "matrix"

[wiring.rows]
{rows}

[wiring.lines]
{chr(10).join(lines)}

[limits]
v_max_V = 1.5
power_max_W = 0.005
g_max_expected_S = 5.0e-4
pulse_width_max_s = 0.05
v_read_max_V = 0.2
v_read_default_V = 0.1
v_threshold_V = 0.3
forbidden_lines = []

[simulation]
preset = "{preset}"
seed = {seed}
contact_resistance_ohm = 1.0
source_resistance_ohm = 0.0

[timing]
nplc = 1.0
line_frequency_Hz = 50
command_latency_s = 0.001
"""


def film_bench_text() -> str:
    """The shipped film bench (its drive buses allow the ~60 mA the film draws at ±1 V)."""
    return (ROOT / "data" / "benches" / "sim-film35.toml").read_text()


class Opener:
    """Fresh simulated benches (untrained devices) on demand; closes them all at the end."""

    def __init__(self) -> None:
        self.benches: list[Bench] = []

    def film(self, seed: int) -> Runner:
        text = film_bench_text().replace("seed = 1234", f"seed = {seed}")
        return self._open(text, "sim-film35")

    def crossbar(self, seed: int) -> Runner:
        return self._open(crossbar_bench_text(seed=seed), "sim-crossbar35")

    def _open(self, text: str, source: str) -> Runner:
        for old in self.benches:  # one bench at a time: memory, and no stale twins
            old.close()
        bench = Bench.open(loads_bench(text, source=source), simulate=True)
        self.benches = [bench]
        return Runner(bench)

    def close(self) -> None:
        for bench in self.benches:
            bench.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="demo-sized run")
    ap.add_argument("--sets", default=None,
                    help="label=GLYPHS,... (default: dissimilar=LTXO,similar=CODG,similar2=DOQU; --quick: CODG)")
    ap.add_argument("--materio-cues", type=int, default=None,
                    help="in-materio cues per pattern, first seed only (default 5; --quick: 0)")
    ap.add_argument("--seeds", default=None, help="device seeds, comma separated (default 1234,1,2; --quick: 1234)")
    ap.add_argument("--methods", default=None,
                    help="comma separated subset of: clamped, clamped_crossbar, error_driven, hebbian, oja, "
                         "storkey, pseudo_inverse (default: all)")
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    args = ap.parse_args(argv)
    changes: dict = {} if args.quick else {
        "sets": {"dissimilar": tuple("LTXO"), "similar": tuple("CODG"), "similar2": tuple("DOQU")},
        "materio_cues_per_pattern": 5, "device_seeds": (1234, 1, 2),
    }
    if args.sets:
        changes["sets"] = {label: tuple(glyphs) for label, _, glyphs in
                           (item.partition("=") for item in args.sets.split(","))}
    if args.materio_cues is not None:
        changes["materio_cues_per_pattern"] = args.materio_cues
    if args.seeds:
        changes["device_seeds"] = tuple(int(v) for v in args.seeds.split(","))
    if args.methods:
        changes["methods"] = tuple(args.methods.split(","))
    cfg = ExperimentConfig.quick(**changes) if args.quick else ExperimentConfig(**changes)
    opener = Opener()
    t0 = time.monotonic()
    try:
        result = run_experiment(opener.film, opener.crossbar, cfg, log=lambda s: print(s, flush=True))
    finally:
        opener.close()
    print()
    print(result.table())
    print()
    print(result.epoch_table())
    print(f"\nwall time {time.monotonic() - t0:.0f} s")
    for row in experiment_summary(result)["rows"]:  # one JSON line per (set, method)
        print(json.dumps({"set": row["set"], "glyphs": row["glyphs"], "method": row["method"], "exact": row["exact"],
                          "bit": row["bit_accuracy"], "materio_exact": row["materio_exact"],
                          "w_corr_hebbian": row["w_corr_hebbian"], "per_seed_exact": row["per_seed_exact"]}))
    if args.json:
        args.json.write_text(json.dumps(experiment_summary(result), indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
