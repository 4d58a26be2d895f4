"""``report(run, out_dir)``: a run's figures (PNG) and a short text summary.

Which record streams get which figure is declared by each protocol class
(``Protocol.figures``: stream name → figure kind), so this module names no protocol's
records. The software reference (clamped-Oja weights) comes from the run's patterns.
"""
from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lab.app.figures import (
    ACCURACY_KEYS,
    GLYPH_SHAPE,
    RATE_DEFINITIONS,
    Reference,
    _unit_label,
    accuracy_per_epoch,
    characterization_curves,
    conductance_heatmaps,
    convergence_metrics,
    device_characterization,
    learned_change_heatmaps,
    measured_vs_truth,
    recall_confusion,
    recall_grid,
    recall_with_confusion,
    relative_change_heatmaps,
    retention_curves,
    save,
    threshold_curves,
    weight_convergence,
)
from lab.archive import Run
from lab.archive.access import damaged
from protocols import hopfield_reference as ref
from protocols.base import registry
from protocols.common import PatternChoice
from protocols.readout import hopfield_weights

# The reference the learned weights are compared with: the pattern correlation matrix
# C = ΞᵀΞ/N (zero diagonal), the Hebbian weights and the fixed point clamped Oja training
# converges to. Fixed and stated: no learning rate is fitted to the run.
REFERENCE_NAME = "Hebbian fixed point C = ΞᵀΞ/N (clamped Oja's fixed point)"


@dataclass
class Report:
    figures: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    summary_path: Path | None = None
    terms: set[str] = field(default_factory=set)  # keys of TERMS the figures and lines use
    objects: dict[str, Figure] = field(default_factory=dict)  # the figures drawn, to inspect or save again


# Every term a report may use, defined once; the summary lists those its figures use.
TERMS = {
    "G0": "G0: the conductance read before training (the first read of the run)",
    "ΔG/G0": "ΔG/G0 = (G − G0)/G0: the learned change of a device, in % of its conductance before training",
    "W": ("W = G − λ·G0, λ = ΣG/ΣG0: the read-out's weight matrix, the learned change with the common drift "
          "of all devices removed (protocols.readout)"),
    "epoch": "epoch: one pass of the training over every stored pattern; epoch 0 = before training",
    "correlation": "correlation r: Pearson r of the off-diagonal weights with the reference (1 = same up to scale)",
    "distance": "normalised distance: rms difference of the standardised weights, √(2(1 − r)) (0 = same, √2 = unrelated)",
    **{name: f"{name}: {text}" for name, text in RATE_DEFINITIONS.items()},
    "overlap": "overlap m = ξ·s/N of a final state s with a stored pattern ξ (1 = identical, −1 = inverted)",
    "V_d": "V_d: the depinning threshold, the amplitude above which the change per pulse rises steeply (fit)",
    "onset": "onset: the lowest amplitude at which a change was seen above the read noise",
    "τ": "τ: relaxation time of the fit G(t) = G_∞ + (G(0) − G_∞)·exp(−t/τ) (∞: no relaxation seen)",
}


def _figures_of(run: Any) -> Mapping[str, str]:
    cls = registry().get(str(run.protocol_name or ""))
    return getattr(cls, "figures", {}) if cls is not None else {}


def _declared(run: Any, kind: str) -> list[str]:
    """The run's streams that its protocol declares as getting figure ``kind``."""
    figures = _figures_of(run)
    return [s for s in run.streams if figures.get(s) == kind]


def _reads_kind(run: Any) -> str:
    """What the run's matrix reads are drawn as: ``learned_change`` (a training), ``conductance``
    (a map of the reads) or ``none``, as its protocol declares under the key ``reads``;
    undeclared: a learned change if a read before training (epoch 0) is followed by others."""
    declared = _figures_of(run).get("reads")
    if declared is not None:
        return declared
    ep = np.asarray(run.conductance.coords["epoch"].values, dtype=float)
    if len(ep) > 1 and np.isfinite(ep[0]) and ep[0] == 0 and np.nanmax(ep) > 0:
        return "learned_change"
    return "conductance"


