"""Retention: how programmed conductances relax at rest."""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lab.operations import BenchInfo, Pulse, ReadMatrix, Record, Wait

from .base import Plan, Protocol
from .common import check_voltage, device_between, half_select, line_pairs


class ProgramPulse(BaseModel):
    """A V/2 pulse train on one device before the retention reads (to start away from rest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: float = Field(description="voltage across the selected device; its sign is the polarity")
    width_s: float = Field(1e-3, gt=0, description="width of one programming pulse")
    count: int = Field(1, ge=1, description="programming pulses")


class Retention(Protocol):
    """Read the chosen devices at the given times after an optional programming pulse.

    Fits G(t) = G_∞ + (G_0 − G_∞)·exp(−t/τ) per device, the form of thermally activated
    relaxation toward a rest texture; τ = ∞ (no relaxation seen) is reported as inf.
    """

    name: ClassVar[str] = "retention"
    figures: ClassVar[Mapping[str, str]] = {"retention": "retention", "reads": "none"}

    pairs: tuple[tuple[int | str, int | str], ...] | None = Field(None,
        description="devices as line pairs [[a, b], ...] (index or name; default: the bench's first device)")
    times_s: tuple[float, ...] = Field((0.0, 1.0, 10.0, 100.0, 1000.0),
        description="read times after the programming, strictly increasing")
    program: ProgramPulse | None = Field(None,
        description="a V/2 pulse train before the reads, to start away from rest (default: none)")
    repeats: int = Field(1, ge=1, description="reads averaged at each time")
    v_read: float | None = Field(None, gt=0, description="read voltage (default: the bench's v_read_default_V)")

    @field_validator("times_s")
    @classmethod
    def _increasing(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(t < 0 for t in v) or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("times_s must be non-negative and strictly increasing")
        return v

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        lines = line_pairs(bench, self.pairs)
        devices = tuple(device_between(bench, a, b) for a, b in lines)
        if self.program is not None:
            for a, b in lines:
                volts = half_select(bench, a, b, self.program.v)
                check_voltage(bench, "program.v", volts)
                yield Pulse.of(volts, self.program.width_s, self.program.count)
        g = np.full((len(self.times_s), len(devices)), np.nan)
        elapsed = 0.0
        for k, t in enumerate(self.times_s):
            if t > elapsed:
                yield Wait(t - elapsed)
                elapsed = t
            m = yield ReadMatrix(devices=devices, v_read=self.v_read, repeats=self.repeats)
            g[k] = np.asarray(m.g)[list(devices)]
        noise = np.nanmedian(np.asarray(m.g_std)[list(devices)]) * np.sqrt(self.repeats) if self.repeats > 1 else 0.0
        fit = [fit_relaxation(np.array(self.times_s), g[:, d], noise) for d in range(len(devices))]
        out = {
            "times_s": np.array(self.times_s),
            "g": g,
            "tau_s": np.array([f["tau_s"] for f in fit]),
            "g_inf": np.array([f["g_inf"] for f in fit]),
            "drift_per_decade": np.array([f["drift_per_decade"] for f in fit]),
        }
        yield Record("retention", out)
        return out


def fit_relaxation(t: np.ndarray, g: np.ndarray, noise: float = 0.0) -> dict[str, float]:
    """Exponential relaxation toward G_∞, and the drift per decade of time for comparison.

    A change within 3 read-noise σ (``noise``, S) of nothing is no relaxation: τ = inf.
    """
    t = np.asarray(t, dtype=float)
    g = np.asarray(g, dtype=float)
    pos = t > 0
    drift = float(np.polyfit(np.log10(t[pos]), g[pos], 1)[0]) if pos.sum() >= 2 else 0.0
    span = float(g.max() - g.min())
    if len(t) < 3 or span == 0 or span < 3 * np.sqrt(2) * noise:
        return {"tau_s": float("inf"), "g_inf": float(g[-1]), "drift_per_decade": drift}
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    def model(tt, g_inf, g0, log_tau):
        return g_inf + (g0 - g_inf) * np.exp(-tt / np.exp(log_tau))

    best = None
    for tau0 in np.geomspace(max(t[pos].min(), 1e-6) if pos.any() else 1.0, max(t.max(), 1e-6) * 10, 6):
        try:
            # flat data make the covariance (unused) undefined; a hopeless start overflows
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", OptimizeWarning)
                p, _ = curve_fit(model, t, g, p0=(g[-1], g[0], np.log(tau0)), maxfev=2000)
        except RuntimeError:
            continue
        with np.errstate(all="ignore"):
            err = float(np.sum((model(t, *p) - g) ** 2))
        if best is None or err < best[0]:
            best = (err, p)
    if best is None or not np.isfinite(best[1]).all() or np.exp(best[1][2]) > 1e3 * max(t.max(), 1e-9):
        return {"tau_s": float("inf"), "g_inf": float(g[-1]), "drift_per_decade": drift}
    g_inf, _, log_tau = best[1]
    return {"tau_s": float(np.exp(log_tau)), "g_inf": float(g_inf), "drift_per_decade": drift}
