"""Figures of a run, and ``report(run, out_dir)``: PNGs plus a short text summary.

The plotting functions take plain arrays, so they serve any source (an archive, a
sweep, a notebook). ``lab`` may not import ``protocols``: a software reference (e.g. the
clamped-Oja weights) and the stored patterns are passed in by the caller.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so reporting neither needs a display nor changes a user's backend.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

GLYPH_SHAPE = (7, 5)  # rows × columns of a 35-pixel glyph, row-major
ACCURACY_KEYS = {
    "bit_accuracy": "bit accuracy",
    "exact": "exact recall", "exact_recall": "exact recall",
    "correct": "correct retrieval", "correct_retrieval": "correct retrieval",
}
Reference = np.ndarray | Callable[[int], np.ndarray]


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


# --------------------------------------------------------------------------- conductance


def conductance_heatmaps(matrices: np.ndarray, labels: Sequence[str] | None = None, max_panels: int = 6) -> Figure:
    """Conductance matrices (reads × N × N, S) as heatmaps on one colour scale, evenly
    picked over the run (always the first and the last)."""
    m = np.asarray(matrices, dtype=float)
    k = m.shape[0]
    if k == 0:
        raise ValueError("no conductance matrix to plot")
    pick = np.unique(np.linspace(0, k - 1, min(k, max_panels)).round().astype(int))
    labels = list(labels) if labels is not None else [f"read {i}" for i in range(k)]
    finite = m[pick][np.isfinite(m[pick])]
    lo, hi = (np.percentile(finite, [1, 99]) * 1e6) if finite.size else (0.0, 1.0)
    cols = min(3, len(pick))
    rows = math.ceil(len(pick) / cols)
    fig = _figure(3.2 * cols + 0.8, 3.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    im = None
    for ax, i in zip(axes.flat, pick):
        im = ax.imshow(m[i] * 1e6, vmin=lo, vmax=hi, cmap="viridis", interpolation="nearest")
        ax.set_title(labels[i], fontsize=9)
        ax.set_xlabel("neuron j")
        ax.set_ylabel("neuron i")
    for ax in list(axes.flat)[len(pick):]:
        ax.set_visible(False)
    fig.colorbar(im, ax=axes, label="conductance G (µS)", shrink=0.9)
    fig.suptitle("Conductance matrix over training")
    return fig


def measured_vs_truth(g: np.ndarray, truth: np.ndarray) -> Figure:
    """Measured device conductances against the simulator's true ones (both in S)."""
    g, t = np.asarray(g, float).ravel(), np.asarray(truth, float).ravel()
    ok = np.isfinite(g) & np.isfinite(t)
    fig = _figure(8, 3.6)
    a, b = fig.subplots(1, 2)
    a.plot(t[ok] * 1e6, g[ok] * 1e6, ".", ms=2, alpha=0.5)
    if ok.any():
        lim = [min(t[ok].min(), g[ok].min()) * 1e6, max(t[ok].max(), g[ok].max()) * 1e6]
        a.plot(lim, lim, "k--", lw=0.8, label="measured = true")
        a.legend(fontsize=8)
    a.set_xlabel("true conductance (µS)")
    a.set_ylabel("measured conductance (µS)")
    b.hist((g[ok] - t[ok]) * 1e9, bins=50)
    b.set_xlabel("measured − true (nS)")
    b.set_ylabel("device reads (count)")
    fig.suptitle("Measurement error (simulated run)")
    return fig


# --------------------------------------------------------------------------- convergence


def _offdiag(m: np.ndarray) -> np.ndarray:
    return ~np.eye(m.shape[0], dtype=bool)


