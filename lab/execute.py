"""Whole jobs, as the ``hopbench`` command and sweep workers run them.

This is the application layer beside :mod:`lab.cli`: it joins a bench file, a protocol
(looked up by name in :mod:`protocols`), the runner and the archive. The core modules
(config, bench, crossbar, runner, archive) never import protocols; only this layer does.
"""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lab.config import DEFAULT_BENCH, BenchConfig, load_bench, loads_bench

log = logging.getLogger("hopbench.execute")


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol, "status": self.status, "operations": self.operations,
            "bench_time_s": self.bench_time_s, "wall_time_s": self.wall_time_s, "archive": self.archive,
            "error": self.error, "results": self.results, "estimate": self.estimate,
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
        from lab.config import parse_bench

        cfg = parse_bench(data, source=cfg.source, text=cfg.text)
    return cfg


def _protocol(name_or_file: str | Any, overrides: Mapping[str, Any] | None):
    from protocols.base import load_protocol

    if not isinstance(name_or_file, str):
        return name_or_file
    return load_protocol(name_or_file, overrides)


def _scalars(records: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Last value of each numeric scalar field of each Record stream, as ``stream.field``."""
    import numbers

    import numpy as np

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
) -> RunSummary:
    """Run one protocol with an archive; ``dry_run`` uses the bench's simulated twin."""
    from lab.archive import ArchiveWriter
    from lab.bench import Bench
    from lab.runner import Runner

    state = None
    start_index = 0
    if resume is not None:
        writer = ArchiveWriter.resume(resume)
        point = writer.resume_point
        assert point is not None
        from lab.archive_reader import Run

        try:
            with Run(resume) as run:
                bench_text = run.info["bench_text"]
                bench_source = run.info["bench_parsed"].get("name", str(resume))
        except Exception:
            writer.close()
            raise
        cfg = loads_bench(bench_text, source=f"{bench_source} (from {resume})")
        proto = _protocol(point.protocol_name, {**point.protocol_params, **(overrides or {})})
        state, start_index = point.state, point.next_index
    else:
        cfg = _config(bench, preset_overrides=preset_overrides, sim_seed=sim_seed)
        proto = _protocol(protocol, overrides)
        if archive is not None:
            target = Path(archive)
        else:  # a folder: the writer names the file after the date, protocol and run id
            target = Path(out_dir or ".")
            target.mkdir(parents=True, exist_ok=True)
        writer = ArchiveWriter(target)
    try:
        with Bench.open(cfg, simulate=True if (dry_run or server is not None) else None, server=server) as b:
            runner = Runner(b, observers=[writer], progress=progress)
            try:
                result = runner.run(proto, resume=state, start_index=start_index)
            except Exception:
                result = runner.last_result
                if result is None:
                    raise
    finally:
        writer.close()
    return RunSummary(
        protocol=proto.name, status=result.status, operations=result.n_operations,
        bench_time_s=result.bench_time_s, wall_time_s=result.wall_time_s, archive=str(writer.path),
        error=result.error, results=_scalars(result.records),
        estimate=result.estimate.as_dict() if result.estimate is not None else None,
    )


def run_simulated(protocol: str, *, overrides: Mapping[str, Any] | None = None, bench: str | None = None,
                  preset_overrides: Mapping[str, Any] | None = None, sim_seed: int | None = None,
                  archive: str | Path, progress: bool = False) -> RunSummary:
    """One sweep point: a dry run into ``archive``."""
    return run_protocol(protocol, bench=bench, overrides=overrides, archive=archive, dry_run=True,
                        progress=progress, preset_overrides=preset_overrides, sim_seed=sim_seed)


def estimate_protocol(protocol: str | Any, *, bench: str | Path | None = None,
                      overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The runner's dry check: bench time, relays, charge, energy; nothing is opened."""
    from lab.bench import bench_info
    from lab.runner import dry_check

    cfg = _config(bench)
    proto = _protocol(protocol, overrides)
    report = dry_check(cfg, bench_info(cfg, cfg.simulated), proto)
    out = report.as_dict()
    out["operations_by_kind"] = out.pop("counts")
    return out


def check_bench(bench: str | Path, *, offline: bool = False) -> dict[str, Any]:
    """Validate a bench file; unless offline, open each instrument and ask its identity."""
    cfg = load_bench(bench)
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
    from lab.bench import Bench

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
    from lab.bench import twin_spec
    from sim_backend.server import SimServer
    from sim_backend.twin import build_twin

    cfg = _config(bench)
    spec = twin_spec(cfg)
    spec["realtime"] = True  # remote clients sleep in wall time, as on a bench
    twin = build_twin(spec)
    serial = [i["name"] for i in spec["instruments"] if str(i["resource"]).upper().startswith("ASRL")]
    server = SimServer(twin.instruments, host=host, serial_names=serial)
    server.start()
    return server


def report_run(run_file: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Figures and a text summary of a run; the software Oja reference comes from its patterns."""
    from lab.archive_reader import Run
    from lab.figures import report

    run_file = Path(run_file)
    if not run_file.exists():
        raise FileNotFoundError(f"{run_file}: no such run archive")
    out = Path(out_dir) if out_dir is not None else run_file.with_suffix("")
    with Run(run_file) as run:
        patterns, reference = _reference_for(run)
        rep = report(run, out, reference=reference, patterns=patterns)
    return {"summary": rep.text, "figures": [str(p) for p in rep.figures.values()], "out_dir": str(out),
            "values": rep.summary}


def _reference_for(run: Any) -> tuple[Any, Any]:
    """Stored patterns of a run and the software clamped-Oja weights they converge to."""
    params = run.protocol_params.get("patterns")
    if not isinstance(params, Mapping):
        return None, None
    from protocols import hopfield_reference as ref
    from protocols.common import PatternChoice

    try:
        _, patterns = PatternChoice.model_validate(params).load()
    except Exception:  # a run whose patterns cannot be rebuilt still gets its other figures
        return None, None
    return patterns, ref.clamped_oja(patterns, epochs=OJA_CONVERGED_EPOCHS)


# Epochs after which software clamped Oja has reached its fixed point (the pattern
# correlation matrix) at its default rate: the end point physical training should approach.
OJA_CONVERGED_EPOCHS = 200

DEMO_PATTERNS = ("L", "T", "X", "O")


def run_demo(out_dir: str | Path, *, epochs: int = 6, progress: bool = True,
             cues_per_pattern: int = 20, materio_cues_per_pattern: int = 5) -> dict[str, Any]:
    """The paper's experiment, dry-run on the default simulated 35-contact film.

    Clamped training of four glyphs with a matrix read after every epoch (archived), recall
    scored per epoch in software from each measured matrix, then recall of noisy cues in
    materio on the trained film (archived), figures for both runs and a summary.
    """
    import numpy as np
    import pandas as pd

    from lab.archive import ArchiveWriter
    from lab.bench import Bench
    from lab.figures import accuracy_per_epoch, save
    from lab.runner import Runner
    from protocols import hopfield_reference as ref
    from protocols.common import CueChoice, PatternChoice, weights_from_conductances
    from protocols.recall import Recall
    from protocols.train import PulseShape, TrainHopfield

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    choice = PatternChoice(names=DEMO_PATTERNS)
    _, x = choice.load()
    train = TrainHopfield(patterns=choice, epochs=epochs, v_train=1.0, pulse=PulseShape(width_s=1e-3, count=10),
                          read_first=True, read_every=1)
    train_file, recall_file = out / "demo-train.h5", out / "demo-recall.h5"
    for f in (train_file, recall_file):
        f.unlink(missing_ok=True)
    with Bench.open(DEFAULT_BENCH, simulate=True) as bench:
        runner = Runner(bench, [ArchiveWriter(train_file)], progress=progress)
        trained = runner.run(train).returned
        baseline = np.asarray(trained["g"][0])
        cues, targets = ref.make_cues(x, cues_per_pattern, 0.1, 1)
        rows = []
        for epoch, g in zip(trained["epochs"], trained["g"]):
            w = weights_from_conductances(bench.info, np.asarray(g), baseline, "mean")
            sc = ref.evaluate(w, x, cues, targets, mode="async", max_steps=30)
            rows.append({"epoch": int(epoch), "bit_accuracy": sc.bit_accuracy, "exact_recall": sc.exact,
                         "correct_retrieval": sc.correct})
        runner.observers = [ArchiveWriter(recall_file)]
        recall = Recall(patterns=choice, cues=CueChoice(per_pattern=materio_cues_per_pattern, seed=2),
                        compute="materio", baseline=tuple(float(v) for v in baseline))
        recalled = runner.run(recall).returned
    table = pd.DataFrame(rows)
    table.to_csv(out / "accuracy.csv", index=False)
    fig_dir = out / "figures"
    save(accuracy_per_epoch(table), fig_dir / "accuracy_per_epoch.png")
    figures = [str(fig_dir / "accuracy_per_epoch.png")]
    for archive in (train_file, recall_file):
        figures += report_run(archive, fig_dir / archive.stem)["figures"]
    final = {"bit_accuracy": float(recalled["bit_accuracy"]), "exact_recall": float(recalled["exact"]),
             "correct_retrieval": float(recalled["correct"]), "cues": int(recalled["n_cues"])}
    return {"patterns": "".join(DEMO_PATTERNS), "epochs": rows, "final_recall": final,
            "archive": str(train_file), "recall_archive": str(recall_file), "figures_dir": str(fig_dir),
            "figures": figures}


def hostname() -> str:
    return socket.gethostname()
