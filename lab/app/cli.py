"""The ``hopbench`` command."""
from __future__ import annotations

import functools
import json
import signal
import sys
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lab.app.demo import run_demo
from lab.app.jobs import baseline_from as baseline_from_archive
from lab.app.jobs import check_bench, estimate_protocol, run_protocol, start_sim_server
from lab.app.report import report_run
from lab.app.sweep import expand, load_sweep, run_sweep, summary_figure
from lab.archive import list_runs as list_archives

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Instrument control, simulation and archiving for self-learning magnetic Hopfield networks.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console()
err = Console(stderr=True)

DEFAULT_OUT = Path("hopbench-runs")
BenchOption = Annotated[Optional[Path], typer.Option(
    "--bench", "-b", help="Bench file (default: the simulated 35-node film).")]
SetsOption = Annotated[Optional[list[str]], typer.Option(
    "--set", "-s", help="Protocol parameter, name=value (repeatable).")]


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose known failures become one clear line and a non-zero exit."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            _fail("interrupted (the bench was left safe: sources at 0 V, outputs off, relays open)", 130)
        except Exception as exc:  # noqa: BLE001 - every failure ends as one line
            _fail(*_explain(exc))

    return command


def _explain(exc: Exception) -> tuple[str, int]:
    """One line and an exit code: 2 for bad input, 1 for an instrument or runner failure."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or exc.title
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first.get('msg')}{more}", 2
    if isinstance(exc, KeyError):
        return str(exc).strip("'\""), 2
    if isinstance(exc, (ValueError, OSError)):
        return str(exc), 2
    return f"{type(exc).__name__}: {exc}", 1


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``name=value`` pairs; values are read as TOML (numbers, booleans, lists) or text."""
    result: dict[str, Any] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set {item!r}: expected name=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        result[name.strip()] = value
    return result


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
@guarded
def demo(
    out_dir: Path = typer.Option(DEFAULT_OUT / "demo", "--out", help="Folder for the archive and figures."),
    epochs: int = typer.Option(10, help="Training epochs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """The paper's experiment, dry-run on the simulated 35-node film: train, read, recall, archive, figures.

    Example: hopbench demo --out runs/demo
    """
    summary = run_demo(out_dir, epochs=epochs, progress=not (quiet or as_json))
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
    for f in summary["replaced"]:
        out.print(f"replaced the previous demo archive {f}", highlight=False)
    out.print(f"archive: {summary['archive']}", highlight=False)
    out.print(f"figures: {summary['figures_dir']}", highlight=False)


@app.command()
@guarded
def run(
    protocol: str = typer.Argument(..., help="Protocol name (see 'hopbench run --list') or a protocol TOML file."),
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
) -> None:
    """Run a protocol on a bench, or on its simulated twin with --dry-run.

    Train, then recall on the same simulated film:
    hopbench run train_hopfield --dry-run --sample film-A;
    hopbench run recall --dry-run --sample film-A --baseline-from hopbench-runs/<train>.h5

    Example: hopbench run read_conductances --bench data/benches/sim-film35.toml --set repeats=2 --dry-run
    """
    overrides = parse_sets(sets)
    if baseline_from is not None:
        overrides["baseline"] = baseline_from_archive(baseline_from)
    summary = run_protocol(
        protocol,
        bench=bench,
        overrides=overrides,
        sample=sample,
        out_dir=out_dir,
        dry_run=dry_run,
        resume=resume,
        progress=not (quiet or as_json),
    )
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
        out.print(f"archive: {data['archive']}")
    if data["status"] != "complete":
        raise typer.Exit(1)


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
    stop = {"now": False}

    def _stop(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        if as_json:
            sys.stdout.write(json.dumps(server.resources) + "\n")
        else:
            # Plain tab-separated lines, so scripts can read the resource strings.
            for name, resource in server.resources.items():
                sys.stdout.write(f"{name}\t{resource}\n")
            sys.stdout.write("serving; Ctrl-C stops\n")
        sys.stdout.flush()
        t_end = time.monotonic() + duration if duration else None
        while not stop["now"] and (t_end is None or time.monotonic() < t_end):
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@app.command()
@guarded
def report(
    run_file: Path = typer.Argument(..., help="A run archive (.h5)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for figures (default: next to the archive)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Figures (PNG) and a short text summary of a run.

    Example: hopbench report hopbench-runs/demo/demo.h5
    """
    result = report_run(run_file, out_dir)
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
    """List the runs in a folder: status, protocol, date, size.

    Example: hopbench ls hopbench-runs
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    runs = list_archives(folder)
    rows = runs.to_dict(orient="records") if hasattr(runs, "to_dict") else list(runs)
    if as_json:
        _emit_json(rows)
        return
    table = Table(title=f"{folder}: {len(rows)} runs")
    for col in ("run", "status", "protocol", "started", "size", "operations"):
        table.add_column(col, justify="right" if col in ("size", "operations") else "left")
    for row in rows:
        size = row.get("size_bytes") or 0
        table.add_row(
            Path(str(row["path"])).name, str(row.get("status", "")), str(row.get("protocol") or ""),
            str(row.get("start_time") or "")[:19], f"{size / 1e6:.2f} MB", str(row.get("operations") or ""),
        )
    out.print(table)


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
    metric = summary_figure(table, varied, spec.metric, fig_path)
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


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