def convergence_metrics(matrices: np.ndarray, epochs: Sequence[float], reference: Reference,
                        baseline: np.ndarray | None = None) -> pd.DataFrame:
    """Per read: Pearson correlation r of the off-diagonal entries with the reference, and
    the distance between the two after standardising each (mean 0, std 1), which is
    sqrt(2(1 − r)): 0 = same weights up to scale and offset, √2 = unrelated.

    ``reference`` is one (N, N) matrix, one per read (k, N, N), or a callable epoch → (N, N)
    (e.g. the software Oja result after that many epochs). ``baseline`` (N, N), e.g. the
    matrix read before training, is subtracted first: the learned change is then compared,
    without the static device-to-device spread that dominates raw conductances.
    """
    m = np.asarray(matrices, dtype=float)
    if baseline is not None:
        m = m - np.asarray(baseline, dtype=float)[None]
    rows = []
    for i, e in enumerate(epochs):
        if callable(reference):
            ref = np.asarray(reference(int(e)), dtype=float)
        else:
            r = np.asarray(reference, dtype=float)
            ref = r[i] if r.ndim == 3 else r
        mask = _offdiag(ref) & np.isfinite(m[i]) & np.isfinite(ref)
        a, b = m[i][mask], ref[mask]
        if a.size < 3 or a.std() == 0 or b.std() == 0:
            r_val = math.nan
        else:
            r_val = float(np.corrcoef(a, b)[0, 1])
        za = (a - a.mean()) / (a.std() or 1.0)
        zb = (b - b.mean()) / (b.std() or 1.0)
        rows.append({"epoch": e, "correlation": r_val, "distance": float(np.sqrt(np.mean((za - zb) ** 2)))})
    return pd.DataFrame(rows)


def weight_convergence(metrics: pd.DataFrame, target: float | None = 0.95) -> Figure:
    fig = _figure(6.5, 4.2)
    ax = fig.subplots()
    ax.plot(metrics["epoch"], metrics["distance"], "o-", color="C0", label="distance")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("normalised distance to reference (1)", color="C0")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(metrics["epoch"], metrics["correlation"], "s--", color="C1", label="correlation")
    if target is not None:
        ax2.axhline(target, color="C1", lw=0.8, ls=":")
    ax2.set_ylabel("correlation r with reference (1)", color="C1")
    ax2.set_ylim(-1.05, 1.05)
    ax.set_title("Weight convergence: measured conductances vs software reference")
    return fig


# --------------------------------------------------------------------------- recall


