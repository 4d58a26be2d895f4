"""Figures: plotting functions that take plain arrays, so they serve any source (an
archive, a sweep, a notebook). :mod:`lab.app.report` picks which ones a run gets.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so reporting neither needs a display nor changes a user's backend.
"""
from __future__ import annotations

import math
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
# What each rate means (drawn under the accuracy figure, written in the report's summary).
RATE_DEFINITIONS = {
    "bit accuracy": "fraction of neurons whose final state equals the cued pattern's, averaged over cues",
    "exact recall": "fraction of cues whose final state equals the cued pattern in every neuron",
    "correct retrieval": ("fraction of cues whose final state overlaps the cued pattern by m = ξ·s/N ≥ 0.9 "
                          "and more than any other stored pattern (a few wrong bits allowed)"),
}
_RATE_STYLES = (("o", "-", 6), ("s", "--", 8), ("^", ":", 7), ("D", "-.", 5))


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


def _panel_grid(n: int) -> tuple[Figure, np.ndarray]:
    """A figure with n heatmap panels, three per row."""
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = _figure(3.2 * cols + 0.8, 3.0 * rows)
    return fig, fig.subplots(rows, cols, squeeze=False)


def conductance_heatmaps(matrices: np.ndarray, labels: Sequence[str] | None = None, max_panels: int = 6,
                         title: str = "Conductance matrix") -> Figure:
    """Conductance matrices (reads × N × N, S) as heatmaps on one colour scale, evenly
    picked over the run (always the first and the last). For a training, show
    :func:`relative_change_heatmaps` instead: a raw map cannot show a 1 % change."""
    m = np.asarray(matrices, dtype=float)
    k = m.shape[0]
    if k == 0:
        raise ValueError("no conductance matrix to plot")
    pick = np.unique(np.linspace(0, k - 1, min(k, max_panels)).round().astype(int))
    labels = list(labels) if labels is not None else [f"read {i}" for i in range(k)]
    finite = m[pick][np.isfinite(m[pick])]
    lo, hi = (np.percentile(finite, [1, 99]) * 1e6) if finite.size else (0.0, 1.0)
    fig, axes = _panel_grid(len(pick))
    im = None
    for ax, i in zip(axes.flat, pick):
        im = ax.imshow(m[i] * 1e6, vmin=lo, vmax=hi, cmap="viridis", interpolation="nearest")
        ax.set_title(labels[i], fontsize=9)
        ax.set_xlabel("neuron j")
        ax.set_ylabel("neuron i")
    for ax in list(axes.flat)[len(pick):]:
        ax.set_visible(False)
    fig.colorbar(im, ax=axes, label="conductance G (µS)", shrink=0.9)
    fig.suptitle(title)
    return fig


def relative_change_heatmaps(matrices: np.ndarray, labels: Sequence[str], max_panels: int = 6) -> Figure:
    """What training changed: ΔG/G0 = (G − G0)/G0 in % of each read against the first read
    G0 (reads × N × N, S), on one diverging scale centred on 0. A raw-G map hides a 1 %
    change under the device-to-device spread; this one shows it at full contrast."""
    m = np.asarray(matrices, dtype=float)
    if m.shape[0] < 2:
        raise ValueError("a learned change needs a read before and a read after training")
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = 100.0 * (m[1:] - m[0]) / m[0]
    pick = np.unique(np.linspace(0, len(rel) - 1, min(len(rel), max_panels)).round().astype(int))
    finite = rel[pick][np.isfinite(rel[pick])]
    lim = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
    lim = lim or 1.0
    fig, axes = _panel_grid(len(pick))
    im = None
    for ax, i in zip(axes.flat, pick):
        im = ax.imshow(rel[i], vmin=-lim, vmax=lim, cmap="RdBu_r", interpolation="nearest")
        ax.set_title(f"{labels[i + 1]} vs {labels[0]}", fontsize=8)
        ax.set_xlabel("neuron j")
        ax.set_ylabel("neuron i")
    for ax in list(axes.flat)[len(pick):]:
        ax.set_visible(False)
    fig.colorbar(im, ax=axes, label="learned change ΔG/G0 (%)", shrink=0.9)
    fig.suptitle("Learned change ΔG/G0 = (G − G0)/G0, G0 = the read before training")
    return fig


