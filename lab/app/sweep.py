"""Parameter sweeps of simulated runs on a Dask cluster.

A sweep file names one protocol, a bench file, fixed parameters and the parameters to
vary (protocol parameters as ``protocol.<name>``, device-preset parameters as
``preset.<name>``, the simulator seed as ``sim.seed``). Each point is an independent dry
run with its own archive; points run on a Dask distributed cluster (a LocalCluster
unless a scheduler address is given). A failed point is recorded, never fatal.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
import tomllib
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PREFIXES = ("protocol.", "preset.", "sim.")


class RandomRange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "RandomRange":
        if not self.high > self.low:
            raise ValueError(f"high ({self.high}) must exceed low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("log ranges need low > 0")
        return self


class SweepSpec(BaseModel):
    """A sweep file, validated."""

    model_config = ConfigDict(extra="forbid")

    protocol: str
    bench: str | None = None  # bench file; None = the shipped simulated 35-node film
    mode: Literal["grid", "random"] = "grid"
    samples: int = Field(default=8, ge=1)  # random mode only
    seed: int = 0  # draws of random mode, and the base of per-point simulator seeds
    fixed: dict[str, Any] = Field(default_factory=dict)  # protocol parameters for every point
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    random: dict[str, RandomRange] = Field(default_factory=dict)
    metric: str | None = None  # summary column to plot (an unknown name is an error); default: first numeric result

    @field_validator("grid", "random")
    @classmethod
    def _prefixed(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not key.startswith(PREFIXES):
                raise ValueError(f"sweep parameter {key!r} must start with one of {PREFIXES}")
        return value

    @field_validator("grid")
    @classmethod
    def _nonempty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"grid parameter {key!r} has no values")
        return value

    @model_validator(mode="after")
    def _mode_matches(self) -> "SweepSpec":
        if self.mode == "grid" and self.random:
            raise ValueError("mode = 'grid' but a [random] table is given (set mode = 'random')")
        if self.mode == "random" and self.grid:
            raise ValueError("mode = 'random' but a [grid] table is given (set mode = 'grid')")
        return self


def load_sweep(path: str | Path) -> SweepSpec:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    spec = SweepSpec.model_validate(data)
    if spec.bench is not None and not Path(spec.bench).is_absolute():
        spec = spec.model_copy(update={"bench": str((path.parent / spec.bench).resolve())})
    return spec


@dataclass
class SweepPoint:
    """One run of a sweep: everything a worker needs, as plain data."""

    index: int
    protocol: str
    bench: str | None
    protocol_params: dict[str, Any]
    preset_overrides: dict[str, Any]
    sim_seed: int
    archive: str
    varied: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        blob = json.dumps([self.protocol, self.protocol_params, self.preset_overrides, self.sim_seed], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]


def expand(spec: SweepSpec, out_dir: str | Path) -> list[SweepPoint]:
    """The sweep's points, in a fixed order (grid: row-major; random: seeded draws)."""
    if spec.mode == "grid":
        names = list(spec.grid)
        combos = [dict(zip(names, values)) for values in itertools.product(*spec.grid.values())] or [{}]
    else:
        rng = np.random.default_rng(spec.seed)
        combos = []
        for _ in range(spec.samples):
            combo: dict[str, Any] = {}
            for name, rr in spec.random.items():
                if rr.log:
                    value = float(np.exp(rng.uniform(np.log(rr.low), np.log(rr.high))))
                else:
                    value = float(rng.uniform(rr.low, rr.high))
                combo[name] = int(round(value)) if rr.integer else value
            combos.append(combo)
    points = []
    for i, combo in enumerate(combos):
        protocol_params = dict(spec.fixed)
        preset: dict[str, Any] = {}
        sim_seed = spec.seed * 1000 + i
        for name, value in combo.items():
            group, _, pname = name.partition(".")
            if group == "protocol":
                protocol_params[pname] = value
            elif group == "preset":
                preset[pname] = value
            elif pname == "seed":
                sim_seed = int(value)
            else:
                raise ValueError(f"unknown simulator parameter {name!r} (only sim.seed)")
        points.append(
            SweepPoint(i, spec.protocol, spec.bench, protocol_params, preset, sim_seed, "", combo)
        )
    for p in points:
        p.archive = str(Path(out_dir) / f"point_{p.index:04d}_{p.key()}.h5")
    return points