def _patterns_from(run: Any, patterns: np.ndarray | None) -> np.ndarray | None:
    if patterns is not None:
        return np.asarray(patterns, float)
    p = run.protocol_params.get("patterns")
    if isinstance(p, Mapping) and p.get("vectors"):
        return np.asarray(p["vectors"], float)
    return None


def _accuracy_table(run: Any) -> pd.DataFrame | None:
    frames = []
    for stream in _declared(run, "accuracy"):
        df = run.records(stream)
        cols = [c for c in df.columns if c in ACCURACY_KEYS]
        if not cols:
            continue
        epoch = df["epoch"] if "epoch" in df.columns else pd.Series(run.epoch_at(df["seq"].to_numpy()))
        key = "epoch"
        if epoch.isna().all():  # a run without training epochs (a recall): its scores by record, not "epoch 1"
            epoch, key = pd.Series(np.arange(1, len(df) + 1)), "record"
        t = df[cols].astype(float).copy()
        t.insert(0, key, epoch.to_numpy())
        frames.append(t)
    if not frames:
        return None
    t = pd.concat(frames)
    key = t.columns[0]
    # a resumed run may have scored an epoch twice: the last one counts
    return t.dropna(subset=[key]).groupby(key, as_index=False).last().sort_values(key)


def _recall_rows(run: Any, patterns: np.ndarray | None, max_rows: int):
    streams = _declared(run, "recall")
    if not streams:
        return None
    df = run.records(streams[0])
    final_key = "final" if "final" in df.columns else ("recalled" if "recalled" in df.columns else None)
    if final_key is None or "cue" not in df.columns:
        return None
    df = df.tail(200)  # the latest recall campaign
    scalar_targets = "target" in df.columns and df["target"].map(np.isscalar).all()
    if scalar_targets:  # one cue per target first, then the rest
        first = df.drop_duplicates(subset=["target"])
        df = pd.concat([first, df.drop(first.index)])
    df = df.head(max_rows)
    cues = np.array([np.asarray(c, float) for c in df["cue"]])
    finals = np.array([np.asarray(c, float) for c in df[final_key]])
    targets = None
    titles = None
    if "target" in df.columns:
        t = list(df["target"])
        if all(np.isscalar(x) for x in t):
            p = run.protocol_params.get("patterns")
            names = p.get("names") if isinstance(p, Mapping) else None
            titles = [names[int(x)] if names and int(x) < len(names) else f"#{int(x)}" for x in t]
            if patterns is not None and max(int(x) for x in t) < len(patterns):
                targets = np.array([patterns[int(x)] for x in t])
        else:
            targets = np.array([np.asarray(x, float) for x in t])
    return cues, finals, targets, titles


_X_WORDS = ("amplitude", "width", "voltage", "time", "pulse", "bias")


def _is_x(key: str) -> bool:
    low = key.lower()
    return any(w in low for w in _X_WORDS) and "delta" not in low and not key.endswith("_S")


def _numeric_array(v: Any) -> np.ndarray | None:
    if not isinstance(v, list) or len(v) < 2:
        return None
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        return None
    return a if a.ndim in (1, 2) else None