def recall_grid(
    cues: np.ndarray, recalled: np.ndarray, targets: np.ndarray | None = None,
    shape: tuple[int, int] = GLYPH_SHAPE, titles: Sequence[str] | None = None,
) -> Figure:
    """One row per cue: cue → recalled → target, each a ±1 glyph (+1 dark)."""
    cues, recalled = np.atleast_2d(cues), np.atleast_2d(recalled)
    cols = 3 if targets is not None else 2
    k = len(cues)
    fig = _figure(1.3 * cols + 1.6, 1.55 * k + 0.4)
    axes = fig.subplots(k, cols, squeeze=False)
    heads = ["cue", "recalled", "target"][:cols]
    for i in range(k):
        images = [cues[i], recalled[i]] + ([np.asarray(targets)[i]] if targets is not None else [])
        for j, img in enumerate(images):
            ax = axes[i, j]
            ax.imshow(np.asarray(img, float).reshape(shape), cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(heads[j], fontsize=9)
        if targets is not None:
            ok = np.array_equal(np.sign(recalled[i]), np.sign(np.asarray(targets)[i]))
            for side in axes[i, 1].spines.values():
                side.set_edgecolor("tab:green" if ok else "tab:red")
                side.set_linewidth(2)
        if titles is not None:
            axes[i, 0].set_ylabel(titles[i], fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle("Recall: cue → recalled → target", fontsize=10)
    return fig


def accuracy_per_epoch(table: pd.DataFrame) -> Figure:
    """``table``: an ``epoch`` column and rate columns in [0, 1] (bit accuracy, exact recall ...)."""
    fig = _figure(6.5, 4.0)
    ax = fig.subplots()
    for col in table.columns:
        if col == "epoch":
            continue
        ax.plot(table["epoch"], 100 * table[col], "o-", label=ACCURACY_KEYS.get(col, col))
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("rate (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Recall accuracy per epoch")
    return fig


# --------------------------------------------------------------------------- characterization


_NAMED_UNITS = {"current": "A", "voltage": "V", "g": "S", "g_std": "S", "g_fit": "S", "delta_g": "S",
                "g_inf": "S", "times": "s", "time": "s", "tau": "s"}
_SUFFIX_UNITS = (("_per_s", "1/s"), ("_S", "S"), ("_V", "V"), ("_s", "s"), ("_A", "A"), ("_ohm", "Ω"), ("_W", "W"))


def _unit_label(key: str) -> str:
    """Axis label with the unit read off the key (``delta_g_S`` → S, ``widths_s`` → s)."""
    for suffix, unit in _SUFFIX_UNITS:
        if key.endswith(suffix):
            return f"{key} ({unit})"
    unit = _NAMED_UNITS.get(key.lower())
    return f"{key} ({unit})" if unit else f"{key} (1)"


def characterization_curves(panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]], xlabel: str,
                            title: str = "Characterization") -> Figure:
    """One panel per quantity (its y label), each with curves y(x) per label, e.g.
    ``{"delta_g_S (S)": {"device C0-C1": (amplitudes, dG)}}``. Points whose x repeats (two
    polarities at one width) are drawn as markers only, so no line zigzags between them."""
    k = len(panels)
    fig = _figure(6.5, 2.6 * k + 0.8)
    axes = fig.subplots(k, 1, squeeze=False, sharex=True)[:, 0]
    for ax, (ylabel, series) in zip(axes, panels.items()):
        for label, (x, y) in series.items():
            x, y = np.asarray(x, float), np.asarray(y, float)
            order = np.argsort(x, kind="stable")
            style = "o-" if np.unique(x).size == x.size else "o"
            ax.plot(x[order], y[order], style, ms=3, label=str(label))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=7)
    axes[-1].set_xlabel(xlabel)
    fig.suptitle(title, fontsize=10)
    return fig


# --------------------------------------------------------------------------- report


@dataclass
class Report:
    figures: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    summary_path: Path | None = None


KNOWN_STREAMS = {"conductance", "train_epoch", "recall", "recall_summary", "accuracy"}
_CHARACTERIZATION_HINTS = ("characteriz", "sweep", "iv", "retention", "threshold", "delta_g", "learning_rule")


def _patterns_from(run: Any, patterns: np.ndarray | None) -> np.ndarray | None:
    if patterns is not None:
        return np.asarray(patterns, float)
    p = run.protocol_params.get("patterns")
    if isinstance(p, Mapping) and p.get("vectors"):
        return np.asarray(p["vectors"], float)
    return None


def _accuracy_table(run: Any) -> pd.DataFrame | None:
    frames = []
    for stream in run.streams:
        df = run.records(stream)
        cols = [c for c in df.columns if c in ACCURACY_KEYS]
        if not cols:
            continue
        epoch = df["epoch"] if "epoch" in df.columns else pd.Series(run.epoch_at(df["seq"].to_numpy()))
        if epoch.isna().all():
            epoch = pd.Series(np.arange(1, len(df) + 1))
        t = df[cols].astype(float).copy()
        t.insert(0, "epoch", epoch.to_numpy())
        frames.append(t)
    if not frames:
        return None
    t = pd.concat(frames)
    # a resumed run may have scored an epoch twice: the last one counts
    return t.dropna(subset=["epoch"]).groupby("epoch", as_index=False).last().sort_values("epoch")


