"""Whole jobs, as the ``hopbench`` command and sweep workers run them: a bench file, a
protocol (looked up by name in :mod:`protocols`), the runner and the archive joined.
"""
from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lab.app.progress import BenchProgress
from lab.app.sample import SampleError, is_run_archive, load_sample, sample_path, save_sample
from lab.archive import ArchiveWriter, Run
from lab.bench import Bench, bench_info, twin_spec
from lab.config import DEFAULT_BENCH, BenchConfig, load_bench, loads_bench, parse_bench
from lab.runner import Runner, dry_check
from protocols.base import load_protocol
from sim_backend.server import SimServer
from sim_backend.twin import build_twin

log = logging.getLogger("hopbench.jobs")


@dataclass
class RunSummary:
    protocol: str
    status: str
    operations: int
    bench_time_s: float
    wall_time_s: float
    archive: str | None
    error: str | None = None
    results: dict[str, Any] = field(default_factory=dict)  # last value of every scalar Record field
    estimate: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # what the protocol said while it ran

    def as_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol, "status": self.status, "operations": self.operations,
            "bench_time_s": self.bench_time_s, "wall_time_s": self.wall_time_s, "archive": self.archive,
            "error": self.error, "results": self.results, "estimate": self.estimate, "notes": self.notes,
        }


def _config(bench: str | Path | BenchConfig | None, *, preset_overrides: Mapping[str, Any] | None = None,
            sim_seed: int | None = None) -> BenchConfig:
    cfg = bench if isinstance(bench, BenchConfig) else load_bench(bench or DEFAULT_BENCH)
    update: dict[str, Any] = {}
    if preset_overrides:
        update["preset_overrides"] = {**cfg.simulation.preset_overrides, **preset_overrides}
    if sim_seed is not None:
        update["seed"] = int(sim_seed)
    if update:
        # Re-validate through the same parser, so a bad override names its field.
        data = cfg.model_dump(mode="json")
        data["simulation"] = {**data["simulation"], **update}
        cfg = parse_bench(data, source=cfg.source, text=cfg.text)
    return cfg


def _protocol(name_or_file: str | Any, overrides: Mapping[str, Any] | None):
    if not isinstance(name_or_file, str):
        return name_or_file
    return load_protocol(name_or_file, overrides)