def _characterization(run: Any) -> list[tuple[str, Figure]]:
    """Curves of characterization-like streams (ΔG vs amplitude or width, IV, retention ...).

    A record that holds whole curves (lists) is split by length: in each group the key that
    names an independent variable (amplitude, width, voltage, time, pulse) is x, the rest
    are y; a group without one is plotted against the point index. Streams of scalar
    records plot each number against the first one, grouped by a text column if any.
    """
    out: list[tuple[str, Figure]] = []
    for stream in _declared(run, "curves"):
        df = run.records(stream)
        meta = {"record", "seq", "index", "t_wall", "t_bench", "stream"}
        figures: dict[tuple[str, int], dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}
        for k, row in df.iterrows():
            label = "-".join(map(str, row["lines"])) if isinstance(row.get("lines"), list) else f"record {row['record']}"
            arrays = {c: a for c in df.columns if c not in meta and (a := _numeric_array(row[c])) is not None}
            by_len: dict[int, list[str]] = {}
            for c, a in arrays.items():
                by_len.setdefault(len(a), []).append(c)
            for n, keys in by_len.items():
                xs = [c for c in keys if _is_x(c)]
                x_key = xs[0] if xs else "point"
                x = arrays[x_key] if xs else np.arange(n, dtype=float)
                for c in keys:
                    if c == x_key:
                        continue
                    panel = figures.setdefault((x_key, n), {}).setdefault(_unit_label(c), {})
                    y = arrays[c]
                    if y.ndim == 2:
                        for j in range(y.shape[1]):
                            panel[f"{label} #{j}"] = (x, y[:, j])
                    else:
                        panel[label] = (x, y)
        for (x_key, n), panels in figures.items():
            panels = dict(list(panels.items())[:4])
            xlabel = "point (index)" if x_key == "point" else _unit_label(x_key)
            out.append((f"characterization_{stream}_{x_key}_{n}",
                        characterization_curves(panels, xlabel, f"{stream}: versus {x_key}")))
        if figures:
            continue
        numeric = [c for c in df.columns if c not in meta
                   and pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any()]
        if len(numeric) < 2 or len(df) < 2:  # a one-record summary is a table, not a curve
            continue
        x_col = next((c for c in numeric if _is_x(c)), numeric[0])
        groups = [c for c in df.columns if c not in meta and df[c].dtype == object
                  and df[c].map(lambda v: isinstance(v, str)).all()]
        panels = {}
        for y in [c for c in numeric if c != x_col][:4]:
            if groups:
                panels[_unit_label(y)] = {str(name): (g[x_col].to_numpy(), g[y].to_numpy()) for name, g in df.groupby(groups[0])}
            else:
                panels[_unit_label(y)] = {y: (df[x_col].to_numpy(), df[y].to_numpy())}
        out.append((f"characterization_{stream}", characterization_curves(panels, _unit_label(x_col), f"{stream}: versus {x_col}")))
    return out


def report(
    run: Any,
    out_dir: str | Path,
    *,
    reference: Reference | None = None,
    patterns: np.ndarray | None = None,
    glyph_shape: tuple[int, int] = GLYPH_SHAPE,
    max_recall_rows: int = 8,
    baseline: str | np.ndarray | None = "auto",
    reference_name: str = "the given reference",
) -> Report:
    """Write the run's figures (PNG) and ``summary.txt`` into ``out_dir``.

    ``run`` is a :class:`lab.archive.Run` or a path to an archive. ``reference``: the
    software weights to measure convergence against (see :func:`convergence_metrics`).
    ``patterns``: the stored patterns (P × N, ±1), to draw recall targets given by index.
    ``baseline``: a matrix to subtract before comparing with the reference; "auto" uses the
    run's first read if it was taken before any training (epoch 0 or none), None nothing.
    """
    own = not isinstance(run, Run)
    if own:
        run = Run(run)
    try:
        return _report(run, Path(out_dir), (reference, reference_name), patterns, glyph_shape, max_recall_rows, baseline)
    finally:
        if own:
            run.close()


