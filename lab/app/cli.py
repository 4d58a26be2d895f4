"""The ``hopbench`` command."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lab.app.cli_errors import err, guarded
from lab.app.demo import run_demo
from lab.app.outdir import check_out_dir
from lab.app.jobs import baseline_from as baseline_from_archive
from lab.app.jobs import RunInterrupted, check_bench, estimate_protocol, run_protocol, start_sim_server
from lab.app.report import report_run
from lab.app.sweep import expand, load_sweep, run_sweep, summary_figure
from lab.archive import list_runs as list_archives
from protocols.base import get_protocol, registry
from protocols.parameters import parameter_lines, parse_sets, protocol_summary
from protocols.parameters import parameters as protocol_parameters

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Instrument control, simulation and archiving for self-learning magnetic Hopfield networks.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
# On a terminal, lines wrap at its width; piped or captured, nothing wraps (a script reads
# every path and run name whole; rich would otherwise break them at 80 columns).
out = Console() if sys.stdout.isatty() else Console(width=100_000)

DEFAULT_OUT = Path("hopbench-runs")
BenchOption = Annotated[Optional[Path], typer.Option(
    "--bench", "-b", help="Bench file (default: the simulated 35-node film).")]
SetsOption = Annotated[Optional[list[str]], typer.Option(
    "--set", "-s", help="Protocol parameter, name=value; table.field=value changes one field of a table "
    "(repeatable; 'hopbench protocols NAME' lists them).")]


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _print_parameters(name: str) -> None:
    for line in parameter_lines(get_protocol(name), name):
        out.print(line, highlight=False, markup=False, soft_wrap=True)


class ProtocolHelpCommand(typer.core.TyperCommand):
    """``hopbench run NAME --help``: the command's help, then NAME's parameters."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["hopbench_raw_args"] = list(args)  # --help is handled before the arguments are bound
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super().format_help(ctx, formatter)
        name = self._protocol_named(ctx.meta.get("hopbench_raw_args", []))
        if name is not None:
            _print_parameters(name)

    def _protocol_named(self, args: list[str]) -> str | None:
        takes_value = {opt for p in self.params if p.param_type_name == "option" and not getattr(p, "is_flag", False)
                       for opt in p.opts}
        skip = False
        for arg in args:
            if skip:
                skip = False
            elif arg.startswith("-"):
                skip = arg in takes_value
            else:
                return arg if arg in registry() else None
        return None