def learned_change_heatmaps(weights: np.ndarray, labels: Sequence[str], reference: np.ndarray | None = None,
                            max_panels: int = 5) -> Figure:
    """What the film learned: the read-out W = G − λ·G0 (reads × N × N, S) on one diverging
    colour scale centred on 0 (red: pairs that kept their conductance, i.e. mostly aligned;
    blue: pairs that lost it), beside the Hebbian reference C = ΞᵀΞ/N the training should
    approach (drawn on its own scale)."""
    m = np.asarray(weights, dtype=float)
    pick = np.unique(np.linspace(0, len(m) - 1, min(len(m), max_panels)).round().astype(int))
    panels = len(pick) + (reference is not None)
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig = _figure(3.2 * cols + 0.8, 3.0 * rows)
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    finite = m[pick][np.isfinite(m[pick])]
    lim = float(np.percentile(np.abs(finite), 99) * 1e6) if finite.size else 1.0
    im = None
    for ax, i in zip(axes, pick):
        im = ax.imshow(m[i] * 1e6, vmin=-lim, vmax=lim, cmap="RdBu_r", interpolation="nearest")
        ax.set_title(labels[i], fontsize=9)
        ax.set_xlabel("neuron j")
        ax.set_ylabel("neuron i")
    if im is not None:
        fig.colorbar(im, ax=axes[:len(pick)], label="learned weight W = G − λ·G0 (µS)", shrink=0.9)
    if reference is not None:
        ax = axes[len(pick)]
        r = np.asarray(reference, dtype=float)
        top = float(np.nanmax(np.abs(r))) or 1.0
        ax.imshow(r, vmin=-top, vmax=top, cmap="RdBu_r", interpolation="nearest")
        ax.set_title("Hebbian reference C = ΞᵀΞ/N (own scale)", fontsize=9)
        ax.set_xlabel("neuron j")
        ax.set_ylabel("neuron i")
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.suptitle("Learned change of the conductance matrix")
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


def _glyph_rows(container, cues: np.ndarray, recalled: np.ndarray, targets: np.ndarray | None,
                shape: tuple[int, int], titles: Sequence[str] | None) -> None:
    """One row per cue in a figure or subfigure: cue → recalled → target (+1 dark); the
    recalled glyph framed green when it is the target exactly, red when not."""
    cols = 3 if targets is not None else 2
    axes = container.subplots(len(cues), cols, squeeze=False)
    heads = ["cue", "recalled", "target"][:cols]
    for i in range(len(cues)):
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


def recall_grid(
    cues: np.ndarray, recalled: np.ndarray, targets: np.ndarray | None = None,
    shape: tuple[int, int] = GLYPH_SHAPE, titles: Sequence[str] | None = None,
) -> Figure:
    """One row per cue: cue → recalled → target, each a ±1 glyph (+1 dark)."""
    cues, recalled = np.atleast_2d(cues), np.atleast_2d(recalled)
    cols = 3 if targets is not None else 2
    fig = _figure(1.3 * cols + 1.6, 1.55 * len(cues) + 0.4)
    _glyph_rows(fig, cues, recalled, targets, shape, titles)
    fig.suptitle("Recall: cue → recalled → target", fontsize=10)
    return fig


def accuracy_per_epoch(table: pd.DataFrame) -> Figure:
    """``table``: an ``epoch`` column and rate columns in [0, 1] (bit accuracy, exact recall ...)."""
    fig = _figure(6.5, 4.6)
    ax = fig.subplots()
    shown = []
    for k, col in enumerate(c for c in table.columns if c != "epoch"):
        # equal rates (exact = correct is common) must not hide one another: each its own
        # marker, line style and a small offset of the marker size
        marker, ls, ms = _RATE_STYLES[k % len(_RATE_STYLES)]
        ax.plot(table["epoch"], 100 * table[col], marker=marker, ls=ls, ms=ms, mfc="none" if k else None,
                lw=1.4, label=ACCURACY_KEYS.get(col, col))
        shown.append(ACCURACY_KEYS.get(col, col))
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("rate (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Recall accuracy per epoch")
    notes = [f"{name}: {RATE_DEFINITIONS[name]}" for name in dict.fromkeys(shown) if name in RATE_DEFINITIONS]
    if notes:
        fig.text(0.01, 0.0, "\n".join(notes), fontsize=6.5, va="bottom", ha="left", wrap=True)
        fig.get_layout_engine().set(rect=(0, 0.04 * len(notes) + 0.02, 1, 1 - 0.04 * len(notes) - 0.02))
    return fig


# --------------------------------------------------------------------------- characterization


_NAMED_UNITS = {"current": "A", "voltage": "V", "g": "S", "g_std": "S", "g_fit": "S", "delta_g": "S",
                "g_inf": "S", "times": "s", "time": "s", "tau": "s"}