def _conductance_section(run: Any, rep: Report, lines: list[str], emit: Callable[[str, Figure], None], out: Path,
                         reference: tuple[Reference | None, str], baseline: str | np.ndarray | None) -> None:
    """Heatmaps, the read error against the simulator's truth, and convergence to the reference."""
    G = run.conductance
    epochs = G.coords["epoch"].values
    labels = [f"read {i}" + (f" (epoch {int(e)})" if np.isfinite(e) else "") for i, e in enumerate(epochs)]
    kind = _reads_kind(run)
    if kind == "learned_change" and len(G) > 1:
        emit("conductance", relative_change_heatmaps(G.values, labels))
        rep.terms.update({"G0", "ΔG/G0", "epoch"})
        w, _, what = _learned_weights(run, "auto")
        if what.startswith("change"):
            emit("learned_weights", learned_change_heatmaps(w, labels[1:], reference[0] if isinstance(reference[0], np.ndarray) else None))
            rep.terms.add("W")
    elif kind != "none":
        emit("conductance", conductance_heatmaps(G.values, labels, title="Conductance matrix" if len(G) == 1 else "Conductance matrices read"))
    first, last = G.values[0], G.values[-1]
    rep.summary["g_mean_first_S"] = float(np.nanmean(first))
    rep.summary["g_mean_last_S"] = float(np.nanmean(last))
    rep.summary["g_mean_abs_change_S"] = float(np.nanmean(np.abs(last - first)))
    lines.append(
        f"conductance: mean {np.nanmean(first) * 1e6:.4g} µS at the first read, {np.nanmean(last) * 1e6:.4g} µS "
        f"at the last; mean |ΔG| {rep.summary['g_mean_abs_change_S'] * 1e6:.3g} µS"
    )
    truth = run.truth.values
    if np.isfinite(truth).any():
        g = run.g.values
        err = (g - truth)[np.isfinite(g) & np.isfinite(truth)]
        rep.summary["read_error_rms_S"] = float(np.sqrt(np.mean(err**2)))
        rep.summary["read_error_rel"] = float(np.sqrt(np.mean(err**2)) / np.nanmean(np.abs(truth)))
        lines.append(f"measured vs simulator truth: rms error {rep.summary['read_error_rms_S'] * 1e9:.3g} nS "
                     f"({100 * rep.summary['read_error_rel']:.2g} % of the mean conductance)")
        emit("measurement_error", measured_vs_truth(g, truth))
    if reference[0] is not None:
        _convergence_section(run, rep, lines, emit, out, reference, baseline)
    else:
        lines.append("weight convergence: no software reference given")


