"""Training protocols: the patterns go on the lines as voltages and the devices learn by themselves.

No protocol here computes or writes a weight. ``TrainHopfield`` is the paper's clamped
training: each pattern is held on the neurons and the current it drives through the
array changes the conductances (Oja-like, with the device's soft bounds as the decay).
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Iterator, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lab.operations import BenchInfo, Checkpoint, MatrixResult, Note, Pulse, ReadMatrix, Record, Wait

from .base import Plan, Protocol
from .readout import ReadoutName, field_weights, get_readout
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

    width_s: float = Field(1e-3, gt=0, description="width of one pulse at full drive")
    count: int = Field(1, ge=1,
        description="pulses per presentation (the first presentation's, with a harmonic anneal)")
    period_s: float | None = Field(None, gt=0,
        description="start-to-start time of the pulses of a train (default: 2 × width_s)")

    @model_validator(mode="after")
    def _period_fits(self) -> "PulseShape":
        if self.period_s is not None and self.period_s < self.width_s:
            raise ValueError(f"period_s {self.period_s} is shorter than width_s {self.width_s}")
        return self


class TrainHopfield(Protocol):
    """Clamped training: for each epoch and pattern, hold the pattern on the lines as voltages.

    Each presentation is a pulse train (``pulse``) of the pattern in the chosen ``encoding``
    (``levels``: "single" puts the + lines at 2·V and the − lines at 0 V, "split" at ±V; the
    devices see the same), followed by ``recovery_s`` of rest at 0 V. The device makes every
    change: nothing here computes or writes a weight.

    Reads: ``read_first`` reads the untrained array (the baseline G0 every read-out needs,
    see :mod:`protocols.readout`); then the matrix is read after every ``read_every``-th
    epoch, after each epoch listed in ``read_epochs``, and after the last one.

    Dose: presentation p of the run (p = 1, 2, ... over all epochs) gets the pulse time
    d_p = d_1·p0/(p − 1 + p0) with d_1 = ``pulse.count``·``pulse.width_s`` and p0 =
    ``anneal_offset`` (``anneal="harmonic"``, the default for the "pattern" encoding),
    delivered as the fewest pulses no wider than ``pulse.width_s``; ``anneal="none"`` (the
    default for "outer_product", whose crossbar devices this schedule was not calibrated on)
    gives every presentation ``pulse.count`` pulses of ``pulse.width_s``.

    Why the defaults (the shipped film-amr preset; physics notes §2, §7; numbers measured on
    the simulated 35-contact film, see the protocol's tests):

    - ``v_train=1.0`` V: anti-aligned paths see 2 V, j ≈ 3 j_d, in linear flow; the film then
      dissipates ~0.12 W and sits at ~620 K, where the thermally activated relaxation of the
      idle (aligned) paths runs at about the rate the driven ones are pushed (k ≈ 8 /s,
      push ≈ 6 /s), so the texture each path settles to, x* = Σ push/(Σ push + Σ relax), is
      close to the fraction of patterns that hold the pair anti-aligned, (1 − C_ij/P)/2:
      linear in the pattern correlation, i.e. Hebbian. Hotter, the relaxation wins
      exponentially and x* bends away from linear (measured: exact recall ~0.55 at 1.2 V);
      cooler, the push wins.
    - ``level_power=True``: a clamped ±V pattern drives current only through its anti-aligned
      pairs, so it dissipates P_μ = (2V)²·Σ_anti G ≈ 4V²·Ḡ·n₊n₋ (n₊, n₋ its ±1 counts), and the
      film's temperature follows that power (L 578 K, O 620 K at ±1 V): the relaxation that
      writes the aligned half of a pattern is 4.6× faster under O than under L, and
      unlevelled the high-power glyphs dominate the learned matrix (fitted imprint after 10
      shuffled epochs of one 6 ms pulse: L : T : X : O = 0.67 : 0.74 : 0.83 : 1; with the
      defaults otherwise, one glyph is lost on every film tried, exact recall 0.74).
      Levelled, pattern μ is driven at V_μ = V0·√(max_ν P_ν / P_μ), so every pattern
      dissipates the same power and heats the film to the same temperature (imprint equal
      within 1 %). P_μ is computed
      from the baseline read (Σ over the pattern's anti-aligned paths of their measured G0),
      or from n₊n₋ without one; the n₊n₋ estimate alone leaves the glyphs' film temperatures
      up to ~25 K apart on a film with a 31 % path-to-path spread of G. ``v_train`` is V0,
      the amplitude of the highest-power pattern; the levels are capped at the bench's v_max
      (a Note says if a pattern could not be levelled) and kept on resume. Only the
      "pattern" encoding is levelled: with "outer_product" every device is selected at
      ±v_train in its own V/2 phase.
    - ``shuffle=True`` with ``seed``: a fresh random order per epoch (one seeded numpy
      Generator for the run). Each presentation partly overwrites the ones before it (the
      soft bounds are the Oja decay term); a fixed order always lets the same glyph write
      last, a shuffled one spreads that recency over all of them.
    - ``anneal="harmonic"``, ``pulse`` 20 × 8 ms for the first presentation, p0 = 2: with a
      dose ∝ 1/p each presentation moves a path a fraction ≈ 1/p of its way to that
      presentation's target, so the texture is the running *average* of what every
      presentation wrote — all patterns weighted alike whatever the order (the last of 40
      presentations gets one 7.8 ms pulse, which moves a path ~6 % of its way) — while the
      total dose (~1.1 s of pulses, ~9 e-folding times of a typical path, ≥ 4 for one 2σ
      slower) lets every path reach its fixed point, where its own wall mobility (30 %
      path-to-path spread) cancels between push and relaxation. A constant dose cannot do
      both in 10 epochs: one 1 ms pulse per presentation leaves the mobility spread in the
      texture (exact recall 0.75–1.0 per film), one 8 ms pulse (~3 e-folding times) is
      better but lets the last glyphs of an epoch win on some films. Pulses 8 ms wide keep
      the sequential bus settling (≈ +2 ms per pulse at full drive) a small part of the dose
      and fit the bench's 10 ms limit on time above the read ceiling.
    - ``epochs=10``: 40 presentations of four glyphs; the schedule above converges in them.
    - ``read_first=True``: without the untrained read no read-out can remove the ~31 %
      path-to-path spread of G0, which is 30× the learned change.
    """

    name: ClassVar[str] = "train_hopfield"
    figures: ClassVar[Mapping[str, str]] = {"reads": "learned_change"}

    # Defaults: the dissimilar glyph set at the film-amr preset's calibrated operating point.
    patterns: PatternChoice = Field(PatternChoice(names=("L", "T", "X", "O")), description="the patterns to store")
    epochs: int = Field(10, ge=1, description="passes over all patterns")
    v_train: float = Field(1.0, gt=0,
        description="line amplitude V0 of the highest-power pattern (anti-aligned pairs see 2·V0); others are power-levelled")
    pulse: PulseShape = Field(PulseShape(width_s=8e-3, count=20),
        description="the first presentation's pulse train (later ones follow the anneal)")
    anneal: Literal["harmonic", "none"] | None = Field(None,
        description="dose schedule: 'harmonic' (dose ∝ 1/p) or 'none' (every presentation pulse.count pulses); default by encoding")
    anneal_offset: float = Field(2.0, gt=0,
        description="p0 of the harmonic dose d_p = d_1·p0/(p − 1 + p0), in presentations")
    encoding: Encoding = Field("pattern",
        description="how a pattern reaches the array: 'pattern' (lines at ±V, film/tied crossbar) or 'outer_product' (crossbar V/2 phases)")
    levels: Literal["split", "single"] = Field("split",
        description="'split' puts lines at ±V, 'single' the + lines at 2V and the − lines at 0 V (devices see the same)")
    level_power: bool = Field(True,
        description="drive each pattern at the voltage that makes its Joule power equal the highest-power pattern's")
    potentiate_polarity: Literal[1, -1] = Field(-1,
        description="sign of the device voltage that raises G (outer_product encoding)")
    spare_self: bool = Field(False,
        description="never pulse a crossbar's self-couplings (row i, column i) (outer_product encoding)")
    shuffle: bool = Field(True, description="a fresh random pattern order each epoch")
    seed: int = Field(0, description="seed of the pattern order")
    recovery_s: float = Field(0.0, ge=0, description="rest at 0 V after each presentation")
    read_every: int = Field(1, ge=0,
        description="read the matrix after every n-th epoch (0: only read_epochs and the last)")
    read_epochs: tuple[int, ...] = Field((), description="further epochs after which the matrix is read")
    read_first: bool = Field(True, description="read the untrained array first (the baseline G0 every read-out needs)")
    read_repeats: int = Field(1, ge=1, description="repeats averaged in each matrix read")
    v_read: float | None = Field(None, gt=0, description="read voltage (default: the bench's v_read_default_V)")

    @model_validator(mode="after")
    def _read_epochs_in_range(self) -> "TrainHopfield":
        bad = [e for e in self.read_epochs if not 1 <= e <= self.epochs]
        if bad:
            raise ValueError(f"read_epochs {bad} outside 1..epochs ({self.epochs})")
        return self

    def presentations(self, bench: BenchInfo) -> list[tuple[int, int, np.ndarray]]:
        """(epoch, pattern index, state) in the order they are applied."""
        _, x = self.patterns.for_bench(bench)
        out = []
        for epoch, idx in enumerate(self._epoch_orders(len(x))):
            out.extend((epoch, int(k), x[k]) for k in idx)
        return out

    def _epoch_orders(self, n_patterns: int) -> Iterator[np.ndarray]:
        """Each epoch's pattern order, drawn as it comes (a plan of 100,000 epochs need not
        hold them all), from one generator seeded once: the same orders as :meth:`presentations`."""
        rng = np.random.default_rng(self.seed)
        for _ in range(self.epochs):
            yield rng.permutation(n_patterns) if self.shuffle else np.arange(n_patterns)

    @property
    def schedule(self) -> str:
        """The dose schedule in force: ``anneal``, or by default "harmonic" for the pattern
        encoding (calibrated on the film) and "none" for outer_product (not calibrated)."""
        if self.anneal is not None:
            return self.anneal
        return "harmonic" if self.encoding == "pattern" else "none"

    def dose(self, index: int) -> tuple[float, int]:
        """(pulse width s, pulse count) of the presentation with 0-based run ``index``."""
        if self.schedule == "none":
            return self.pulse.width_s, self.pulse.count
        total = self.pulse.width_s * self.pulse.count * self.anneal_offset / (index + self.anneal_offset)
        n = max(1, math.ceil(total / self.pulse.width_s - 1e-9))
        return total / n, n

    def relative_power(self, bench: BenchInfo, g: np.ndarray | None = None) -> np.ndarray:
        """Joule power of each pattern at unit drive, over the largest (1).

        P_μ = Σ_d G_d·(V_a − V_b)², the device voltages of the encoded pattern at 1 V, with
        ``g`` the measured per-device conductances (the baseline read), or uniform G
        without: then for ±V on a film P_μ ∝ 4·n₊n₋, the anti-aligned pairs times (2V)².
        The measured form also levels the geometry: with a 31 % path-to-path spread of G
        the n₊n₋ estimate leaves the patterns' film temperatures up to ~25 K apart.
        """
        _, x = self.patterns.for_bench(bench)
        lines = bench.devices
        weight = np.ones(bench.n_devices)
        if g is not None:
            g = np.asarray(g, dtype=float)
            weight = np.where(np.isfinite(g) & (g > 0), g, np.nanmedian(g) if np.isfinite(g).any() else 1.0)
        power = []
        for s in x:
            p = 0.0
            for volts in encode(bench, s, 1.0, self.encoding, self.potentiate_polarity, self.levels):
                v = np.zeros(bench.n_lines)
                for line, value in volts.items():
                    v[line] = value
                p += float(np.sum(weight * (v[lines[:, 0]] - v[lines[:, 1]]) ** 2))
            power.append(p)
        power = np.array(power)
        if not np.all(power > 0):
            raise ValueError("a pattern drives no device (all its neurons at the same level): nothing to train")
        return power / power.max()

    def amplitudes(self, bench: BenchInfo, g: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(drive V per pattern, True where levelling was capped by the bench's v_max).

        ``g``: measured per-device conductances to level on (see :meth:`relative_power`).
        """
        _, x = self.patterns.for_bench(bench)
        if not self.level_power or self.encoding != "pattern":
            return np.full(len(x), self.v_train), np.zeros(len(x), dtype=bool)
        v = self.v_train / np.sqrt(self.relative_power(bench, g))
        # the highest line level of a presentation: v ("split") or 2v ("single")
        peak = 2.0 if self.levels == "single" else 1.0
        cap = bench.v_max / peak
        return np.minimum(v, cap), v > cap + 1e-12

    def check(self, bench: BenchInfo) -> None:
        _, x = self.patterns.for_bench(bench)
        for volts in encode(bench, x[0], self.v_train, self.encoding, self.potentiate_polarity, self.levels):
            check_voltage(bench, "v_train", volts)
        if self.pulse.width_s > bench.max_pulse_width_s:
            raise ValueError(f"pulse.width_s {self.pulse.width_s} s exceeds the bench limit {bench.max_pulse_width_s} s")
        if self.v_read is not None and self.v_read > bench.v_read_max:
            raise ValueError(f"v_read = {self.v_read} V exceeds the bench read ceiling {bench.v_read_max} V")
        volts_mu, _ = self.amplitudes(bench)
        for s, v in zip(x, volts_mu):
            for volts in encode(bench, s, float(v), self.encoding, self.potentiate_polarity, self.levels):
                check_voltage(bench, "levelled v_train", volts)

    def plan_size(self, bench: BenchInfo) -> int:
        """How many operations :meth:`steps` yields from the start (the pre-flight's bound)."""
        _, x = self.patterns.for_bench(bench)
        split = np.random.default_rng([self.seed, 0, 1]) if (
            self.spare_self and self.encoding == "outer_product") else None
        phases = max(len(encode(bench, s, self.v_train, self.encoding, self.potentiate_polarity, self.levels, split))
                     for s in x)
        per_epoch = len(x) * (phases + (self.recovery_s > 0)) + 2  # presentations, record, checkpoint
        reads = (self.epochs // self.read_every if self.read_every else 0) + len(self.read_epochs) + 1
        return 4 + self.epochs * per_epoch + 2 * (reads + self.read_first)  # an upper bound

    def reads_after(self, epoch: int) -> bool:
        """Is the matrix read after (1-based) ``epoch``."""
        return (epoch == self.epochs or epoch in self.read_epochs
                or bool(self.read_every and epoch % self.read_every == 0))

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        self.check(bench)
        names, x = self.patterns.for_bench(bench)
        start = int(resume.get("epoch", 0)) if resume else 0
        yield Note(f"clamped training of {' '.join(names)} for epochs {start + 1}..{self.epochs}")
        # spare_self: never pulse a crossbar's self-couplings (random half splits, see self_free_groups)
        split = np.random.default_rng([self.seed, start, 1]) if (
            self.spare_self and self.encoding == "outer_product") else None
        matrices: list[np.ndarray] = []
        read_epochs: list[int] = []
        baseline = None
        if self.read_first and start == 0:
            yield Record("train_baseline", {"epoch": 0})  # labels the read below as epoch 0 in the archive
            baseline = yield from read_matrix(bench, self.read_repeats, self.v_read, 0)
            matrices.append(baseline)
            read_epochs.append(0)
        levelled = self.level_power and self.encoding == "pattern"
        resumed_levels = bool(resume and "v_levels" in resume)
        if resumed_levels:  # a resumed run keeps the levels it started with
            volts_mu = np.array(resume["v_levels"], dtype=float)  # type: ignore[index]
            capped = np.zeros(len(volts_mu), dtype=bool)
        else:
            volts_mu, capped = self.amplitudes(bench, baseline)
        if levelled and not resumed_levels:
            basis = "the measured baseline" if baseline is not None else "nominal n₊n₋ (no baseline read)"
            levels = ", ".join(f"{n} {v:.3f} V" for n, v in zip(names, volts_mu))
            yield Note(f"power-levelled drive from {basis}: {levels}")
            if capped.any():
                yield Note("levelling capped at v_max for " + " ".join(n for n, c in zip(names, capped) if c)
                           + ": those patterns run cooler than the others")
        n_patterns = len(volts_mu)
        v_of = [float(v) for v in volts_mu]
        period, rest = self.pulse.period_s, self.recovery_s
        encoded: dict[int, list[tuple[tuple[int, float], ...]]] = {}

        def phases(k: int, s: np.ndarray, v: float) -> list[tuple[tuple[int, float], ...]]:
            """The line voltages of pattern k's phases; the same every epoch unless drawn afresh."""
            if split is None and k in encoded:
                return encoded[k]
            out = [Pulse.of(volts, 1.0).line_voltages for volts in
                   encode(bench, s, v, self.encoding, self.potentiate_polarity, self.levels, split)]
            if split is None:
                encoded[k] = out
            return out
        for epoch, idx in enumerate(self._epoch_orders(len(x))):
            if epoch < start:  # a resumed run draws the orders it skips: the same ones follow
                continue
            order = idx.tolist()
            doses = []
            for q, k in enumerate(order):
                width, count = self.dose(epoch * n_patterns + q)
                doses.append(width * count)
                for lines in phases(k, x[k], v_of[k]):
                    yield Pulse(lines, float(width), int(count), period)
                if rest > 0:
                    yield Wait(rest)
            yield Record("train_epoch", {"epoch": epoch + 1, "order": idx, "v_train": volts_mu[idx],
                                         "dose_s": np.array(doses)})
            if self.reads_after(epoch + 1):
                m = yield from read_matrix(bench, self.read_repeats, self.v_read, epoch + 1)
                matrices.append(m)
                read_epochs.append(epoch + 1)
            yield Checkpoint({"epoch": epoch + 1, "v_levels": list(v_of)})
        return {"epochs": read_epochs, "g": matrices, "v_levels": volts_mu}


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
    figures: ClassVar[Mapping[str, str]] = {"reads": "learned_change"}
    adaptive: ClassVar[bool] = True

    patterns: PatternChoice = Field(description="the patterns to store")
    epochs: int = Field(20, ge=1, description="read–decide–pulse rounds")
    v_train: float = Field(..., gt=0, description="voltage across a selected device (its lines at ±v_train/2)")
    pulse: PulseShape = Field(PulseShape(width_s=1e-3, count=20),
        description="pulse train of the first epoch's update (the count shrinks by anneal per epoch)")
    anneal: float = Field(0.85, gt=0, le=1, description="factor on the pulse count per epoch")
    count_min: int = Field(2, ge=1, description="fewest pulses an update gets after annealing")
    margin: float = Field(1.5, ge=0, description="a neuron is in error unless ξ_i·h_i > margin·‖W_i‖")
    noisy_probes: int = Field(0, ge=0, description="noisy copies of each pattern probed beside the pattern itself")
    flip_fraction: float = Field(0.1, ge=0, le=1, description="fraction of bits flipped in a noisy probe")
    probe: Literal["matrix", "materio"] = Field("matrix",
        description="where the fields come from: 'matrix' (a read, in software) or 'materio' (multiplies)")
    encoding: Literal["auto", "outer_product", "symmetric"] = Field("auto",
        description="'outer_product' (crossbar, bipolar), 'symmetric' (film or tied crossbar) or 'auto' (by topology)")
    potentiate_polarity: Literal[1, -1] = Field(-1, description="sign of the device voltage that raises G")
    spare_self: bool = Field(False, description="never pulse a crossbar's self-couplings (row i, column i)")
    baseline: tuple[float, ...] | None = Field(None,
        description="per-device conductances before training, in S (the read-out's G0)")
    readout: ReadoutName = Field("scaled_baseline",
        description="read-out from conductances to weights: 'scaled_baseline' (W = G − λ·G0) or 'relative'")
    read_repeats: int = Field(4, ge=1, description="repeats averaged in each matrix read")
    v_read: float | None = Field(None, gt=0, description="read voltage (default: the bench's v_read_default_V)")
    seed: int = Field(0, description="seed of the probes' bit flips and the self-coupling splits")

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
        if self.probe == "materio" and not get_readout(self.readout).in_materio:
            raise ValueError(f"readout {self.readout!r} cannot be subtracted in materio; use 'scaled_baseline'")

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        from . import hopfield_reference as ref
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
            w = field_weights(bench, g, base, self.readout)
            off = w - np.diag(np.diag(w))
            norm = np.sqrt(np.sum(off**2, axis=1))
            reference = None
            if self.probe == "materio":
                reference = yield from measure_reference(bench, self.readout, self.v_read, tuple(base))
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
