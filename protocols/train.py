"""Training protocols: the patterns go on the lines as voltages and the devices learn by themselves.

No protocol here computes or writes a weight. ``TrainHopfield`` is the paper's clamped
training: each pattern is held on the neurons and the current it drives through the
array changes the conductances (Oja-like, with the device's soft bounds as the decay).
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lab.operations import BenchInfo, Checkpoint, MatrixResult, Note, Pulse, ReadMatrix, Record, Wait

from .base import Plan, Protocol
from .common import PatternChoice, check_voltage, outer_product_phases, pattern_voltages, symmetric_matrix

Encoding = Literal["pattern", "outer_product"]


def encode(bench: BenchInfo, s: np.ndarray, v: float, encoding: Encoding, sign: int = 1) -> list[dict[int, float]]:
    """Line-voltage phases that present the state ``s`` to the array.

    "pattern": every line of neuron i at sign·s_i·V, so a device sees (s_i − s_j)·V; only
    anti-aligned pairs carry current (the paper's film, or a tied crossbar).
    "outer_product": crossbar V/2 phases putting sign·s_i s_j·V across device (i, j): for
    bipolar devices, whose conductance moves up or down with the polarity.
    """
    if encoding == "pattern":
        return [pattern_voltages(bench, sign * s, v)]
    if encoding == "outer_product":
        return [volts for volts, _ in outer_product_phases(bench, sign * s, s, v)]
    raise ValueError(f"unknown encoding {encoding!r}")


class PulseShape(BaseModel):
    """A pulse train's timing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width_s: float = Field(1e-3, gt=0)
    count: int = Field(1, ge=1)
    period_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _period_fits(self) -> "PulseShape":
        if self.period_s is not None and self.period_s < self.width_s:
            raise ValueError(f"period_s {self.period_s} is shorter than width_s {self.width_s}")
        return self


class TrainHopfield(Protocol):
    """Clamped training: for each epoch and pattern, hold the pattern on the lines as voltages.

    Each presentation is a pulse train (``pulse``) at ±``v_train`` on the neuron lines in
    the chosen ``encoding``, followed by ``recovery_s`` of rest at 0 V (lets Joule heat
    and any transient relax before the next pattern). The matrix is read every
    ``read_every`` epochs and after the last one.
    """

    name: ClassVar[str] = "train_hopfield"

    patterns: PatternChoice
    epochs: int = Field(10, ge=1)
    v_train: float = Field(..., gt=0)
    pulse: PulseShape = PulseShape()
    encoding: Encoding = "pattern"
    order: Literal["sequential", "shuffled"] = "sequential"
    order_seed: int = 0
    recovery_s: float = Field(0.0, ge=0)
    read_every: int = Field(1, ge=0)
    read_repeats: int = Field(1, ge=1)
    v_read: float | None = Field(None, gt=0)

    def presentations(self, bench: BenchInfo) -> list[tuple[int, int, np.ndarray]]:
        """(epoch, pattern index, state) in the order they are applied."""
        _, x = self.patterns.for_bench(bench)
        rng = np.random.default_rng(self.order_seed)
        out = []
        for epoch in range(self.epochs):
            idx = rng.permutation(len(x)) if self.order == "shuffled" else np.arange(len(x))
            out.extend((epoch, int(k), x[k]) for k in idx)
        return out

    def check(self, bench: BenchInfo) -> None:
        _, x = self.patterns.for_bench(bench)
        for volts in encode(bench, x[0], self.v_train, self.encoding):
            check_voltage(bench, "v_train", volts)
        if self.pulse.width_s > bench.max_pulse_width_s:
            raise ValueError(f"pulse.width_s {self.pulse.width_s} s exceeds the bench limit {bench.max_pulse_width_s} s")
        if self.v_read is not None and self.v_read > bench.v_read_max:
            raise ValueError(f"v_read = {self.v_read} V exceeds the bench read ceiling {bench.v_read_max} V")

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        self.check(bench)
        names, _ = self.patterns.for_bench(bench)
        start = int(resume.get("epoch", 0)) if resume else 0
        plan = self.presentations(bench)
        yield Note(f"clamped training of {' '.join(names)} for epochs {start + 1}..{self.epochs}")
        matrices: list[np.ndarray] = []
        read_epochs: list[int] = []
        for epoch in range(start, self.epochs):
            for _, k, s in (p for p in plan if p[0] == epoch):
                for volts in encode(bench, s, self.v_train, self.encoding):
                    yield Pulse.of(volts, self.pulse.width_s, self.pulse.count, self.pulse.period_s)
                if self.recovery_s > 0:
                    yield Wait(self.recovery_s)
            yield Record("train_epoch", {"epoch": epoch + 1, "order": [k for e, k, _ in plan if e == epoch]})
            last = epoch + 1 == self.epochs
            if last or (self.read_every and (epoch + 1) % self.read_every == 0):
                m = yield from read_matrix(bench, self.read_repeats, self.v_read, epoch + 1)
                matrices.append(m)
                read_epochs.append(epoch + 1)
            yield Checkpoint({"epoch": epoch + 1})
        return {"epochs": read_epochs, "matrices": matrices}


def read_matrix(bench: BenchInfo, repeats: int, v_read: float | None, epoch: int):
    """Read the whole array, archive it under ``conductance`` and return the (N, N) matrix."""
    res: MatrixResult = yield ReadMatrix(v_read=v_read, repeats=repeats)
    matrix = symmetric_matrix(bench, res.g)
    yield Record("conductance", {"epoch": epoch, "g": res.g, "g_std": res.g_std, "matrix": matrix})
    return matrix