def _learned_weights(run: Any, baseline: str | np.ndarray | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(weights per read after the baseline, their epochs, what was compared), through the
    one read-out every recall uses: W = G − λ·G0, λ = ΣG/ΣG0 (:mod:`protocols.readout`)."""
    G = run.conductance
    mats, ep = G.values, np.asarray(G.coords["epoch"].values, dtype=float)
    if isinstance(baseline, str) and baseline == "auto":
        if len(mats) > 1 and not (np.isfinite(ep[0]) and ep[0] > 0):
            g = run.g.values
            w = np.array([hopfield_weights(run.bench_info, g[k], g[0]) for k in range(1, len(g))])
            return w, ep[1:], "change since the first read (before training), as the read-out W = G − λ·G0"
        return mats, ep, "raw conductances (no read before training to take the change from)"
    if baseline is not None and not isinstance(baseline, str):
        base = np.asarray(baseline, dtype=float)
        ok = np.isfinite(base)
        lam = np.array([np.nansum(m[ok]) / np.nansum(base[ok]) for m in mats])
        return mats - lam[:, None, None] * base[None], ep, "change from the given baseline, as the read-out W = G − λ·G0"
    return mats, ep, "raw conductances"


def _convergence_section(run: Any, rep: Report, lines: list[str], emit: Callable[[str, Figure], None], out: Path,
                         reference: tuple[Reference, str], baseline: str | np.ndarray | None) -> None:
    mats, ep, what = _learned_weights(run, baseline)
    per_epoch = bool(np.isfinite(ep).all())
    if not per_epoch:
        ep = np.arange(1, len(mats) + 1, dtype=float)
    metrics = convergence_metrics(mats, ep, reference[0], None)
    emit("weight_convergence", weight_convergence(metrics))
    rep.terms.update({"correlation", "distance", "epoch"})
    metrics.to_csv(out / "weight_convergence.csv", index=False)
    rep.summary["convergence_compared"] = what
    rep.summary["convergence_reference"] = reference[1]
    rep.summary["convergence_final_correlation"] = float(metrics["correlation"].iloc[-1])
    rep.summary["convergence_final_distance"] = float(metrics["distance"].iloc[-1])
    lines.append(f"weight convergence ({what}): correlation with {reference[1]} "
                 f"{metrics['correlation'].iloc[-1]:.3f}, normalised distance "
                 f"{metrics['distance'].iloc[-1]:.3f} "
                 + (f"at epoch {metrics['epoch'].iloc[-1]:g}" if per_epoch else "at the last read"))


def _report(run: Any, out: Path, reference: tuple[Reference | None, str], patterns: np.ndarray | None,
            glyph_shape: tuple[int, int], max_recall_rows: int, baseline: str | np.ndarray | None) -> Report:
    out.mkdir(parents=True, exist_ok=True)
    rep = Report()
    s = run.summary()
    rep.summary.update(s)
    lines = [
        f"run {s['run_id']}  protocol {s['protocol']}  status {s['status']}",
        f"started {s['start_time']}  ended {s['end_time'] or '(not finished)'}",
        f"bench time {s['bench_time_s']:.3g} s, wall time {s['wall_time_s']:.3g} s, "
        f"{s['operations']} operations, {s['reads']} matrix reads, {s['checkpoints']} checkpoints"
        + (f", resumed {s['resumes']}x" if s["resumes"] else ""),
    ]
    if s["error"]:
        lines.append("error: " + textwrap.shorten(s["error"], 300))
    if s.get("status") == "interrupted":
        lines.append("interrupted: the archive says running but no writer holds it (killed or power cut); "
                     "its committed rows are complete — resume it with hopbench run <protocol> --resume <archive>")
    if s.get("needs_repair"):
        lines.append("note: this file " + s["needs_repair"])

    def emit(name: str, fig: Figure) -> None:
        rep.figures[name] = save(fig, out / f"{name}.png")
        rep.objects[name] = fig

    if s["reads"]:
        _conductance_section(run, rep, lines, emit, out, reference, baseline)

    acc = _accuracy_table(run)
    if acc is not None and len(acc):
        per_epoch = "epoch" in acc.columns
        emit("accuracy", accuracy_per_epoch(acc if per_epoch else acc.rename(columns={"record": "epoch"})))
        acc.to_csv(out / "accuracy.csv", index=False)
        rep.terms.update(ACCURACY_KEYS[c] for c in acc.columns if c in ACCURACY_KEYS)
        if per_epoch:
            rep.terms.add("epoch")
        last = acc.iloc[-1]
        rep.summary["accuracy"] = {k: float(v) for k, v in last.items()}
        lines.append("accuracy per epoch:" if per_epoch else "recall scores (this run has no training epochs):")
        lines.append("  " + acc.to_string(index=False, float_format=lambda v: f"{v:.3f}").replace("\n", "\n  "))

    rows = _recall_rows(run, _patterns_from(run, patterns), max_recall_rows)
    if rows is not None:
        cues, finals, targets, titles = rows
        shape = glyph_shape
        if cues.shape[1] != glyph_shape[0] * glyph_shape[1]:
            side = int(math.ceil(math.sqrt(cues.shape[1])))
            shape = (side, side) if side * side == cues.shape[1] else None
        confusion = _confusion(run)
        if shape is not None and confusion is not None:
            emit("recall", recall_with_confusion(cues, finals, targets, shape, titles, *confusion))
            rep.terms.update({"overlap", "exact recall"})
            rep.summary["confusion"] = confusion[0].tolist()
        elif shape is not None:
            emit("recall", recall_grid(cues, finals, targets, shape, titles))

    for name, fig in _characterization(run):
        emit(name, fig)
    for stream in _declared(run, "threshold"):
        emit(f"learning_rule_{stream}", threshold_curves(run.records(stream).to_dict(orient="records")))
        rep.terms.update({"V_d"})
    for stream in _declared(run, "device"):
        for _, rec in run.records(stream).iterrows():
            emit(f"device_{rec.get('lines', rec['record'])}", device_characterization(rec.to_dict()))
            rep.terms.update({"V_d", "onset", "G0"})
    for stream in _declared(run, "retention"):
        for _, rec in run.records(stream).iterrows():
            emit(f"retention_{rec['record']}", _retention_figure(run, rec.to_dict()))
            rep.terms.add("τ")

    lines.append("figures: " + (", ".join(p.name for p in rep.figures.values()) or "none"))
    if rep.terms:
        lines.append("terms:")
        lines.extend(f"  {TERMS[t]}" for t in TERMS if t in rep.terms)
    rep.text = "\n".join(lines) + "\n"
    rep.summary_path = out / "summary.txt"
    rep.summary_path.write_text(rep.text, encoding="utf-8")
    return rep


def _confusion(run: Any) -> tuple[np.ndarray, list[str]] | None:
    """Per-pattern outcome counts of the run's latest recall campaign, and the pattern names."""
    streams = _declared(run, "recall")
    if not streams:
        return None
    df = run.records(streams[0])
    if "target" not in df.columns or "overlaps" not in df.columns or not df["target"].map(np.isscalar).all():
        return None
    df = df.tail(200)
    ok = df["target"].astype(float) >= 0
    if not ok.any():
        return None
    conf = recall_confusion(df.loc[ok, "target"].astype(int), list(df.loc[ok, "overlaps"]))
    p = run.protocol_params.get("patterns")
    names = list(p.get("names") or []) if isinstance(p, Mapping) else []
    names = [str(names[i]) if i < len(names) else f"#{i}" for i in range(conf.shape[0])]
    return conf, names


def _retention_figure(run: Any, rec: Mapping[str, Any]) -> Figure:
    g = np.asarray(rec["g"], float)
    g = g.reshape(len(rec["times_s"]), -1)
    tau, g_inf = np.atleast_1d(rec.get("tau_s", [])), np.atleast_1d(rec.get("g_inf", []))
    fits = [{"tau_s": float(tau[d]) if d < tau.size else np.nan, "g_inf": float(g_inf[d]) if d < g_inf.size else np.nan}
            for d in range(g.shape[1])]
    pairs = run.protocol_params.get("pairs")
    names = run.line_names
    labels = (["-".join(str(names[x]) if isinstance(x, int) and x < len(names) else str(x) for x in pair) for pair in pairs]
              if pairs else [f"device {d}" for d in range(g.shape[1])])
    return retention_curves(np.asarray(rec["times_s"], float), g, fits, labels)


def report_run(run_file: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Figures and a text summary of a run; the software Oja reference comes from its patterns."""
    run_file = Path(run_file)
    if not run_file.exists():
        raise FileNotFoundError(f"{run_file}: no such run archive")
    out = Path(out_dir) if out_dir is not None else run_file.with_suffix("")
    with Run(run_file) as run:
        try:
            patterns, reference = _reference_for(run)
            rep = report(run, out, reference=reference, patterns=patterns, reference_name=REFERENCE_NAME)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:  # HDF5 or JSON found damage
            raise damaged(run_file, exc) from None
        except KeyError as exc:
            if "Unable to" not in str(exc):  # h5py's words for an unreadable object; others are ours
                raise
            raise damaged(run_file, exc) from None
    return {"summary": rep.text, "figures": [str(p) for p in rep.figures.values()], "out_dir": str(out),
            "values": rep.summary}


def _reference_for(run: Any) -> tuple[Any, Any]:
    """Stored patterns of a run and the Hebbian fixed point they define."""
    params = run.protocol_params.get("patterns")
    if not isinstance(params, Mapping):
        return None, None
    try:
        _, patterns = PatternChoice.model_validate(params).load()
    except Exception:  # a run whose patterns cannot be rebuilt still gets its other figures
        return None, None
    return patterns, ref.hebbian(patterns)