def _scalars(records: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Last value of each numeric scalar field of each Record stream, as ``stream.field``."""
    out: dict[str, Any] = {}
    for stream, values in records:
        for key, value in values.items():
            if isinstance(value, np.ndarray) and value.ndim == 0:
                value = value.item()
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                out[f"{stream}.{key}"] = float(value)
    return out


def run_protocol(
    protocol: str | Any,
    *,
    bench: str | Path | BenchConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = "hopbench-runs",
    archive: str | Path | None = None,
    dry_run: bool = False,
    resume: str | Path | None = None,
    progress: bool = True,
    preset_overrides: Mapping[str, Any] | None = None,
    sim_seed: int | None = None,
    server: Any = None,
    sample: str | Path | None = None,
) -> RunSummary:
    """Run one protocol with an archive; ``dry_run`` uses the bench's simulated twin.

    ``sample``: a simulated sample (see :mod:`lab.app.sample`) the dry run starts from and,
    unless it is a run archive, leaves its final state in.
    """
    state = None
    start_index = 0
    sample_file, sample_state = _sample(sample, out_dir, dry_run or server is not None, resume)
    if sample_state is not None:
        sim_seed = int(sample_state["seed"])  # the seed fixes the sample's device spread
    if resume is not None:
        writer = ArchiveWriter.resume(resume)
        point = writer.resume_point
        assert point is not None
        try:
            with Run(resume) as run:
                bench_text = run.info["bench_text"]
                bench_source = run.info["bench_parsed"].get("name", str(resume))
        except Exception:
            writer.close()
            raise
        cfg = loads_bench(bench_text, source=f"{bench_source} (from {resume})")
        proto = _protocol(point.protocol_name, {**point.protocol_params, **(overrides or {})})
        state, start_index, sample_state = point.state, point.next_index, point.sample_state
    else:
        cfg = _config(bench, preset_overrides=preset_overrides, sim_seed=sim_seed)
        if sample_state is not None and sample_state["preset"] != cfg.simulation.preset:
            raise SampleError(f"--sample {sample}: made with preset {sample_state['preset']!r}, "
                              f"the bench simulates {cfg.simulation.preset!r}")
        proto = _protocol(protocol, overrides)
        if archive is not None:
            target = Path(archive)
        else:  # a folder: the writer names the file after the date, protocol and run id
            target = Path(out_dir or ".")
            target.mkdir(parents=True, exist_ok=True)
        writer = ArchiveWriter(target)
    try:
        with Bench.open(cfg, simulate=True if (dry_run or server is not None) else None, server=server) as b:
            runner = Runner(b, observers=[writer], progress=BenchProgress(description=proto.name) if progress else None)
            try:
                result = runner.run(proto, resume=state, start_index=start_index, sample_state=sample_state)
            except Exception:
                result = runner.last_result
                if result is None:
                    raise
            finally:
                # the sample is in whatever state the run left it, complete or not
                if sample_file is not None and not (sample_file.exists() and is_run_archive(sample_file)):
                    save_sample(sample_file, b.twin.bench.sample_state(), run_archive=str(writer.path),
                                bench=cfg.name)
    finally:
        writer.close()
    return RunSummary(
        protocol=proto.name, status=result.status, operations=result.n_operations,
        bench_time_s=result.bench_time_s, wall_time_s=result.wall_time_s, archive=str(writer.path),
        error=result.error, results=_scalars(result.records),
        estimate=result.estimate.as_dict() if result.estimate is not None else None, notes=result.notes,
    )


def _sample(sample: str | Path | None, out_dir: str | Path | None, simulated: bool,
            resume: str | Path | None) -> tuple[Path | None, dict[str, Any] | None]:
    """The sample file a dry run starts from and leaves its state in, and its state if it exists."""
    if sample is None:
        return None, None
    if not simulated:
        raise ValueError("--sample: a simulated sample exists only in a dry run (add --dry-run)")
    if resume is not None:
        raise ValueError("--sample with --resume: a resumed run continues the sample its checkpoint stored")
    path = sample_path(sample, out_dir or ".")
    return path, (load_sample(path) if path.exists() else None)


def baseline_from(archive: str | Path) -> tuple[float, ...]:
    """The per-device conductances a training archive read before training (epoch 0)."""
    with Run(archive) as run:
        if not run.counts["reads"]:
            raise ValueError(f"--baseline-from {archive}: the archive holds no conductance read")
        epochs = run.conductance.coords["epoch"].values
        if not (np.isfinite(epochs[0]) and epochs[0] == 0):
            raise ValueError(f"--baseline-from {archive}: its first read is not before training (epoch 0)")
        return tuple(float(v) for v in run.g.values[0])


def run_simulated(protocol: str, *, overrides: Mapping[str, Any] | None = None, bench: str | None = None,
                  preset_overrides: Mapping[str, Any] | None = None, sim_seed: int | None = None,
                  archive: str | Path, progress: bool = False) -> RunSummary:
    """One sweep point: a dry run into ``archive``."""
    return run_protocol(protocol, bench=bench, overrides=overrides, archive=archive, dry_run=True,
                        progress=progress, preset_overrides=preset_overrides, sim_seed=sim_seed)


def estimate_protocol(protocol: str | Any, *, bench: str | Path | None = None,
                      overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The runner's dry check: bench time, relays, charge, energy; nothing is opened."""
    cfg = _config(bench)
    proto = _protocol(protocol, overrides)
    report = dry_check(cfg, bench_info(cfg, cfg.simulated), proto)
    out = report.as_dict()
    out["operations_by_kind"] = out.pop("counts")
    return out


def check_bench(bench: str | Path, *, offline: bool = False) -> dict[str, Any]:
    """Validate a bench file; unless offline, open each instrument and ask its identity."""
    cfg = load_bench(bench or DEFAULT_BENCH)
    lay = cfg.layout
    report: dict[str, Any] = {
        "file": str(bench),
        "name": cfg.name,
        "simulated": cfg.simulated,
        "topology": f"{cfg.array.topology}({cfg.array.n})",
        "n_lines": cfg.array.n_lines,
        "n_devices": len(cfg.array.devices()),
        "buses": [
            {"name": name, "instrument": b.instrument, "channel": b.channel, "role": b.role,
             "row": cfg.wiring.rows.get(name, "")}
            for name, b in cfg.buses.items()
        ],
        "crosspoints": len(lay.crosspoint),
        "instruments": [{"name": i.name, "model": i.model, "resource": i.resource} for i in cfg.instruments],
    }
    if offline:
        return report
    # Opening a bench only identifies and configures the link: drivers never change
    # output state or relays on connect.
    with Bench.open(cfg) as b:
        for entry in report["instruments"]:
            drv = b.instruments.get(entry["name"])
            if drv is None:
                continue
            try:
                entry["identity"] = str(drv.id).strip()
            except Exception as exc:  # an identity that cannot be read is reported, not fatal
                entry["identity"] = f"({type(exc).__name__}: {exc})"
    return report


def start_sim_server(bench: str | Path | None, host: str = "127.0.0.1"):
    """Serve the simulated twin of a bench file; returns the started SimServer."""
    cfg = _config(bench)
    spec = twin_spec(cfg)
    spec["realtime"] = True  # remote clients sleep in wall time, as on a bench
    twin = build_twin(spec)
    serial = [i["name"] for i in spec["instruments"] if str(i["resource"]).upper().startswith("ASRL")]
    server = SimServer(twin.instruments, host=host, serial_names=serial)
    server.start()
    return server