def _recall_rows(run: Any, patterns: np.ndarray | None, max_rows: int):
    if "recall" not in run.streams:
        return None
    df = run.records("recall")
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
    for stream in run.streams:
        if stream in KNOWN_STREAMS or not any(h in stream.lower() for h in _CHARACTERIZATION_HINTS):
            continue
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
) -> Report:
    """Write the run's figures (PNG) and ``summary.txt`` into ``out_dir``.

    ``run`` is a :class:`lab.archive_reader.Run` or a path to an archive. ``reference``: the
    software weights to measure convergence against (see :func:`convergence_metrics`).
    ``patterns``: the stored patterns (P × N, ±1), to draw recall targets given by index.
    ``baseline``: a matrix to subtract before comparing with the reference; "auto" uses the
    run's first read if it was taken before any training (epoch 0 or none), None nothing.
    """
    from lab.archive_reader import Run

    own = not isinstance(run, Run)
    if own:
        run = Run(run)
    try:
        return _report(run, Path(out_dir), reference, patterns, glyph_shape, max_recall_rows, baseline)
    finally:
        if own:
            run.close()


def _report(run: Any, out: Path, reference: Reference | None, patterns: np.ndarray | None,
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

    def emit(name: str, fig: Figure) -> None:
        rep.figures[name] = save(fig, out / f"{name}.png")

    if s["reads"]:
        G = run.conductance
        epochs = G.coords["epoch"].values
        labels = [f"read {i}" + (f" (epoch {int(e)})" if np.isfinite(e) else "") for i, e in enumerate(epochs)]
        emit("conductance", conductance_heatmaps(G.values, labels))
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
        if reference is not None:
            mats, ep = G.values, np.asarray(epochs, dtype=float)
            base, what = None, "raw conductances"
            if isinstance(baseline, str) and baseline == "auto":
                if len(mats) > 1 and not (np.isfinite(ep[0]) and ep[0] > 0):
                    base, what = mats[0], "change since the first read (before training)"
                    mats, ep = mats[1:], ep[1:]
            elif baseline is not None and not isinstance(baseline, str):
                base, what = np.asarray(baseline, dtype=float), "change from the given baseline"
            if not np.isfinite(ep).all():
                ep = np.arange(1, len(mats) + 1, dtype=float)
            metrics = convergence_metrics(mats, ep, reference, base)
            emit("weight_convergence", weight_convergence(metrics))
            metrics.to_csv(out / "weight_convergence.csv", index=False)
            rep.summary["convergence_compared"] = what
            rep.summary["convergence_final_correlation"] = float(metrics["correlation"].iloc[-1])
            rep.summary["convergence_final_distance"] = float(metrics["distance"].iloc[-1])
            lines.append(f"weight convergence ({what}): correlation with the reference "
                         f"{metrics['correlation'].iloc[-1]:.3f}, normalised distance "
                         f"{metrics['distance'].iloc[-1]:.3f} at epoch {metrics['epoch'].iloc[-1]:g}")
        else:
            lines.append("weight convergence: no software reference given")

    acc = _accuracy_table(run)
    if acc is not None and len(acc):
        emit("accuracy", accuracy_per_epoch(acc))
        acc.to_csv(out / "accuracy.csv", index=False)
        last = acc.iloc[-1]
        rep.summary["accuracy"] = {k: float(v) for k, v in last.items()}
        lines.append("accuracy per epoch:")
        lines.append("  " + acc.to_string(index=False, float_format=lambda v: f"{v:.3f}").replace("\n", "\n  "))

    rows = _recall_rows(run, _patterns_from(run, patterns), max_recall_rows)
    if rows is not None:
        cues, finals, targets, titles = rows
        if cues.shape[1] == glyph_shape[0] * glyph_shape[1]:
            emit("recall", recall_grid(cues, finals, targets, glyph_shape, titles))
        else:
            side = int(math.ceil(math.sqrt(cues.shape[1])))
            if side * side == cues.shape[1]:
                emit("recall", recall_grid(cues, finals, targets, (side, side), titles))

    for name, fig in _characterization(run):
        emit(name, fig)

    lines.append("figures: " + (", ".join(p.name for p in rep.figures.values()) or "none"))
    rep.text = "\n".join(lines) + "\n"
    rep.summary_path = out / "summary.txt"
    rep.summary_path.write_text(rep.text, encoding="utf-8")
    return rep