_SUFFIX_UNITS = (("_per_s", "1/s"), ("_S", "S"), ("_V", "V"), ("_s", "s"), ("_A", "A"), ("_ohm", "Ω"), ("_W", "W"))


# Physics names of record keys, for axis labels: a physicist reads "current I (A)", not "current (A)".
_LONG_NAMES = {"voltage": "voltage V", "current": "current I", "g": "conductance G", "g_std": "read noise σ_G",
               "g_fit": "fitted conductance", "delta_g": "change ΔG", "delta_g_S": "change ΔG",
               "times_s": "time t", "time": "time t", "tau_s": "relaxation time τ", "g_inf": "rest conductance G_∞",
               "amplitude_V": "pulse amplitude |V|", "amplitudes_V": "pulse amplitude |V|",
               "widths_s": "pulse width", "width_s": "pulse width", "drift_per_decade": "drift per decade of time"}


def _unit_label(key: str) -> str:
    """Axis label with the unit read off the key (``delta_g_S`` → S, ``widths_s`` → s)."""
    name = _LONG_NAMES.get(key)
    if name is not None:
        unit = next((u for suffix, u in _SUFFIX_UNITS if key.endswith(suffix)), _NAMED_UNITS.get(key.lower(), "1"))
        return f"{name} ({unit})"
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
    xs = [np.asarray(x, float) for series in panels.values() for x, _ in series.values()]
    if xs:
        set_time_scale(axes[-1], np.concatenate(xs))  # log-spaced x (times, widths) on a log axis
    fig.suptitle(title, fontsize=10)
    return fig


def threshold_curves(rows: Sequence[Mapping[str, Any]], max_devices: int = 4) -> Figure:
    """A device's learning rule: ΔG per pulse (nS) against pulse amplitude, one panel per
    device, each polarity in its colour, measured points with error bars, the fitted law
    drawn, the fitted threshold V_d marked. ``rows``: records of a characterize run, each with
    ``lines``, ``polarity``, ``amplitude_V``, ``delta_g_S`` (± ``delta_g_err_S``),
    ``threshold_V`` and optionally the fit curve ``fit_amplitude_V``/``fit_curve_delta_g_S``."""
    devices = list(dict.fromkeys(str(r["lines"]) for r in rows))[:max_devices]
    fig = _figure(6.5, 2.8 * len(devices) + 0.8)
    axes = fig.subplots(len(devices), 1, squeeze=False)[:, 0]
    colours = {"positive": "tab:red", "negative": "tab:blue"}
    for ax, dev in zip(axes, devices):
        marked = set()
        for r in (r for r in rows if str(r["lines"]) == dev):
            pol, c = str(r["polarity"]), colours.get(str(r["polarity"]), "k")
            v = np.asarray(r["amplitude_V"], float)
            dg = 1e9 * np.asarray(r["delta_g_S"], float)
            err = 1e9 * np.asarray(r.get("delta_g_err_S", np.zeros_like(v)), float)
            ax.errorbar(v, dg, yerr=err, fmt="o", ms=3, color=c, alpha=0.8, label=f"{pol}: measured")
            if r.get("fit_amplitude_V") is not None:
                ax.plot(np.asarray(r["fit_amplitude_V"], float), 1e9 * np.asarray(r["fit_curve_delta_g_S"], float),
                        "-", color=c, label=f"{pol}: fit")
            vd = float(r.get("threshold_V", np.nan))
            if np.isfinite(vd) and round(vd, 6) not in marked:
                marked.add(round(vd, 6))
                ax.axvline(vd, color="0.3", ls="--", lw=1)
                ax.annotate(f"V_d = {vd:.3g} V", (vd, 0.95), xycoords=("data", "axes fraction"),
                            ha="right", va="top", fontsize=7, rotation=90)
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_ylabel("ΔG per pulse (nS)")
        ax.set_title(f"device {dev}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[-1].set_xlabel("pulse amplitude across the device |V| (V)")
    fig.suptitle("Learning rule: conductance change per pulse against amplitude", fontsize=10)
    return fig



# --------------------------------------------------------------------------- recall outcome per pattern


def recall_confusion(targets: Sequence[int], overlaps: Sequence[Sequence[float]], threshold: float = 0.9) -> np.ndarray:
    """Per-pattern outcome counts, P × (P + 1): row = the pattern cued, column = the stored
    pattern retrieved (overlap m ≥ ``threshold`` and the largest), the last column "none"
    (a spurious or mixed state)."""
    ov = np.asarray(overlaps, dtype=float)
    p = ov.shape[1]
    out = np.zeros((p, p + 1))
    for t, m in zip(targets, ov):
        best = int(np.argmax(m))
        out[int(t), best if m[best] >= threshold else p] += 1
    return out


def recall_with_confusion(cues: np.ndarray, recalled: np.ndarray, targets: np.ndarray | None,
                          shape: tuple[int, int], titles: Sequence[str] | None, confusion: np.ndarray,
                          names: Sequence[str]) -> Figure:
    """The glyph grid (cue → recalled → target) beside the per-pattern confusion matrix:
    which stored pattern each cued one ended in, in % of its cues."""
    cues, recalled = np.atleast_2d(cues), np.atleast_2d(recalled)
    cols = 3 if targets is not None else 2
    k = len(cues)
    p = confusion.shape[0]
    fig = _figure(1.3 * cols + 1.6 + 0.45 * p + 2.6, max(1.55 * k + 0.4, 0.45 * p + 2.2))
    left, right = fig.subfigures(1, 2, width_ratios=[1.3 * cols + 1.6, 0.45 * p + 2.6])
    _glyph_rows(left, cues, recalled, targets, shape, titles)
    left.suptitle("examples: cue → recalled → target\n(green frame: exact recall)", fontsize=9)
    ax = right.subplots()
    rows = confusion.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        pct = np.where(rows > 0, 100 * confusion / np.where(rows > 0, rows, 1), np.nan)
    im = ax.imshow(pct, vmin=0, vmax=100, cmap="Blues", interpolation="nearest")
    for (i, j), v in np.ndenumerate(pct):
        if np.isfinite(v) and confusion[i, j]:
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="white" if v > 60 else "black")
    ax.set_xticks(range(p + 1), [*names, "none"], rotation=90, fontsize=7)
    ax.set_yticks(range(p), [f"{n} ({int(c)})" for n, c in zip(names, rows[:, 0])], fontsize=7)
    ax.set_xlabel("retrieved pattern\n(overlap m ≥ 0.9 and the largest)", fontsize=8)
    ax.set_ylabel("cued pattern (number of cues)", fontsize=8)
    right.colorbar(im, ax=ax, label="share of the pattern's cues (%)", location="bottom", shrink=0.9, aspect=15)
    right.suptitle("Per-pattern confusion matrix", fontsize=9)
    return fig


