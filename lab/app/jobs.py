"""Whole jobs, as the ``hopbench`` command and sweep workers run them: a bench file, a
protocol (looked up by name in :mod:`protocols`), the runner and the archive joined.
"""
from __future__ import annotations

import json
import logging
import numbers
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from lab.app.outdir import check_out_dir, check_out_file
from lab.app.progress import BenchProgress
from lab.app.sample import SampleError, is_run_archive, load_sample, sample_path, save_sample
from lab.archive import ArchiveError, ArchiveWriter, Run
from lab.archive.jsonio import archived_json
from lab.archive.writer import peek_resume_point
from lab.bench import Bench, bench_info, twin_spec
from lab.config import DEFAULT_BENCH, BenchConfig, load_bench, loads_bench, parse_bench
from lab.observer import RunObserver
from lab.preflight import check_parameters, dry_check
from lab.runner import Runner
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
    safety: str | None = None  # what cleanup confirmed, instrument by instrument (one line)
    safe: bool | None = None  # every instrument confirmed safe by read-back
    interrupted_by: str | None = None  # "SIGINT" / "SIGTERM"
    resume_command: str | None = None  # the exact command that continues an unfinished run
    previous_owners: list[dict[str, Any]] = field(default_factory=list)  # runs that died holding the bench

    def as_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol, "status": self.status, "operations": self.operations,
            "bench_time_s": self.bench_time_s, "wall_time_s": self.wall_time_s, "archive": self.archive,
            "error": self.error, "results": self.results, "estimate": self.estimate, "notes": self.notes,
            "safety": self.safety, "safe": self.safe, "interrupted_by": self.interrupted_by,
            "resume_command": self.resume_command, "previous_owners": self.previous_owners,
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
    observers: Sequence[RunObserver] = (),
) -> RunSummary:
    """Run one protocol with an archive; ``dry_run`` uses the bench's simulated twin.

    ``observers``: more run observers beside the archive (e.g. :mod:`lab.app.documents`).

    ``sample``: a simulated sample (see :mod:`lab.app.sample`) the dry run starts from and,
    unless it is a run archive, leaves its final state in.
    """
    state = None
    start_index = 0
    if archive is not None:
        check_out_file(archive)
    elif out_dir is not None:
        check_out_dir(out_dir)
    sample_file, sample_state = _sample(sample, out_dir, dry_run or server is not None, resume)
    if sample_state is not None:
        sim_seed = int(sample_state["seed"])  # the seed fixes the sample's device spread
    simulate = dry_run or server is not None
    if resume is not None:
        resumed = _resume_setup(resume, protocol, bench, overrides, dry_run, server)
        writer, cfg, proto, simulate = resumed.writer, resumed.config, resumed.protocol, resumed.simulate
        state, start_index, sample_state = resumed.state, resumed.start_index, resumed.sample_state
    else:
        cfg = _config(bench, preset_overrides=preset_overrides, sim_seed=sim_seed)
        if sample_state is not None and sample_state["preset"] != cfg.simulation.preset:
            raise SampleError(f"--sample {sample}: made with preset {sample_state['preset']!r}, "
                              f"the bench simulates {cfg.simulation.preset!r}")
        proto = _protocol(protocol, overrides)
        # every parameter and every operation checked before an archive or instrument is opened
        estimate = _preflight(cfg, proto, simulate, state, BenchProgress(description=proto.name) if progress else None)
        if archive is not None:
            target = Path(archive)
        else:  # a folder: the writer names the file after the date, protocol and run id
            target = Path(out_dir or ".")
            target.mkdir(parents=True, exist_ok=True)
        writer = ArchiveWriter(target)
    try:
        if resume is not None:
            estimate = _preflight(cfg, proto, simulate, state, BenchProgress(description=proto.name) if progress else None)
        with Bench.open(cfg, simulate=True if simulate else None, server=server, lock=True) as b:
            runner = Runner(b, observers=[writer, *observers], progress=BenchProgress(description=proto.name) if progress else None)
            try:
                result = runner.run(proto, resume=state, start_index=start_index, sample_state=sample_state,
                                    estimate=estimate)
            except (Exception, KeyboardInterrupt):  # Ctrl-C too: its summary is what the user must see
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
    summary = RunSummary(
        protocol=proto.name, status=result.status, operations=result.n_operations,
        bench_time_s=result.bench_time_s, wall_time_s=result.wall_time_s, archive=str(writer.path),
        error=result.error, results=_scalars(result.records),
        estimate=result.estimate.as_dict() if result.estimate is not None else None, notes=result.notes,
        safety=result.safety.summary() if result.safety is not None else None,
        safe=result.safety.safe if result.safety is not None else None,
        interrupted_by=result.interrupted_by, previous_owners=list(result.previous_owners),
    )
    if result.status != "complete" and writer.path is not None and Path(writer.path).is_file():
        summary.resume_command = f"hopbench run {shlex.quote(proto.name)} --resume {shlex.quote(str(writer.path))}"
    if result.interrupted_by is not None:
        raise RunInterrupted(summary)
    return summary


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM ended a run; raised after cleanup, carrying the run's summary."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__(summary.interrupted_by)
        self.summary = summary


