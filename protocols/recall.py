"""Recall: associative retrieval from noisy cues, in materio or in software from a measured matrix."""
from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping

import numpy as np
from pydantic import Field, field_validator

from lab.operations import BenchInfo, Note, ReadMatrix, Record

from . import hopfield_reference as ref
from .base import Plan, Protocol
from .common import CueChoice, PatternChoice
from .readout import ReadoutName, field_weights, get_readout
from .materio import materio_recall, measure_reference


class Recall(Protocol):
    """Recall every cue and score it against the stored patterns.

    ``compute="materio"``: each neuron field is a measured current (Multiply), reference
    subtracted. ``compute="software"``: one matrix read, then the same dynamics in software
    on the same W, for comparison. Cues are the stored patterns with ``cues.flip_fraction``
    of their bits flipped, or the explicit ``probes`` (e.g. a new, similar glyph).

    The weights are the read-out (:mod:`protocols.readout`) of the measured conductances
    against ``baseline``, the per-device conductances measured before training (the first
    ``g`` of a TrainHopfield run, or a ReadConductances run): ``readout="scaled_baseline"``,
    W = G − λ·G0 with λ = ΣG/ΣG0, in software and in materio (λ from one all-+1 multiply);
    "relative" (ΔG/G0 minus its mean) in software only. Without a baseline W = G − Ḡ.
    Software recall uses the weights a multiply sums (:func:`protocols.readout.field_weights`:
    on a film the symmetric, zero-diagonal Hopfield matrix; on an untied crossbar with its
    self-couplings), so both computes recall on the same W.

    ``calibrate`` (materio): one guarded matrix read before the multiplies. A multiply drives
    every contact at once, and what the contact resistances keep from each sense current
    depends on the conductances: the bench corrects it with a nodal model of the film fed by
    its latest read. Without a read in the same run that model holds the nominal conductance,
    and the correction leaves a field error of ~1.4 µS (read noise of a field: ~0.35 µS; the
    smallest recall margins of L T X O: ~1.2 µS). The read changes nothing on the film (it is
    below the switching threshold) and computes no weight; it calibrates the measurement.
    """

    name: ClassVar[str] = "recall"
    figures: ClassVar[Mapping[str, str]] = {"recall": "recall", "recall_summary": "accuracy", "reads": "conductance"}
    adaptive: ClassVar[bool] = True

    patterns: PatternChoice = Field(description="the stored patterns (cues are made from them and scored against them)")
    cues: CueChoice = Field(CueChoice(),
        description="noisy cues: per_pattern copies of each pattern with flip_fraction of bits flipped")
    probes: PatternChoice | None = Field(None,
        description="explicit cues instead (e.g. a new, similar glyph), scored against the closest pattern")
    mode: Literal["sync", "async"] = Field("async",
        description="update order: 'async' (one neuron at a time, random order) or 'sync' (all at once)")
    compute: Literal["materio", "software"] = Field("materio",
        description="'materio' (each field a measured multiply) or 'software' (one matrix read, dynamics in software)")
    readout: ReadoutName = Field("scaled_baseline",
        description="read-out from conductances to weights: 'scaled_baseline' (W = G − λ·G0) or 'relative' (software only)")
    baseline: tuple[float, ...] | None = Field(None,
        description="per-device conductances before training, in S (G0; --baseline-from takes it from an archive)")
    theta: float = Field(0.0, description="neuron threshold θ: s_i = sign(h_i − θ), in the field's unit")
    max_steps: int = Field(30, ge=1, description="update sweeps per cue at most")
    v_read: float | None = Field(None, gt=0,
        description="read and multiply voltage (default: the bench's v_read_default_V)")
    read_repeats: int = Field(1, ge=1, description="repeats averaged in each matrix read")
    order_seed: int = Field(0, description="seed of the asynchronous update order")
    calibrate: bool = Field(True,
        description="one matrix read before the multiplies, for the contact-loss correction (materio)")

    @field_validator("baseline")
    @classmethod
    def _finite_baseline(cls, v: Any) -> Any:
        if v is not None and not all(np.isfinite(x) for x in v):
            raise ValueError("baseline has non-finite conductances")
        return v

    def cue_list(self, bench: BenchInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(stored patterns, cues, index of the cued pattern; a probe is scored against its closest)."""
        _, x = self.patterns.for_bench(bench)
        if self.probes is not None:
            _, cues = self.probes.for_bench(bench)
            targets = np.array([_closest(x, c) for c in cues])
            return x, cues, targets
        cues, targets = ref.make_cues(x, self.cues.per_pattern, self.cues.flip_fraction, self.cues.seed)
        return x, cues, targets

    def check(self, bench: BenchInfo) -> None:
        if self.compute == "materio" and not get_readout(self.readout).in_materio:
            raise ValueError(f"readout {self.readout!r} cannot be subtracted in materio (a multiply cannot divide "
                             f"each path by its own G0); use 'scaled_baseline' or compute='software'")

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        names, _ = self.patterns.for_bench(bench)
        x, cues, targets = self.cue_list(bench)
        if self.v_read is not None and self.v_read > bench.v_read_max:
            raise ValueError(f"v_read = {self.v_read} V exceeds the bench read ceiling {bench.v_read_max} V")
        rng = np.random.default_rng(self.order_seed)
        self.check(bench)
        if self.baseline is not None and len(self.baseline) != bench.n_devices:
            raise ValueError(f"baseline has {len(self.baseline)} conductances, the bench {bench.n_devices} devices")
        yield Note(f"recall of {len(cues)} cues ({self.mode}, {self.compute}) over {' '.join(names)}")
        base = None if self.baseline is None else np.array(self.baseline)
        w = None
        if self.compute == "software":
            m = yield ReadMatrix(v_read=self.v_read, repeats=self.read_repeats)
            w = field_weights(bench, np.asarray(m.g), base, self.readout)
        else:
            if self.calibrate:
                yield Note("calibration read: the multiply's contact-loss model takes the conductances read now")
                yield ReadMatrix(v_read=self.v_read, repeats=self.read_repeats)
            reference = yield from measure_reference(bench, self.readout, self.v_read, self.baseline)
        finals, steps = [], []
        for k, (cue, t) in enumerate(zip(cues, targets)):
            if w is not None:
                r = ref.recall(w, cue, mode=self.mode, theta=self.theta, max_steps=self.max_steps, rng=rng)
                final, nsteps, conv, cyc, energies, mults = r.final, r.steps, r.converged, r.cycle, r.energies, 0
            else:
                tr = yield from materio_recall(
                    bench, cue, reference, mode=self.mode, theta=self.theta,
                    max_steps=self.max_steps, v_read=self.v_read, rng=rng,
                )
                final, nsteps, conv, cyc, energies, mults = (
                    tr.final, tr.steps, tr.converged, tr.cycle, tr.energies, tr.multiplies,
                )
            finals.append(final)
            steps.append(nsteps)
            yield Record(
                "recall",
                {
                    "cue_index": k,
                    "target": int(t),
                    "cue": cue.astype(np.int8),
                    "final": final.astype(np.int8),
                    "overlaps": ref.overlaps(x, final),
                    "energy": np.asarray(energies, dtype=float),
                    "steps": int(nsteps),
                    "converged": bool(conv),
                    "cycle": bool(cyc),
                    "multiplies": int(mults),
                },
            )
        finals_a = np.array(finals)
        scored = targets >= 0
        summary: dict[str, Any] = {"n_cues": len(cues), "mode": self.mode, "compute": self.compute}
        if scored.any():
            sc = ref.score_finals(finals_a[scored], targets[scored], x, np.array(steps)[scored])
            summary.update(sc.as_dict())
        yield Record("recall_summary", summary)
        return {"finals": finals_a, "targets": targets, "cues": cues, "steps": np.array(steps), **summary}


def _closest(x: np.ndarray, c: np.ndarray) -> int:
    """A probe is scored against the stored pattern it overlaps most."""
    return int(np.argmax(x @ c))
