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