@app.command()
@guarded
def demo(
    out_dir: Path = typer.Option(DEFAULT_OUT / "demo", "--out", help="Folder for the archive and figures."),
    epochs: int = typer.Option(10, min=1, help="Training epochs."),
    materio_cues: int = typer.Option(5, "--materio-cues", min=1,
                                     help="Noisy cues per pattern recalled through the film (each costs multiplies)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """The paper's experiment, dry-run on the simulated 35-node film: train, read, recall, archive, figures.

    Example: hopbench demo --out runs/demo
    """
    summary = run_demo(check_out_dir(out_dir), epochs=epochs, progress=not (quiet or as_json),
                       materio_cues_per_pattern=materio_cues,
                       notify=lambda message: err.print(message, highlight=False, soft_wrap=True))
    if as_json:
        _emit_json(summary)
        return
    n_cues = summary["epochs"][0]["cues"]
    table = Table(title=f"Self-learning Hopfield dry run (simulated 35-contact film), {n_cues} noisy cues "
                        f"of {summary['patterns']}")
    for col in ("recall from", "bit accuracy", "exact recall"):
        table.add_column(col, justify="right")
    for row in summary["epochs"]:
        table.add_row(f"film, epoch {row['epoch_label']}", f"{row['bit_accuracy']:.3f}", f"{row['exact_recall']:.3f}")
    for row in summary["software_rules"]:
        table.add_row(f"software {row['epoch_label']} rule", f"{row['bit_accuracy']:.3f}", f"{row['exact_recall']:.3f}")
    out.print(table)
    final, same = summary["final_recall"], summary["final_recall_software"]
    out.print(f"in materio (the film computes every field), {final['cues']} cues: exact {final['exact_recall']:.3f}, "
              f"bit accuracy {final['bit_accuracy']:.3f}; software recall from the last measured matrix on the "
              f"same cues: exact {same['exact_recall']:.3f}, bit accuracy {same['bit_accuracy']:.3f}")
    out.print("exact recall: fraction of cues that end on their pattern, every bit right; bit accuracy: "
              "fraction of bits right. Weights W = G − λ·G0 (λ = ΣG/ΣG0) from the reads.")
    for old, new in summary["replaced"]:
        out.print(f"the previous demo archive {old} is kept as {new}", highlight=False)
    out.print(f"archive: {summary['archive']}", highlight=False)
    out.print(f"figures: {summary['figures_dir']}", highlight=False)


@app.command("protocols")
@guarded
def list_protocols(
    name: Optional[str] = typer.Argument(None, help="A protocol: list its parameters."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """The protocols, one line each; with a NAME, its parameters: type, unit, default, allowed range, meaning.

    Example: hopbench protocols train_hopfield
    """
    if name is None:
        reg = registry()
        if as_json:
            _emit_json({n: protocol_summary(c) for n, c in sorted(reg.items())})
            return
        table = Table(title="protocols (hopbench protocols NAME lists one's parameters)", title_justify="left")
        table.add_column("name", no_wrap=True)
        table.add_column("what it does", overflow="fold")
        for n, c in sorted(reg.items()):
            table.add_row(n, protocol_summary(c))
        out.print(table)
        return
    cls = get_protocol(name)
    if as_json:
        _emit_json({"protocol": name, "summary": protocol_summary(cls),
                    "parameters": [vars(r) for r in protocol_parameters(cls)]})
        return
    _print_parameters(name)


@app.command(cls=ProtocolHelpCommand)
@guarded
def run(
    protocol: str = typer.Argument(..., help="Protocol name (see 'hopbench protocols') or a protocol TOML file."),
    bench: BenchOption = None,
    sets: SetsOption = None,
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Folder for the run archive."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Run on a simulated twin of the bench (same wiring and limits)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an unfinished run from its last checkpoint."),
    sample: Optional[str] = typer.Option(
        None, "--sample", help="Dry run: start from this simulated sample and leave it in its final state "
        "(a name in <out>/samples/, a sample .h5 file, or a run archive to start from its last checkpoint)."),
    baseline_from: Optional[Path] = typer.Option(
        None, "--baseline-from", help="Take the protocol's baseline (per-device G before training) from a "
        "training archive's epoch-0 read."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    monitor: bool = typer.Option(False, "--monitor", help="Serve the live monitor page while the run goes "
                                 "(see 'hopbench monitor'; prints its URL)."),
    monitor_port: Optional[int] = typer.Option(None, "--monitor-port", help="Port of the --monitor page "
                                               "(default 8765, or a free one if that is taken)."),
    documents: Optional[Path] = typer.Option(None, "--documents", help="Also write the run as Bluesky "
                                             "event-model documents, one JSON list (name, doc) per line, to this file."),
) -> None:
    """Run a protocol on a bench, or on its simulated twin with --dry-run.

    Train, then recall on the same simulated film:
    hopbench run train_hopfield --dry-run --sample film-A;
    hopbench run recall --dry-run --sample film-A --baseline-from hopbench-runs/<train>.h5

    Example: hopbench run read_conductances --bench data/benches/sim-film35.toml --set repeats=2 --dry-run
    """
    check_out_dir(out_dir)
    overrides = parse_sets(sets)
    if baseline_from is not None:
        overrides["baseline"] = baseline_from_archive(baseline_from)
    with _run_watchers(out_dir, resume, monitor, monitor_port, documents, quiet or as_json) as observers:
        try:
            summary = run_protocol(
                protocol,
                bench=bench,
                overrides=overrides,
                sample=sample,
                out_dir=out_dir,
                dry_run=dry_run,
                resume=resume,
                progress=not (quiet or as_json),
                observers=observers,
            )
        except RunInterrupted as stopped:  # SIGINT and SIGTERM: the same summary
            summary = stopped.summary
    data = summary.as_dict()
    if as_json:
        _emit_json(data)
    else:
        for note in data["notes"]:
            out.print(note, highlight=False)
        out.print(
            f"{data['protocol']}: {data['status']} — {data['operations']} operations, "
            f"bench time {data['bench_time_s']:.2f} s"
        )
        for key, value in data["results"].items():
            if key.endswith(("exact", "bit_accuracy", "correct", "_V", "_S")):
                out.print(f"  {key} = {value:.4g}", highlight=False)
        out.print(f"archive: {data['archive']}", highlight=False, soft_wrap=True)
        _print_run_end(data)
    if data["interrupted_by"]:
        raise typer.Exit(130 if data["interrupted_by"] == "SIGINT" else 143)
    if data["status"] != "complete":
        raise typer.Exit(1)


def _print_run_end(data: dict[str, Any]) -> None:
    """The resume command if unfinished, then, last, what cleanup confirmed about the bench."""
    for owner in data.get("previous_owners") or []:
        where = f", archive {owner['archive']}" if owner.get("archive") else ""
        out.print(f"the previous run on this bench (pid {owner.get('pid')} on {owner.get('host')}, started "
                  f"{owner.get('start_time')}{where}) died holding it: the bench was made safe before this run",
                  highlight=False, soft_wrap=True)
    if data["interrupted_by"]:
        out.print("interrupted by Ctrl-C (SIGINT)" if data["interrupted_by"] == "SIGINT"
                  else "terminated (SIGTERM)", highlight=False)
    if data.get("resume_command"):
        out.print(f"resume: {data['resume_command']}", highlight=False, soft_wrap=True)
    out.print(data.get("safety") or "bench state not read back", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _run_watchers(out_dir: Path, resume: Optional[Path], monitor: bool, port: Optional[int],
                  documents: Optional[Path], quiet: bool) -> Iterator[list[Any]]:
    """The live monitor (a child process that only reads the archive) and the document writer of a run."""
    observers: list[Any] = []
    child = None
    with contextlib.ExitStack() as stack:
        if documents is not None:
            from lab.app.documents import JsonLinesDocuments

            observers.append(stack.enter_context(JsonLinesDocuments(documents)))
        if monitor:
            from lab.app.monitor import spawn

            out_dir.mkdir(parents=True, exist_ok=True)
            child = spawn(resume if resume is not None else out_dir, port=port)
            err.print(f"monitor: {child.url}", highlight=False, soft_wrap=True)
        try:
            yield observers
        finally:
            if child is not None:
                child.stop()
                if not quiet:
                    err.print("monitor stopped (hopbench monitor <archive> shows the run again)", highlight=False)


@app.command()
@guarded
def check(
    bench: Path = typer.Argument(..., help="Bench file to validate."),
    offline: bool = typer.Option(False, "--offline", help="Validate the file only; open no instrument."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Validate a bench file and (unless --offline) open every instrument and print its identity.

    Nothing is sourced: outputs and relays keep their state.

    Example: hopbench check data/benches/sim-film35.toml --offline
    """
    report = check_bench(bench, offline=offline)
    if as_json:
        _emit_json(report)
        return
    out.print(f"[green]valid[/]: {report['file']} — {report['topology']}, {report['n_lines']} lines, "
              f"{report['n_devices']} devices, {len(report['buses'])} buses")
    table = Table(title="instruments")
    for col in ("name", "model", "resource", "identity"):
        table.add_column(col)
    for inst in report["instruments"]:
        table.add_row(inst["name"], inst["model"], inst["resource"], inst.get("identity") or "(not opened)")
    out.print(table)
    wiring = Table(title="buses")
    for col in ("bus", "instrument", "channel", "role", "matrix row"):
        wiring.add_column(col)
    for b in report["buses"]:
        wiring.add_row(b["name"], b["instrument"], str(b["channel"]), b["role"], str(b.get("row", "")))
    out.print(wiring)


@app.command()
@guarded
def estimate(
    protocol: str = typer.Argument(..., help="Protocol name or protocol TOML file."),
    bench: BenchOption = None,
    sets: SetsOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print the estimate as JSON."),
) -> None:
    """Bench time, relay operations, charge and energy of a protocol, without touching instruments.

    Example: hopbench estimate train_hopfield --set epochs=10
    """
    est = estimate_protocol(protocol, bench=bench, overrides=parse_sets(sets))
    if as_json:
        _emit_json(est)
        return
    table = Table(title=f"estimate: {protocol}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in est.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    out.print(table)


@app.command("sim-server")
@guarded
def sim_server(
    bench: Optional[Path] = typer.Option(None, "--bench", "-b", help="Bench file whose instruments to simulate."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback unless you say otherwise)."),
    duration: Optional[float] = typer.Option(None, "--for", help="Stop by itself after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print the resource strings as one JSON line."),
) -> None:
    """Serve the simulated instruments of a bench file over TCP (and a pseudo-terminal for RS-232).

    Prints each instrument's VISA resource string; stops on Ctrl-C.

    Example: hopbench sim-server --bench data/benches/sim-film35.toml
    """
    server = start_sim_server(bench, host=host)
    if as_json:
        lines = [json.dumps(server.resources)]
    else:  # plain tab-separated lines, so scripts can read the resource strings
        lines = [f"{name}\t{resource}" for name, resource in server.resources.items()]
        lines.append("serving; Ctrl-C stops")
    _serve_until_stopped(server, lines, duration)


@app.command()
@guarded
def report(
    run_file: Path = typer.Argument(..., help="A run archive (.h5)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for figures (default: next to the archive)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Figures (PNG) and a short text summary of a run.

    Example: hopbench report hopbench-runs/demo/demo-train.h5 (what hopbench demo writes)
    """
    result = report_run(run_file, check_out_dir(out_dir) if out_dir is not None else None)
    if as_json:
        _emit_json(result)
        return
    out.print(result["summary"], highlight=False)
    for fig in result["figures"]:
        out.print(f"figure: {fig}", highlight=False)


@app.command("ls")
@guarded
def list_runs(
    folder: Path = typer.Argument(DEFAULT_OUT, help="Folder holding run archives."),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the runs in a folder, oldest first: full file name, status, protocol, start time, size.

    The status is what the archive says, checked against its writer: a run whose writer died
    (SIGKILL, power cut) shows as interrupted, not running.

    Example: hopbench ls hopbench-runs
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    rows = _runs_by_time(list_archives(folder))
    if as_json:
        _emit_json(rows)
        return
    # the folder on a line of its own: a table's title wraps at the table's width
    out.print(f"{folder}: {len(rows)} runs", highlight=False, markup=False, soft_wrap=True)
    table = Table()
    longest = max((len(Path(str(r["path"])).name) for r in rows), default=3)
    for col in ("run", "status", "protocol", "started", "size", "operations"):
        # on a narrow terminal every cell folds onto more lines; nothing is cut short, and the
        # run's name keeps most of the width
        table.add_column(col, justify="right" if col in ("size", "operations") else "left", overflow="fold",
                         min_width=min(longest, max(out.width - 50, 12)) if col == "run" else None)
    for row in rows:
        size = _cell(row.get("size_bytes")) or 0
        table.add_row(
            Path(str(row["path"])).name, _cell(row.get("status")) or "", _cell(row.get("protocol")) or "",
            str(_cell(row.get("start_time")) or "")[:19].replace("T", " "), f"{float(size) / 1e6:.2f} MB",
            str(_cell(row.get("operations")) or ""),
        )
    out.print(table)
    for row in rows:
        for key in ("error", "note"):
            if _cell(row.get(key)):
                out.print(f"{Path(str(row['path'])).name}: {row[key]}", highlight=False, markup=False)


@app.command()
@guarded
def repair(
    run_file: Path = typer.Argument(..., help="A run archive (.h5) whose writer died."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Let HDFView, MATLAB and plain h5py open a run whose writer died (what `h5clear -s` does).

    Only the file's status flags are rewritten; every measured row stays. Refused while a
    writer (a run or a resume) holds the file, and for a truncated file.

    Example: hopbench repair hopbench-runs/20261201T071500_train_hopfield_….h5
    """
    from lab.archive.repair import repair as repair_archive

    result = repair_archive(run_file)
    if as_json:
        _emit_json(result)
        return
    if result["repaired"]:
        out.print(f"{run_file}: status flags cleared; every HDF5 tool opens it now "
                  f"({result['committed']['operations']} committed operations kept)", highlight=False, soft_wrap=True)
    else:
        out.print(f"{run_file}: nothing to repair ({result['reason']})", highlight=False, soft_wrap=True)


def _cell(value: Any) -> Any:
    """None for the holes pandas fills with NaN."""
    return None if value is None or (isinstance(value, float) and value != value) else value


def _runs_by_time(runs: Any) -> list[dict[str, Any]]:
    """The reader's rows, sorted by start time (a file without one by its modification time)."""
    import pandas as pd

    rows = runs.to_dict(orient="records") if hasattr(runs, "to_dict") else list(runs)

    def when(row: dict[str, Any]) -> pd.Timestamp:
        t = pd.to_datetime(_cell(row.get("start_time")), utc=True, errors="coerce")
        if pd.isna(t):
            try:
                t = pd.Timestamp(Path(str(row["path"])).stat().st_mtime, unit="s", tz="UTC")
            except OSError:
                t = pd.Timestamp.max.tz_localize("UTC")
        return t

    return sorted(rows, key=lambda r: (when(r), str(r.get("path"))))


@app.command()
@guarded
def sweep(
    sweep_file: Path = typer.Argument(..., help="Sweep TOML file."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler (default: a LocalCluster)."),
    workers: int = typer.Option(2, "--workers", "-w", help="Workers of the LocalCluster."),
    out_dir: Path = typer.Option(DEFAULT_OUT / "sweep", "--out", help="Folder for the point archives and the summary."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary table as JSON."),
) -> None:
    """A grid or random sweep of protocol and device-preset parameters, each point a simulated run, on Dask.

    Example: hopbench sweep data/sweeps/read-noise.toml --workers 2
    """
    spec = load_sweep(sweep_file)
    check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    points = expand(spec, out_dir)
    failed = 0
    if quiet or as_json:
        table = run_sweep(points, scheduler=scheduler, workers=workers)
    else:
        with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
                      TimeElapsedColumn(), console=err) as bar:
            task = bar.add_task("sweep", total=len(points), failed=0)

            def tick(done: int, total: int, row: dict[str, Any]) -> None:
                nonlocal failed
                failed += row.get("status") == "failed"
                bar.update(task, completed=done, failed=failed)

            table = run_sweep(points, scheduler=scheduler, workers=workers, progress=tick)
    csv = out_dir / "summary.csv"
    table.drop(columns=["traceback"], errors="ignore").to_csv(csv, index=False)
    varied = sorted({k for p in points for k in p.varied})
    fig_path = out_dir / "summary.png"
    try:
        metric = summary_figure(table, varied, spec.metric, fig_path)
    except ValueError as exc:  # an unknown metric: the points ran and are kept
        raise ValueError(f"{sweep_file}: {exc} (every point's results are in {csv})") from None
    n_failed = int((table["status"] == "failed").sum())
    if as_json:
        _emit_json({"summary_csv": str(csv), "figure": str(fig_path) if metric else None,
                    "points": table.drop(columns=["traceback"], errors="ignore").to_dict(orient="records")})
        return
    shown = Table(title=f"sweep {sweep_file.name}: {len(table)} points, {n_failed} failed")
    cols = ["point", *varied, "status"] + ([metric] if metric else [])
    for col in cols:
        shown.add_column(col)
    for _, row in table.iterrows():
        shown.add_row(*(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in cols))
    out.print(shown)
    for _, row in table[table["status"] == "failed"].iterrows():
        out.print(f"point {row['point']} failed: {row['error']}", highlight=False)
    out.print(f"summary: {csv}")
    if metric:
        out.print(f"figure: {fig_path}")


@app.command()
@guarded
def monitor(
    target: Path = typer.Argument(DEFAULT_OUT, help="A run archive (.h5) or a folder of them."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback unless you say otherwise)."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Port (default 8765, or a free one if taken)."),
    duration: Optional[float] = typer.Option(None, "--for", help="Stop by itself after this many seconds."),
    exit_with: Optional[int] = typer.Option(None, "--exit-with", hidden=True, help="Stop when this process ends."),
) -> None:
    """Serve a live page of a run: status, progress and wall-clock ETA, current operation, learned change,
    recall accuracy, instrument state, log; it follows the archive as it is written (read-only, no lock).

    Stops on Ctrl-C. Example: hopbench monitor hopbench-runs/
    """
    from lab.app.monitor import URL_PREFIX, serve

    server = serve(target, host=host, port=port)
    _serve_until_stopped(server, [f"{URL_PREFIX}{server.url}", f"serving {target}; Ctrl-C stops"], duration,
                         exit_with=exit_with)


def _serve_until_stopped(server: Any, lines: list[str], duration: float | None, *,
                         exit_with: int | None = None) -> None:
    """Print the server's lines, then serve until Ctrl-C, SIGTERM, ``duration`` seconds, or the
    end of process ``exit_with`` (the run that started it); the server stops on every path."""
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
        t_end = time.monotonic() + duration if duration else None
        while not stop["now"] and (t_end is None or time.monotonic() < t_end):
            if exit_with is not None and os.getppid() != exit_with:
                break  # the run that started this monitor is gone
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@app.command()
@guarded
def documents(
    run_file: Path = typer.Argument(..., help="A run archive (.h5)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="File for the documents (default: standard output)."),
) -> None:
    """A run archive as Bluesky event-model documents (start, descriptors, events, stop), one JSON
    list (name, doc) per line, for Bluesky callbacks, databroker or tiled.

    Example: hopbench documents hopbench-runs/<run>.h5 --out run.jsonl
    """
    from lab.app.documents import JsonLinesDocuments, replay

    if not run_file.exists():
        raise FileNotFoundError(f"{run_file}: no such run archive")
    with JsonLinesDocuments(out_file if out_file is not None else sys.stdout) as sink:
        replay(run_file, sink.emit)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
