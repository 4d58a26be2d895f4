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
from .common import (
    PatternChoice, check_voltage, outer_product_phases, pattern_voltages, self_free_groups, symmetric_matrix,
)

Encoding = Literal["pattern", "outer_product"]


def encode(
    bench: BenchInfo, s: np.ndarray, v: float, encoding: Encoding, potentiate_polarity: int = -1,
    levels: str = "split", rng: np.random.Generator | None = None,
) -> list[dict[int, float]]:
    """Line-voltage phases that present the state ``s`` to the array.

    "pattern": every line of neuron i at s_i·V, so a device sees (s_i − s_j)·V; only
    anti-aligned pairs carry current (the paper's film, or a tied crossbar), which lowers
    their conductance in a unipolar device: Hebbian by itself.
    "outer_product": crossbar V/2 phases putting potentiate_polarity·s_i s_j·V across
    device (i, j), for bipolar devices whose conductance moves with the polarity:
    ``potentiate_polarity`` is the sign of the device voltage that raises G. With ``rng``
    the self-couplings (row i, column i) are left alone (see ``self_free_groups``).
    """
    if encoding == "pattern":
        return [pattern_voltages(bench, s, v, levels)]
    if encoding == "outer_product":
        rows = potentiate_polarity * np.asarray(s, dtype=float)
        if rng is None:
            return [volts for volts, _ in outer_product_phases(bench, rows, s, v)]
        phases = []
        for group in self_free_groups(np.ones(len(s), dtype=bool), rng):
            cols = np.zeros(len(s))
            cols[group] = np.asarray(s, dtype=float)[group]
            r = rows.copy()
            r[group] = 0.0
            phases += [volts for volts, _ in outer_product_phases(bench, r, cols, v)]
        return phases
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

    Each presentation is a pulse train (``pulse``) of the pattern in the chosen ``encoding``
    (``levels``: "single" puts the + lines at 2·v_train and the − lines at 0 V, "split" at
    ±v_train; the devices see the same), followed by ``recovery_s`` of rest at 0 V (lets Joule heat
    and any transient relax before the next pattern). The matrix is read every
    ``read_every`` epochs and after the last one; ``read_first`` also reads the untrained
    array (the baseline a recall subtracts).
    """

    name: ClassVar[str] = "train_hopfield"

    # Defaults: the dissimilar glyph set at the film-amr preset's calibrated operating point.
    patterns: PatternChoice = PatternChoice(names=("L", "T", "X", "O"))
    epochs: int = Field(10, ge=1)
    v_train: float = Field(1.0, gt=0)
    pulse: PulseShape = PulseShape()
    encoding: Encoding = "pattern"
    levels: Literal["split", "single"] = "split"
    potentiate_polarity: Literal[1, -1] = -1
    spare_self: bool = False
    order: Literal["sequential", "shuffled"] = "sequential"
    order_seed: int = 0
    recovery_s: float = Field(0.0, ge=0)
    read_every: int = Field(1, ge=0)
    read_first: bool = False
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
        for volts in encode(bench, x[0], self.v_train, self.encoding, self.potentiate_polarity, self.levels):
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
        # spare_self: never pulse a crossbar's self-couplings (random half splits, see self_free_groups)
        split = np.random.default_rng([self.order_seed, start, 1]) if (
            self.spare_self and self.encoding == "outer_product") else None
        matrices: list[np.ndarray] = []
        read_epochs: list[int] = []
        if self.read_first and start == 0:
            m = yield from read_matrix(bench, self.read_repeats, self.v_read, 0)
            matrices.append(m)
            read_epochs.append(0)
        for epoch in range(start, self.epochs):
            for _, k, s in (p for p in plan if p[0] == epoch):
                for volts in encode(bench, s, self.v_train, self.encoding, self.potentiate_polarity, self.levels, split):
                    yield Pulse.of(volts, self.pulse.width_s, self.pulse.count, self.pulse.period_s)
                if self.recovery_s > 0:
                    yield Wait(self.recovery_s)
            yield Record("train_epoch", {"epoch": epoch + 1, "order": np.array([k for e, k, _ in plan if e == epoch])})
            last = epoch + 1 == self.epochs
            if last or (self.read_every and (epoch + 1) % self.read_every == 0):
                m = yield from read_matrix(bench, self.read_repeats, self.v_read, epoch + 1)
                matrices.append(m)
                read_epochs.append(epoch + 1)
            yield Checkpoint({"epoch": epoch + 1})
        return {"epochs": read_epochs, "g": matrices}


def read_matrix(bench: BenchInfo, repeats: int, v_read: float | None, epoch: int):
    """Read the whole array, archive it under ``conductance`` and return the per-device G."""
    res: MatrixResult = yield ReadMatrix(v_read=v_read, repeats=repeats)
    matrix = symmetric_matrix(bench, res.g)
    yield Record("conductance", {"epoch": epoch, "g": res.g, "g_std": res.g_std, "matrix": matrix})
    return np.asarray(res.g, dtype=float)


class TrainErrorDriven(Protocol):
    """Error-driven two-phase training: the device learns only where the network is wrong.

    Each epoch the array is read (the measurement the decisions are made from). For each
    pattern ξ, the *clamped* phase asks what the network does with ξ on its inputs (and
    with ``noisy_probes`` noisy copies of ξ): every output neuron i whose measured field
    fails ξ_i·h_i > margin·‖W_i‖ (wrong, or right with too little margin; ‖W_i‖ is the
    measured norm of its weights) is in error. The *update* phase then pulses, with the
    V/2 scheme, only the devices feeding the neurons in error, with the polarity of
    ξ_i·s_j: potentiating the target where it agrees with the input and depressing where
    it does not. Neurons already right with margin get nothing, so learning stops by
    itself; the pulse count shrinks by ``anneal`` per epoch to settle.

    This is the perceptron rule with margin (Krauth–Mézard), carried out by the devices:
    the protocol decides *which* devices to pulse and with which sign from measured fields,
    the magnitude of each change is the device's own response (soft bounds, spread, noise).

    Encodings: "outer_product" (crossbar, bipolar devices: rows carry the input, columns
    the neurons in error) or "symmetric" (film or tied crossbar with unipolar devices:
    only the depressing half is possible, on pairs joining a neuron in error to an input
    of the opposite sign).
    """

    name: ClassVar[str] = "train_error_driven"
    adaptive: ClassVar[bool] = True

    patterns: PatternChoice
    epochs: int = Field(20, ge=1)
    v_train: float = Field(..., gt=0)  # across a selected device (lines at ±v_train/2)
    pulse: PulseShape = PulseShape(width_s=1e-3, count=20)
    anneal: float = Field(0.85, gt=0, le=1)
    count_min: int = Field(2, ge=1)
    margin: float = Field(1.5, ge=0)
    noisy_probes: int = Field(0, ge=0)
    flip_fraction: float = Field(0.1, ge=0, le=1)
    probe: Literal["matrix", "materio"] = "matrix"
    encoding: Literal["auto", "outer_product", "symmetric"] = "auto"
    potentiate_polarity: Literal[1, -1] = -1
    spare_self: bool = False
    baseline: tuple[float, ...] | None = None
    reference: Literal["mean", "row_mean"] | float = "mean"
    read_repeats: int = Field(4, ge=1)
    v_read: float | None = Field(None, gt=0)
    seed: int = 0

    def kind(self, bench: BenchInfo) -> str:
        if self.encoding != "auto":
            return self.encoding
        untied = bench.topology == "crossbar" and all(len(lines) == 1 for lines in bench.neuron_lines)
        return "outer_product" if untied else "symmetric"

    def count(self, epoch: int) -> int:
        return max(self.count_min, int(round(self.pulse.count * self.anneal**epoch)))

    def update_phases(self, bench: BenchInfo, target: np.ndarray, s: np.ndarray, errors: np.ndarray,
                      rng: np.random.Generator | None = None):
        """Line voltages that move the weights of the neurons in error toward target_i·s_j.

        On a crossbar with ``spare_self`` a neuron's self-coupling (row i, column i) is never
        pulsed: the neurons in error are split at random in two halves, each pulsed with its
        own rows held at 0 V, so a weight between two neurons in error moves half the time.
        Measured on the 35-neuron crossbar that randomness costs more recall than the
        self-couplings do, so by default they are trained like every other weight.
        """
        v = self.v_train
        if self.kind(bench) == "outer_product":
            if not self.spare_self:
                cols = np.where(errors, target, 0.0)
                rows = self.potentiate_polarity * np.asarray(s, dtype=float)
                return [volts for volts, _ in outer_product_phases(bench, rows, cols, v)]
            rng = rng if rng is not None else np.random.default_rng(0)
            phases = []
            for group in self_free_groups(errors, rng):
                cols = np.zeros(bench.n_neurons)
                cols[group] = target[group]
                rows = self.potentiate_polarity * np.asarray(s, dtype=float)
                rows[group] = 0.0
                phases += [volts for volts, _ in outer_product_phases(bench, rows, cols, v)]
            return phases
        phases = []
        for sign in (1.0, -1.0):
            src = errors & (target == sign)
            dst = (s == -sign) & ~src
            if src.any() and dst.any():
                u = np.zeros(bench.n_neurons)
                u[src], u[dst] = v / 2, -v / 2
                phases.append(bench.neuron_voltages(u))
        return phases

    def check(self, bench: BenchInfo) -> None:
        self.patterns.for_bench(bench)
        check_voltage(bench, "v_train/2", self.v_train / 2)
        if self.kind(bench) == "outer_product" and bench.topology != "crossbar":
            raise ValueError("encoding 'outer_product' needs a crossbar")
        if self.pulse.width_s > bench.max_pulse_width_s:
            raise ValueError(f"pulse.width_s {self.pulse.width_s} s exceeds the bench limit {bench.max_pulse_width_s} s")
        if self.v_read is not None and self.v_read > bench.v_read_max:
            raise ValueError(f"v_read = {self.v_read} V exceeds the bench read ceiling {bench.v_read_max} V")
        if self.baseline is not None and len(self.baseline) != bench.n_devices:
            raise ValueError(f"baseline has {len(self.baseline)} conductances, the bench {bench.n_devices} devices")

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        from . import hopfield_reference as ref
        from .common import weights_from_conductances
        from .materio import field_at, measure_reference

        self.check(bench)
        names, x = self.patterns.for_bench(bench)
        start = int(resume.get("epoch", 0)) if resume else 0
        if self.baseline is not None:
            base = np.array(self.baseline, dtype=float)
        elif resume and "baseline" in resume:
            base = np.array(resume["baseline"], dtype=float)
        else:
            base = yield from read_matrix(bench, self.read_repeats, self.v_read, 0)
            yield Record("baseline", {"g": base})
        rng = np.random.default_rng([self.seed, start])
        k_flip = ref.n_flips(bench.n_neurons, self.flip_fraction)
        yield Note(f"error-driven training of {' '.join(names)}, epochs {start + 1}..{self.epochs}")
        history: list[np.ndarray] = []
        epochs: list[int] = []
        for epoch in range(start, self.epochs):
            if epoch == 0 and self.baseline is None and not history:
                g = base  # the baseline read is the untrained state
            else:
                g = yield from read_matrix(bench, self.read_repeats, self.v_read, epoch)
            history.append(g)
            epochs.append(epoch)
            w = weights_from_conductances(bench, g, base, self.reference)
            off = w - np.diag(np.diag(w))
            norm = np.sqrt(np.sum(off**2, axis=1))
            reference = None
            if self.probe == "materio":
                reference = yield from measure_reference(bench, self.reference, self.v_read, tuple(base))
            count = self.count(epoch)
            n_updates = 0
            n_errors = 0
            for mu in rng.permutation(len(x)):
                xi = x[mu]
                probes = [xi] + [ref.flip_bits(xi, k_flip, rng) for _ in range(self.noisy_probes)]
                for s in probes:
                    if reference is not None:
                        h = yield from field_at(bench, s, reference, self.v_read)
                    else:
                        h = w @ s
                    errors = xi * h <= self.margin * norm
                    if not errors.any():
                        continue
                    n_errors += int(errors.sum())
                    n_updates += 1
                    for volts in self.update_phases(bench, xi, s, errors, rng):
                        yield Pulse.of(volts, self.pulse.width_s, count, self.pulse.period_s)
            yield Record("train_epoch", {"epoch": epoch + 1, "updates": n_updates, "errors": n_errors, "count": count})
            yield Checkpoint({"epoch": epoch + 1, "baseline": [float(v) for v in base]})
        g = yield from read_matrix(bench, self.read_repeats, self.v_read, self.epochs)
        history.append(g)
        epochs.append(self.epochs)
        return {"epochs": epochs, "g": history, "baseline": base}
