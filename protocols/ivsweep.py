"""IVSweep: current versus read voltage of one device, guarded against sneak paths."""
from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping

import numpy as np
from pydantic import Field, model_validator

from lab.operations import BenchInfo, PairResult, ReadPair, Record

from .base import Plan, Protocol
from .common import line_pairs


class IVSweep(Protocol):
    """Read the device between lines ``a`` and ``b`` at each voltage of a sweep.

    Voltages stay at read level (≤ the bench's read ceiling), so the sweep does not move
    the state; it checks the read-out is ohmic and symmetric and gives G(V). The sweep
    goes 0 → +v_max → −v_max → 0 in ``points`` steps per leg unless ``voltages`` is given.
    """

    name: ClassVar[str] = "iv_sweep"
    figures: ClassVar[Mapping[str, str]] = {"iv": "curves", "reads": "none"}

    a: int | str | None = Field(None,
        description="first line of the device (index or name, e.g. 'C0'; default: the bench's first device)")
    b: int | str | None = Field(None, description="second line of the device (index or name; default: the bench's first device)")
    v_max: float | None = Field(None, gt=0,
        description="top of the sweep (default: the bench's read ceiling v_read_max_V)")
    points: int = Field(5, ge=1, description="steps per leg of 0 → +v_max → −v_max → 0")
    voltages: tuple[float, ...] | None = Field(None,
        description="explicit sweep voltages instead of v_max and points (no 0)")
    repeats: int = Field(1, ge=1, description="reads averaged per point")
    scheme: Literal["guarded", "floating"] = Field("guarded", description="'guarded' (no sneak current) or 'floating'")

    @model_validator(mode="after")
    def _no_zero(self) -> "IVSweep":
        if self.voltages is not None and any(v == 0 for v in self.voltages):
            raise ValueError("voltages: a read at 0 V measures no conductance; leave 0 out")
        return self

    def sweep(self, bench: BenchInfo) -> np.ndarray:
        if self.voltages is not None:
            v = np.array(self.voltages, dtype=float)
        else:
            top = self.v_max if self.v_max is not None else bench.v_read_max
            leg = top * np.arange(1, self.points + 1) / self.points
            v = np.concatenate([leg, leg[::-1][1:], -leg, -leg[::-1][1:]])
        worst = float(np.max(np.abs(v)))
        if worst > bench.v_read_max + 1e-12:
            raise ValueError(
                f"IV sweep reaches {worst:g} V, above the bench read ceiling {bench.v_read_max:g} V "
                "(a sweep that writes is a Characterize job)"
            )
        return v

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        if (self.a is None) != (self.b is None):
            raise ValueError("iv_sweep: give both lines a and b, or neither (the bench's first device)")
        (a, b), = line_pairs(bench, None if self.a is None else ((self.a, self.b),))
        volts = self.sweep(bench)
        current, g, g_std = [], [], []
        for v in volts:
            # ReadPair drives a positive; a negative voltage is the same read with the lines swapped
            lo, hi = (a, b) if v > 0 else (b, a)
            r: PairResult = yield ReadPair(lo, hi, v_read=float(abs(v)), repeats=self.repeats, scheme=self.scheme)
            current.append(np.sign(v) * abs(r.current))
            g.append(r.g)
            g_std.append(r.g_std)
        current_a, g_a = np.array(current), np.array(g)
        slope = float(np.polyfit(volts, current_a, 1)[0]) if len(volts) > 1 else float(g_a[0])
        nonlinearity = float(np.std(g_a) / np.mean(g_a)) if len(g_a) > 1 else 0.0
        out = {
            "voltage": volts,
            "current": current_a,
            "g": g_a,
            "g_std": np.array(g_std),
            "g_fit": slope,
            "g_relative_spread": nonlinearity,
            "lines": (bench.line_names[a], bench.line_names[b]),
        }
        yield Record("iv", {k: v for k, v in out.items() if k != "lines"})
        return out
