"""Recall: associative retrieval from noisy cues, in materio or in software from a measured matrix."""
from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping

import numpy as np
from pydantic import Field, field_validator

from lab.operations import BenchInfo, Note, ReadMatrix, Record

from . import hopfield_reference as ref
from .base import Plan, Protocol
from .common import CueChoice, PatternChoice, weights_from_conductances
from .materio import materio_recall, measure_reference


class Recall(Protocol):
    """Recall every cue and score it against the stored patterns.

    ``compute="materio"``: each neuron field is a measured current (Multiply), reference
    subtracted. ``compute="software"``: one matrix read, then the same dynamics in software
    on the same W, for comparison. Cues are the stored patterns with ``cues.flip_fraction``
    of their bits flipped, or the explicit ``probes`` (e.g. a new, similar glyph).

    The weights are W = G − baseline − offset: ``baseline`` is the per-device conductance
    measured before training (the ``g`` of a ReadConductances run; it removes the devices'
    own spread), ``reference`` the offset on top ('mean' of the change, 'row_mean', or a
    conductance in S). Without a baseline, 'mean' subtracts the mean conductance itself.
    """

    name: ClassVar[str] = "recall"
    figures: ClassVar[Mapping[str, str]] = {"recall": "recall", "recall_summary": "accuracy"}
    adaptive: ClassVar[bool] = True

    patterns: PatternChoice
    cues: CueChoice = CueChoice()
    probes: PatternChoice | None = None
    mode: Literal["sync", "async"] = "async"
    compute: Literal["materio", "software"] = "materio"
    reference: Literal["mean", "row_mean"] | float = "mean"
    baseline: tuple[float, ...] | None = None
    theta: float = 0.0
    max_steps: int = Field(30, ge=1)
    v_read: float | None = Field(None, gt=0)
    read_repeats: int = Field(1, ge=1)
    order_seed: int = 0

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

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        names, _ = self.patterns.for_bench(bench)
        x, cues, targets = self.cue_list(bench)
        if self.v_read is not None and self.v_read > bench.v_read_max:
            raise ValueError(f"v_read = {self.v_read} V exceeds the bench read ceiling {bench.v_read_max} V")
        rng = np.random.default_rng(self.order_seed)
        if self.baseline is not None and len(self.baseline) != bench.n_devices:
            raise ValueError(f"baseline has {len(self.baseline)} conductances, the bench {bench.n_devices} devices")
        yield Note(f"recall of {len(cues)} cues ({self.mode}, {self.compute}) over {' '.join(names)}")
        base = None if self.baseline is None else np.array(self.baseline)
        w = None
        if self.compute == "software":
            m = yield ReadMatrix(v_read=self.v_read, repeats=self.read_repeats)
            w = weights_from_conductances(bench, np.asarray(m.g), base, self.reference)
        else:
            reference = yield from measure_reference(bench, self.reference, self.v_read, self.baseline)
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