# --------------------------------------------------------------------------- retention and device physics


def _log_spaced(x: np.ndarray) -> bool:
    """True for positive values spread over more than a decade with roughly even ratios."""
    x = np.asarray(x, float)
    pos = np.unique(x[np.isfinite(x) & (x > 0)])
    if pos.size < 3 or pos[-1] / pos[0] < 10:
        return False
    steps = np.diff(np.log10(pos))
    return bool(np.std(steps) < 0.5 * np.mean(steps) or np.ptp(np.diff(pos)) > 10 * np.min(np.diff(pos)))


def set_time_scale(ax: Any, x: np.ndarray, axis: str = "x") -> None:
    """A log axis for log-spaced values; symlog (linear near 0) if they start at 0."""
    x = np.asarray(x, float)
    if not _log_spaced(x):
        return
    pos = x[np.isfinite(x) & (x > 0)]
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    if (x[np.isfinite(x)] <= 0).any():
        setter("symlog", linthresh=float(pos.min()), linscale=0.5)
    else:
        setter("log")


def retention_curves(times_s: np.ndarray, g: np.ndarray, fits: Sequence[Mapping[str, float]],
                     labels: Sequence[str]) -> Figure:
    """G(t) after programming per device (µS, and ΔG/G(0) in %), on a log time axis (the
    read times are log-spaced), with the fit G(t) = G_∞ + (G(0) − G_∞)·exp(−t/τ) drawn."""
    t = np.asarray(times_s, float)
    g = np.asarray(g, float).reshape(len(t), -1)
    fig = _figure(6.5, 6.0)
    a, b = fig.subplots(2, 1, sharex=True)
    tt = np.unique(np.concatenate([t, np.geomspace(max(t[t > 0].min(), 1e-9), t.max(), 200)])) if (t > 0).any() else t
    for d in range(g.shape[1]):
        lab = labels[d] if d < len(labels) else f"device {d}"
        line = a.plot(t, g[:, d] * 1e6, "o", label=f"{lab}: measured")[0]
        b.plot(t, 100 * (g[:, d] - g[0, d]) / g[0, d], "o-", color=line.get_color(), label=lab)
        f = fits[d] if d < len(fits) else {}
        tau, g_inf = float(f.get("tau_s", np.nan)), float(f.get("g_inf", np.nan))
        if np.isfinite(g_inf):
            fit = g_inf + (g[0, d] - g_inf) * (np.exp(-tt / tau) if np.isfinite(tau) and tau > 0 else 1.0)
            a.plot(tt, np.broadcast_to(fit, tt.shape) * 1e6, "-", color=line.get_color(), lw=1,
                   label=f"{lab}: fit, τ = {tau:.3g} s" if np.isfinite(tau) else f"{lab}: fit, no relaxation seen (τ = ∞)")
    a.set_ylabel("conductance G (µS)")
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    b.axhline(0, color="0.6", lw=0.8)
    b.set_ylabel("change since t = 0, ΔG/G(0) (%)")
    b.set_xlabel("time after programming t (s)")
    b.grid(alpha=0.3, which="both")
    set_time_scale(b, t)
    b.set_xlim(left=min(0.0, float(np.nanmin(t))))
    fig.suptitle("Retention: G(t) = G_∞ + (G(0) − G_∞)·exp(−t/τ)", fontsize=10)
    return fig


