"""Characterize: the learning rule of one device or a set, fitted to what a simulator preset needs.

Each device is driven alone with the V/2 scheme (its line a at +V/2, line b at −V/2, all
others at 0 V, so half-selected devices see at most V/2) and read before and after:

1. read noise and G0: repeated reads at rest;
2. amplitude sweep, both polarities, ascending: before any motion the device is pulsed in
   growing doses up to ``probe_dose_s`` and a change must show on two reads (motion is
   permanent, read noise is not); after it, one train of a predicted dose per point, so each
   point moves ≈ ``response_sigmas`` read-σ; the sweep stops ``max_moving_amplitudes`` after
   the onset, or when the window is used up;
3. width sweep at ``v_width`` (the dose-vs-width check);
4. pulse-response curves: what is left of the window, spent in trains steered to move
   ≈ ``curve_sigmas`` read-σ each, cycling over an amplitude just past depinning
   (``curve_low`` × onset: its rate is ≈ r_d) and ``v_curve`` (the flow slope), read with
   ``curve_read_repeats``; closing trains at ``v_curve`` drive the device to its bound;
5. optionally retention: reads at rest after ``retention_s``.

**The window is a budget.** A film path moves one way under current of either sign
(unipolar, depress-only: every pulse lowers G) and at room temperature relaxes back on a
Néel–Arrhenius time of ~20 years, so every pulse of the run spends part of one ~2 % window
that never comes back on the bench: on C0–C1 of ``sim-film35`` the window is 1.2 µS, 20 single
reads' σ (0.06 µS) or ~80 σ of the difference of two 32-repeat reads. The plan asks each
sweep point for a step just above the noise and leaves most of the window to the curves,
whose big steps fix the rates.

**Why the threshold was NaN on the default film** (``sim-film35``, C0–C1, V_d = 1.29 V):
the old sweep spent 20–80 pulses at each of 24 points whatever the device did, so the path
was ~75 % of the way to its bound by 2 V and at it after the pulse-response curves, which
the old analysis ran *last* and used to decide which way each polarity moves G. Those flat
curves gave the sign of read noise (positive pulses were "expected" to raise G), so no
positive point counted as motion, and the rule "motion at every larger amplitude" then
failed at 2.4 and 3 V, where nothing was left to move. Neither the drive range (0.3–3 V
across the path, within v_max = 1.5 V per line), nor Joule heating (≤ +40 K of film
temperature at 3 V in the V/2 scheme, +40 K more in the path: it shifts only the creep
term and leaves relaxation negligible), nor the read noise against
the step size was the cause. A bench-side effect also biased every rate: the two V/2 levels
are set one command after the other, so a nominal 1 ms pulse held ~2 ms at V and 2 ms at V/2;
the bench now reports each pulse's timeline (``ApplyResult.timeline``) and the fit uses the
time the device really spent at V and at V/2 (``dose_s``, ``half_dose_s``; the nominal width
when a bench reports no timeline).

**The fit** (``protocols.fit``) replays every train of the run through the device model and
fits all reads at once by maximum likelihood: G = g0 − W·x with soft bounds, rate
r(V) = r_d·exp[−(κ/μ)((V_d/V)^μ − 1)] below depinning and r_d·(1 + s·(V/V_d − 1)) above,
current feedback j ∝ V·G, the half-drive edges, and cycle-to-cycle noise carried as the
state's uncertainty by a Kalman filter (reads far apart are correlated as on the device).

Identifiable from pulse-amplitude/width sweeps through this read-out (recovered within ~20 %
of the generating device, see ``tests/test_protocol_characterize.py``):
  * ``g_max_S`` = G0 of the fresh path (a unipolar device never returns to the top of its
    window, so its initial state is taken as 0; for a bipolar device ``initial_state`` is fitted),
  * ``window_S`` = a·G0, the soft-bound window (from the approach to the bound),
  * ``threshold_V`` = V_d, the depinning voltage (the kink between creep and linear flow);
    in preset units j_depin = V_d·G0/A needs the path's cross-section A (geometry),
  * ``rate_at_depin_per_s`` = v_d/L, the creep/flow rate scale (v_d itself needs L),
  * ``read_sigma_S`` (pooled over every read's repeats) → ``read_noise_window``.
Weakly identifiable (fitted, reported, ~10–50 % at this budget): ``flow_slope`` (the flow's
rise needs the rate at two drives to a few %), ``creep_log_slope`` κ = μ·T_d/T (only a ≲ 20 %
band of V below V_d creeps fast enough to be seen in ``probe_dose_s``, one or two points).
Not identifiable (and why):
  * ``creep_exponent`` μ and ``creep_barrier_K`` T_d separately: over the visible creep band
    (V_d/V)^μ − 1 ≈ μ·(V_d/V − 1), so only μ·T_d/T enters, and μ is degenerate with V_d
    and T_d over the bench's voltage range; the preset's barrier is reported as κ·T0/μ for
    the assumed μ (``creep_exponent``);
  * ``creep_onset``: below ~0.8 V_d creep is already too slow to see (r < 0.1 r_d), so the
    pinning cut-off at 0.3 V_d makes no visible difference; the *observed* onset (``onset_V``)
    depends on the dose budget and the noise, not on creep_onset;
  * ``cross_section_m2``, ``wall_length_m``: geometry; only V_d·G/A and v_d/L are electrical;
  * ``self_heating_K_at_depin``, ``substrate_K_per_W``: heating enters only through T in the
    creep exponent (absorbed into κ); the flow law has no T;
  * relaxation (``relax_attempt_Hz``, ``relax_barrier_K``, ``rest_state``,
    ``relax_drive_suppression``): τ ≈ 20 years at T0, so a retention wait of minutes sees
    nothing; only a lower bound on τ (``retention_tau_min_s``) is reported, and f0 and E_b
    would be degenerate at one temperature anyway;
  * ``cycle_noise``: a pulse's change is below one read's noise and the window allows a few
    hundred pulses, so its variance is poorly separated from read noise (fitted, unreliable);
  * spreads (``g_spread``, ``threshold_spread``, ``rate_spread``, ``contrast_spread``) and
    ``stuck_probability``: need many devices (a σ from n devices is ±1/√(2(n−1))); spreads
    are reported only for ≥ 3 devices.
Pairs sharing a line disturb each other (the later one is half-selected, often above its
threshold, while the earlier one is measured): characterize disjoint pairs.

The analysis (``analyse``) is a pure function of the measured numbers and returns the
fitted parameters plus a ``preset`` dict named as the simulator's preset fields.

Records (units in the names):
  * ``characterize_amplitude``, one per device and polarity, for the ΔG-vs-amplitude figure:
    scalars ``lines`` ("C0-C1"), ``polarity`` ("positive"/"negative"), ``threshold_V`` (the
    fitted V_d, to mark), ``onset_V`` (first motion seen), ``reference_width_s``,
    ``read_sigma_mean_S``; arrays on the same points (sweep points, then curve trains):
    ``amplitude_V`` (|V|), ``delta_g_S`` (the measured ΔG scaled to one pulse held
    ``reference_width_s`` at V on the device as found: the learning rule), ``delta_g_err_S``
    (its read-noise error), ``fit_delta_g_S`` (the fit's ΔG for that pulse),
    ``delta_g_rel``/``fit_delta_g_rel`` (÷ G0, for %), the raw ``measured_delta_g_S``
    (± ``measured_delta_g_err_S``) and ``fit_measured_delta_g_S`` of each point's own dose
    and state, ``dose_s``/``half_dose_s`` (time at V and at V/2), ``count``, ``g_before_S``,
    ``window_left`` (fraction of the window still ahead: below ~0.2 the scaled points are
    noisy), ``rate_per_s``, ``moved``, ``from_curve``; and the fit on a 64-point grid,
    ``fit_amplitude_V``/``fit_curve_delta_g_S``;
  * ``characterize_device``, per device: the fitted values (``threshold_V``,
    ``rate_at_depin_per_s``, ``flow_slope``, ``creep_log_slope``, ``window_S``, ``g_max_S``,
    ``read_sigma_S`` …, with ``*_rel_err``/``*_err`` from the likelihood's curvature — lower
    bounds: the kink at V_d and the model's approximations are not in them), the point
    arrays (signed ``amplitudes_V``), width-sweep and curve traces;
  * ``characterize``: the summary and ``preset.*`` (the fit as preset fields). The
    generating preset of a dry run is the archive's ``instrument/sim_preset``; the protocol
    never sees the simulator. ``not_identifiable`` lists what the run cannot fit.
The fit is also logged as a Note (``protocols.fit.summary_lines``).

The code is in three modules: this one (the protocol: parameters, check, steps),
``protocols.characterize_plan`` (one device's adaptive measurement) and
``protocols.characterize_analysis`` (the fit and the records, pure).
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np
from pydantic import Field, field_validator

from lab.operations import BenchInfo, Note, Record

from . import fit as devfit
from .base import Plan, Protocol
from .characterize_analysis import NOT_IDENTIFIABLE, _recordable, analyse, fit_bound, fit_creep, summarise
from .characterize_plan import DevicePlan
from .common import check_voltage, line_pairs

# what other modules and the tests import from here
__all__ = ["NOT_IDENTIFIABLE", "Characterize", "analyse", "fit_bound", "fit_creep", "summarise"]


class Characterize(Protocol):
    name: ClassVar[str] = "characterize"
    figures: ClassVar[Mapping[str, str]] = {
        "characterize_amplitude": "threshold", "characterize_device": "device", "characterize": "curves",
        "reads": "none"}
    adaptive: ClassVar[bool] = True

    pairs: tuple[tuple[int | str, int | str], ...] | None = Field(None,
        description="devices as line pairs [[a, b], ...] (index or name; default: the bench's first device); disjoint pairs")
    amplitudes: tuple[float, ...] | None = Field(None,
        description="pulse amplitudes across the device (default: 13 steps 0.15 … 2·v_max)")
    width_s: float = Field(1e-3, gt=0, description="reference pulse width (the ΔG-per-pulse figure is scaled to it)")
    min_width_s: float | None = Field(None, gt=0, description="narrowest pulse (default: width_s / 4)")
    # default min(10·width_s, half the bench limit): the V/2 levels' set-up counts into the
    # bench's pulse-width limit (time above the read ceiling)
    max_width_s: float | None = Field(None, gt=0,
        description="widest pulse (default: min(10·width_s, half the bench limit))")
    probe_dose_s: float = Field(0.2, gt=0, description="time at one amplitude before it counts as 'no motion'")
    dose_growth: float = Field(2.0, gt=1.0, description="cumulative dose factor between reads of one sweep point")
    max_moving_amplitudes: int = Field(3, ge=2,
        description="the amplitude sweep stops this many amplitudes after the first motion")
    widths: tuple[float, ...] | None = Field(None,
        description="widths of the width sweep (default: width_s × 1/4 and × 4)")
    v_width: float | None = Field(None, gt=0,
        description="amplitude of the width sweep (default: the moving amplitude nearest 1.5 × onset)")
    curve_pulses: int = Field(24, ge=3, description="reads along each saturation curve")
    curve_levels: int = Field(2, ge=1, description="amplitudes the curves cycle over (curve_low × onset … v_curve)")
    curve_low: float = Field(1.5, gt=1.0, description="lowest curve amplitude over the onset (just past depinning)")
    curve_read_repeats: int | None = Field(96, ge=1,
        description="repeats of the curve reads (their steps carry the fit)")
    curve_sigmas: float = Field(6.0, gt=0, description="change per curve train, in σ of a read difference")
    max_train_pulses: int = Field(80, ge=1, description="pulses per steered curve train at most")
    v_curve: float | None = Field(None, gt=0, description="top curve amplitude (default: the largest amplitude)")
    curve_width_s: float | None = Field(None, gt=0, description="pulse width of the curve trains (default: width_s)")
    noise_reads: int = Field(8, ge=2, description="reads at rest for the read noise and G0")
    read_repeats: int = Field(32, ge=1, description="repeats averaged in each sweep read")
    v_read: float | None = Field(None, gt=0, description="read voltage (default: the bench's v_read_default_V)")
    retention_s: tuple[float, ...] = Field((),
        description="rest times after the curves at which the device is read again (default: none)")
    response_sigmas: float = Field(3.0, gt=0,
        description="a sweep step aims at |ΔG| ≈ this many σ of a read difference (and motion must exceed it)")
    # geometry and assumptions the electrical data cannot give (used only for the preset dict)
    creep_exponent: float = Field(0.25, gt=0, le=1,
        description="assumed creep exponent μ (not identifiable; used for the preset's barrier)")
    cross_section_m2: float = Field(2e-14, gt=0,
        description="assumed path cross-section (geometry; converts V_d to j_depin)")
    wall_length_m: float = Field(1e-3, gt=0,
        description="assumed length a wall crosses (geometry; converts the rate to a wall speed)")
    ambient_K: float = Field(300.0, gt=0, description="substrate temperature T0 (for the preset's barrier)")
    attempt_Hz: float = Field(1e10, gt=0, description="assumed relaxation attempt frequency f0 (for the preset)")

    @field_validator("amplitudes", "widths")
    @classmethod
    def _positive_sorted(cls, v: Any) -> Any:
        if v is not None:
            if not v or any(x <= 0 for x in v):
                raise ValueError("must be a non-empty list of positive values")
            v = tuple(sorted(v))
        return v

    # ------------------------------------------------------------ plan parameters
    def amplitude_list(self, bench: BenchInfo) -> np.ndarray:
        if self.amplitudes is not None:
            return np.array(self.amplitudes)
        return np.geomspace(0.075, 1.0, 13) * 2.0 * bench.v_max

    def max_width(self, bench: BenchInfo) -> float:
        if self.max_width_s is not None:
            return float(min(self.max_width_s, bench.max_pulse_width_s))
        return float(min(10 * self.width_s, 0.5 * bench.max_pulse_width_s))

    def min_width(self, bench: BenchInfo) -> float:
        w = self.min_width_s if self.min_width_s is not None else self.width_s / 4
        return float(min(w, self.max_width(bench)))

    def curve_width(self, bench: BenchInfo) -> float:
        return float(min(self.curve_width_s or self.width_s, self.max_width(bench)))

    def width_list(self) -> np.ndarray:
        if self.widths is not None:
            return np.array(self.widths)
        return self.width_s * np.array([0.25, 4.0])

    def check(self, bench: BenchInfo) -> None:
        amps = self.amplitude_list(bench)
        check_voltage(bench, "amplitudes (±V/2 per line)", max(amps.max(), self.v_curve or 0, self.v_width or 0) / 2)
        widths = [*self.width_list(), self.width_s, self.min_width_s or 0, self.max_width_s or 0, self.curve_width_s or 0]
        if max(widths) > bench.max_pulse_width_s:
            raise ValueError(f"pulse widths up to {max(widths):g} s exceed the bench limit {bench.max_pulse_width_s:g} s")
        line_pairs(bench, self.pairs)

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        self.check(bench)
        lines = line_pairs(bench, self.pairs)
        used = [x for pair in lines for x in pair]
        if len(set(used)) < len(used):
            yield Note("characterize: pairs share a line, so a later pair is half-selected (often above its "
                       "threshold) while an earlier one is measured; its fresh state and window are then not its own")
        per_device = []
        for a, b in lines:
            data = yield from DevicePlan(self, bench, a, b).run()
            fit = analyse(data, self)
            per_device.append(fit)
            yield Record("characterize_device", _recordable(fit))
            for rec in fit["amplitude_curves"]:
                yield Record("characterize_amplitude", rec)
            yield Note(f"characterize {'-'.join(fit['lines'])}: " + " | ".join(devfit.summary_lines(fit)))
        summary = summarise(per_device, self)
        yield Record("characterize", {**_recordable(summary), **{f"preset.{k}": v for k, v in summary["preset"].items()}})
        return summary