@dataclass
class _Resumed:
    writer: Any
    config: BenchConfig
    protocol: Any
    simulate: bool
    state: dict[str, Any] | None
    start_index: int
    sample_state: dict[str, Any] | None


def _resume_setup(path: str | Path, protocol: str | Any, bench: str | Path | BenchConfig | None,
                  overrides: Mapping[str, Any] | None, dry_run: bool, server: Any) -> _Resumed:
    """Everything a resume needs, read and checked without changing a byte of the archive.

    The run keeps its nature: a dry run continues on the twin (with the sample its checkpoint
    stored), a bench run on the bench; ``--dry-run`` on a bench run's archive is refused, as
    are another protocol, other parameters or another bench file. The archive is opened for
    appending only once the resumed run has done its first operation (:class:`_AppendOnFirst`),
    so a resume that fails before that leaves the file as it was.
    """
    point = peek_resume_point(path)
    if point.status == "complete":
        raise ArchiveError(f"{path}: the run is complete; nothing to resume")
    with Run(path, locking=False) as run:
        info = run.info
        bench_text = info["bench_text"]
        bench_source = info["bench_parsed"].get("name", str(path))
        was_simulated = bool(info["simulated"])
    given = protocol if isinstance(protocol, str) else getattr(protocol, "name", None)
    if isinstance(given, str) and given.endswith(".toml"):
        given = load_protocol(given).name
    if given is not None and given != point.protocol_name:
        raise ValueError(f"--resume {path}: the archive holds a {point.protocol_name!r} run, not {given!r}; "
                         f"resume it with: hopbench run {point.protocol_name} --resume {path}")
    if was_simulated is False and (dry_run or server is not None):
        raise ValueError(f"--resume {path}: the run was made on the bench; continuing it on the simulator "
                         "would mix simulated data into a real archive (drop --dry-run)")
    cfg = loads_bench(bench_text, source=f"{bench_source} (from {path})")
    if bench is not None:
        other = _config(bench)
        if other.text != cfg.text and other.model_dump(mode="json") != cfg.model_dump(mode="json"):
            fields = sorted(k for k, v in other.model_dump(mode="json").items() if cfg.model_dump(mode="json").get(k) != v)
            raise ValueError(f"--resume {path}: --bench {bench} differs from the bench the run started on "
                             f"(in {', '.join(fields) or 'its text'}); leave --bench out, the archive keeps its bench")
    proto = _protocol(point.protocol_name, {**point.protocol_params, **(overrides or {})})
    params = json.loads(archived_json(proto.parameters())) if hasattr(proto, "parameters") else point.protocol_params
    if params != point.protocol_params:
        changed = sorted(k for k in set(params) | set(point.protocol_params)
                         if params.get(k) != point.protocol_params.get(k))
        raise ValueError(f"--resume {path}: --set would change {', '.join(changed)} of the run; a resumed run "
                         "keeps its parameters")
    held = ArchiveWriter.hold(path)  # no other writer from here on; the file itself is not touched
    return _Resumed(writer=_AppendOnFirst(Path(path), held), config=cfg, protocol=proto,
                    simulate=was_simulated or dry_run or server is not None, state=point.state,
                    start_index=point.next_index, sample_state=point.sample_state)


class _AppendOnFirst:
    """The archive of a resumed run, opened for appending at the run's first operation.

    Until then nothing is written (what the runner reports before, the bench state it
    confirmed at the start, is kept and written then), so a resume that fails before its first
    operation (a bench that cannot be made safe, an instrument that does not answer) leaves
    the archive byte for byte as it was.
    """

    def __init__(self, path: Path, held: Any) -> None:
        self.path = path
        self._held = held
        self.writer: ArchiveWriter | None = None
        self._info: Any = None
        self._early: list[tuple[str, dict[str, Any]]] = []

    def _open(self) -> ArchiveWriter:
        if self.writer is None:
            held, self._held = self._held, None
            self.writer = ArchiveWriter.resume(self.path, held=held)
            self.writer.start(self._info)
            for phase, state in self._early:
                self.writer.bench_state(phase, state)
        return self.writer

    def start(self, info: Any) -> None:
        self._info = info

    def operation(self, record: Any) -> None:
        self._open().operation(record)

    def checkpoint(self, index: int, state: Mapping[str, Any]) -> None:
        self._open().checkpoint(index, state)

    def bench_state(self, phase: str, state: Mapping[str, Any]) -> None:
        if self.writer is None:
            self._early.append((phase, dict(state)))
        else:
            self.writer.bench_state(phase, state)

    def finish(self, status: str, error: str | None = None) -> None:
        if self.writer is not None:
            self.writer.finish(status, error)  # type: ignore[arg-type]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._held is not None:
            self._held.release()
            self._held = None


def _preflight(cfg: BenchConfig, proto: Any, simulate: bool, resume: Mapping[str, Any] | None,
               progress: Any = None) -> Any:
    """The runner's checks, on paper, before any instrument is opened: opening one already
    talks to it (identity, configuration), so a rejected parameter must fail here."""
    info = bench_info(cfg, simulate or cfg.simulated)
    if getattr(proto, "adaptive", False):
        check_parameters(info, proto)
        return None
    return dry_check(cfg, info, proto, resume=resume, progress=progress)


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
    with Bench.open(cfg, lock=True) as b:  # opening talks to instruments: not to a bench in use
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