def device_characterization(rec: Mapping[str, Any]) -> Figure:
    """One device's characterization, in physics terms: the change per pulse ΔG/G0 (%)
    against amplitude with the fitted law, threshold V_d and onset marked; ΔG against
    pulse width (log-log); the programming curve G against pulse number."""
    amps = np.asarray(rec.get("amplitudes_V") or [], float)
    g0 = float(rec.get("g_initial_S") or np.nan)
    widths = np.asarray(rec.get("widths_s") or [], float)
    up, down = np.asarray(rec.get("curve_up_S") or [], float), np.asarray(rec.get("curve_down_S") or [], float)
    panels = [p for p, ok in (("amp", amps.size > 1), ("width", widths.size > 1), ("curve", up.size + down.size > 1)) if ok]
    fig = _figure(6.5, 2.7 * max(1, len(panels)) + 0.8)
    axes = fig.subplots(max(1, len(panels)), 1, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels):
        if panel == "amp":
            dg = np.asarray(rec.get("delta_g_S") or [], float)
            err = np.asarray(rec.get("delta_g_err_S") or np.zeros_like(dg), float)
            fit = np.asarray(rec.get("fit_delta_g_S") or [], float)
            order = np.argsort(amps, kind="stable")
            ax.errorbar(amps, 100 * dg / g0, yerr=100 * err / g0, fmt="o", ms=3, label="measured")
            if fit.size == amps.size:
                ax.plot(amps[order], 100 * fit[order] / g0, "-", label="fit (creep + flow law)")
            for key, name, style in (("threshold_V", "V_d", "--"), ("onset_V", "onset", ":")):
                v = float(rec.get(key) or np.nan)
                if np.isfinite(v):
                    ax.axvline(v, color="0.3", ls=style, lw=1)
                    ax.annotate(f"{name} = {v:.3g} V", (v, 0.95), xycoords=("data", "axes fraction"),
                                ha="right", va="top", fontsize=7, rotation=90)
            ax.axhline(0, color="0.6", lw=0.8)
            ax.set_xlabel("pulse amplitude across the device V (V; the sign is the polarity)")
            ax.set_ylabel("ΔG/G0 per pulse (%)")
            ax.legend(fontsize=7)
        elif panel == "width":
            dgw = np.abs(np.asarray(rec.get("width_delta_g_S") or [], float)) * 1e9
            ax.plot(widths, dgw, "o-" if np.unique(widths).size == widths.size else "o")  # two polarities per width: no zigzag
            ax.set_xscale("log")
            if (dgw > 0).all():
                ax.set_yscale("log")
            ax.set_xlabel("pulse width (s)")
            ax.set_ylabel("|ΔG| per pulse (nS)")
        else:
            for curve, name in ((up, "potentiation"), (down, "depression")):
                if curve.size:
                    ax.plot(np.arange(1, curve.size + 1), curve * 1e6, "o-", ms=3, label=name)
            ax.set_xlabel("pulse number")
            ax.set_ylabel("conductance G (µS)")
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"Device {rec.get('lines', '')}: G0 = {g0 * 1e6:.4g} µS, threshold V_d = "
                 f"{float(rec.get('threshold_V') or np.nan):.3g} V", fontsize=10)
    return fig