def _scalar_results(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in results.items():
        if isinstance(v, (bool, int, float, np.integer, np.floating)):
            out[k] = float(v) if not isinstance(v, bool) else v
    return out


def run_point(point: SweepPoint) -> dict[str, Any]:
    """Run one point as a dry run; never raises (a failure is a row with its error)."""
    from lab.app.jobs import run_simulated  # imported on the worker

    row: dict[str, Any] = {"point": point.index, **point.varied, "archive": point.archive}
    t0 = time.perf_counter()
    try:
        Path(point.archive).parent.mkdir(parents=True, exist_ok=True)
        # Write under a temporary name and rename, so a retried or crashed point never
        # leaves a half file that looks finished.
        part = point.archive + ".part"
        summary = run_simulated(
            point.protocol,
            overrides=point.protocol_params,
            bench=point.bench,
            preset_overrides=point.preset_overrides,
            sim_seed=point.sim_seed,
            archive=part,
            progress=False,
        )
        os.replace(part, point.archive)
        row.update(status=summary.status, bench_time_s=summary.bench_time_s, error="")
        row.update(_scalar_results(summary.results))
        row.update(read_error(point.archive))
    except Exception as exc:  # a failed point is data, not a crash of the sweep
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        row["traceback"] = traceback.format_exc(limit=5)
    row["wall_s"] = time.perf_counter() - t0
    return row


def run_sweep(
    points: list[SweepPoint],
    *,
    scheduler: str | None = None,
    workers: int = 2,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    runner: Callable[[SweepPoint], dict[str, Any]] = run_point,
) -> pd.DataFrame:
    """Run every point on Dask and return one row per point, ordered by point index."""
    # 0 workers would wait for ever for a worker to take the first point; more than the
    # machine has cores only thrashes (each point is one CPU-bound process).
    max_workers = max(os.cpu_count() or 1, 1) * 4
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= max_workers:
        raise ValueError(f"--workers {workers!r}: needs 1..{max_workers} workers (this machine has "
                         f"{os.cpu_count()} cores)")
    from distributed import Client, LocalCluster, as_completed

    if scheduler:
        cluster = None
        client = Client(scheduler)
    else:
        # Loopback and a free dashboard port: the default 0.0.0.0:8787 collides in CI.
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,  # h5py serialises HDF5 calls under one lock
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
        client = Client(cluster)
    rows: list[dict[str, Any]] = []
    try:
        # pure=False: identical-looking points (same params, other seeds) must all run.
        futures = client.map(runner, points, pure=False)
        for done, (_, row) in enumerate(as_completed(futures, with_results=True), 1):
            rows.append(row)
            if progress:
                progress(done, len(points), row)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return pd.DataFrame(rows).sort_values("point").reset_index(drop=True)


def read_error(archive: str | Path) -> dict[str, float]:
    """How far the point's last conductance read is from the simulator's truth.

    ``read_error_rel``: RMS over the devices read of (G_measured − G_true)/G_true. A dry run
    knows the truth, so a sweep can score a measurement scheme by its real error, not only
    by the scatter it reports. Empty when the run read no matrix.
    """
    from lab.archive import Run

    try:
        with Run(archive) as run:
            if not run.counts["reads"]:
                return {}
            g, truth = run.g.values[-1], run.truth.values[-1]
    except Exception:  # a point without a readable archive has its error already
        return {}
    ok = np.isfinite(g) & np.isfinite(truth) & (truth != 0)
    if not ok.any():
        return {}
    return {"read_error_rel": float(np.sqrt(np.mean(((g[ok] - truth[ok]) / truth[ok]) ** 2)))}


def metric_columns(table: pd.DataFrame, varied: Iterable[str] = ()) -> list[str]:
    """The summary's numeric columns a sweep can plot (the varied parameters and bookkeeping excluded)."""
    ok = table[table["status"] == "complete"] if "status" in table else table
    skip = {"point", "wall_s", *varied}
    return [c for c in ok.columns if c not in skip and pd.api.types.is_numeric_dtype(ok[c])]


def run_serial(points: Iterable[SweepPoint], runner: Callable[[SweepPoint], dict[str, Any]] = run_point) -> pd.DataFrame:
    return pd.DataFrame([runner(p) for p in points]).sort_values("point").reset_index(drop=True)


def summary_figure(table: pd.DataFrame, varied: list[str], metric: str | None, path: str | Path) -> str | None:
    """Metric against each varied parameter; returns the metric plotted, or None."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "complete"] if "status" in table else table
    numeric = metric_columns(table, varied)
    if metric is not None and metric not in numeric:
        import difflib

        close = difflib.get_close_matches(metric, numeric, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"sweep metric {metric!r} is not a numeric column of the summary; {hint}"
                         f"the columns: {', '.join(numeric) or '(none: no point completed)'}")
    if metric is None:
        metric = next((c for c in numeric if c != "bench_time_s"), None)
    if metric is None or not varied:
        return None
    fig, axes = plt.subplots(1, len(varied), figsize=(4.2 * len(varied), 3.4), squeeze=False)
    for ax, name in zip(axes[0], varied):
        ax.plot(ok[name], ok[metric], "o")
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    failed = int((table.get("status") == "failed").sum()) if "status" in table else 0
    fig.suptitle(f"sweep: {metric} ({len(ok)} complete, {failed} failed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return metric

