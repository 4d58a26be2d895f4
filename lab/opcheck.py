"""Operation checks: every operation of a plan against the bench's limits and layout, before
anything is sent (the runner's dry check replays a whole plan through them, then each
operation is checked again as it runs). A failure names the operation's parameter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lab.config import V_READ_MIN_V, BenchConfig
from lab.layout import Layout
from lab.errors import RoutingError, SafetyError
from lab.operations import Apply, Multiply, Operation, Pulse, ReadMatrix, ReadPair, Wait
from lab.safety import TOL, SafetyGuard

# Counts one operation may carry. The dry check replays every pulse and every repeat (about
# 0.1 ms per pulse, 0.1 ms per device and repeat of a read), so these keep one operation's
# check within about a second; a longer train or more averaging is several operations, each
# checked, archived and interruptible on its own. (A count of 1e8 in one operation hung the
# check and would hold one instrument busy for hours without a checkpoint.)
MAX_PULSES_PER_OPERATION = 10_000
MAX_READ_REPEATS = 1_000


def effective_v_read(op: Operation, config: BenchConfig) -> float:
    """The read voltage an operation will use (its own, or the bench default)."""
    lim = config.limits
    v = getattr(op, "v_read", None)
    if isinstance(op, Multiply):
        mixed = len({int(s) for s in op.pattern}) > 1
        if v is None:
            return min(lim.v_read, lim.v_read_max_V / 2) if mixed else lim.v_read
        return float(v)
    return lim.v_read if v is None else float(v)


def check_operation(op: Operation, config: BenchConfig) -> None:
    """Reject an operation whose parameters cannot be safe on this bench; names the parameter."""
    for kinds, check in _CHECKS:
        if isinstance(op, kinds):
            check(op, _OpCheck(config, op.kind))
            return


@dataclass
class _OpCheck:
    """What every operation check needs: the bench's layout and limits, and named failures."""

    config: BenchConfig
    kind: str

    @property
    def lay(self) -> Layout:
        return self.config.layout

    @property
    def lim(self) -> Any:
        return self.config.limits

    @property
    def n_drive(self) -> int:
        return len(self.lay.by_role("drive"))

    def line_name(self, i: int) -> str:
        return self.lay.lines[i] if 0 <= i < len(self.lay.lines) else str(i)

    def line(self, i: Any, field: str) -> int:
        n_lines = len(self.lay.lines)
        if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < n_lines:
            raise SafetyError(f"{self.kind}.{field}", f"line {i!r} is not a line index 0..{n_lines - 1}")
        if int(i) in self.lay.forbidden:
            raise SafetyError(f"{self.kind}.{field}", f"line {self.line_name(int(i))} is in limits.forbidden_lines")
        return int(i)

    def v_read(self, op: Operation, ceiling: float, why: str = "") -> None:
        v = effective_v_read(op, self.config)
        if not (math.isfinite(v) and V_READ_MIN_V <= v <= ceiling * (1 + 1e-9)):
            raise SafetyError(f"{self.kind}.v_read", f"{v} V not in [{V_READ_MIN_V:g}, {ceiling:.4g}] V{why} "
                              f"(limits.v_read_max_V={self.lim.v_read_max_V} V; below {V_READ_MIN_V:g} V a read "
                              f"is mostly the source's offset error)")


def _check_drive(op: Apply | Pulse, c: _OpCheck) -> None:
    lay, lim, kind = c.lay, c.lim, c.kind
    volts = op.voltages()
    for i, v in volts.items():
        c.line(i, "line_voltages")
        if not math.isfinite(v) or abs(v) > lim.v_max_V + TOL:
            raise SafetyError(f"{kind}.line_voltages", f"{v} V on line {c.line_name(i)} exceeds "
                              f"limits.v_max_V=±{lim.v_max_V} V")
    if op.others not in ("ground", "float"):
        raise SafetyError(f"{kind}.others", f"must be 'ground' or 'float', got {op.others!r}")
    levels = {round(v, 9) for v in volts.values() if v != 0.0}
    if len(levels) > c.n_drive:
        raise RoutingError(f"{kind}.line_voltages", f"{len(levels)} distinct non-zero levels "
                           f"{sorted(levels)} but the bench has {c.n_drive} drive bus(es)")
    line_v = np.full(len(lay.lines), 0.0 if op.others == "ground" else np.nan)
    for i in lay.forbidden:
        line_v[i] = np.nan
    for i, v in volts.items():
        line_v[i] = v
    guard = SafetyGuard(c.config)
    guard.scope = "write"
    dv = guard.device_voltage_bound(line_v)
    vmax = float(dv.max()) if dv.size else 0.0
    p = vmax * vmax * lim.g_max_expected_S
    if p > lim.power_max_W * (1 + 1e-9):
        k = int(np.argmax(dv))
        a, b = (c.line_name(int(x)) for x in lay.devices[k])
        raise SafetyError(f"{kind}.line_voltages", f"device {a}-{b} would see {vmax:.4g} V and dissipate up "
                          f"to {p:.3g} W > limits.power_max_W={lim.power_max_W} W")
    writing = vmax > lim.v_read_max_V + TOL
    if isinstance(op, Apply):
        if not math.isfinite(op.duration_s) or op.duration_s < 0:
            raise SafetyError("apply.duration_s", f"{op.duration_s} s is not a duration")
        if writing and op.duration_s > lim.pulse_width_max_s * (1 + 1e-9):
            raise SafetyError("apply.duration_s", f"{op.duration_s} s above the read ceiling exceeds "
                              f"limits.pulse_width_max_s={lim.pulse_width_max_s} s (use a Pulse train)")
        return
    check_pulse_timing(op, c.config)


def check_pulse_timing(op: Pulse, config: BenchConfig) -> None:
    """The part of a pulse's check that depends on its width, count and period alone (the
    pre-flight runs only this part again for a train it has checked at another width)."""
    lim = config.limits
    if not (math.isfinite(op.width_s) and 0 < op.width_s <= lim.pulse_width_max_s * (1 + 1e-9)):
        raise SafetyError("pulse.width_s", f"{op.width_s} s not in (0, limits.pulse_width_max_s="
                          f"{lim.pulse_width_max_s}] s")
    if not isinstance(op.count, (int, np.integer)) or op.count < 1:
        raise SafetyError("pulse.count", f"{op.count!r} is not a positive count")
    if op.count > MAX_PULSES_PER_OPERATION:
        raise SafetyError("pulse.count", f"{op.count} pulses in one operation exceeds {MAX_PULSES_PER_OPERATION} "
                          f"(split the train into several operations)")
    if not (math.isfinite(op.period) and op.period >= op.width_s):
        raise SafetyError("pulse.period_s", f"{op.period_s} s is shorter than the width {op.width_s} s")


def _check_read_pair(op: ReadPair, c: _OpCheck) -> None:
    a = c.line(op.a, "a")
    b = c.line(op.b, "b")
    if (a, b) not in c.lay.device_index:
        raise SafetyError(f"{c.kind}.b", f"no device joins lines {c.line_name(a)} and {c.line_name(b)}")
    c.v_read(op, c.lim.v_read_max_V)
    _check_repeats_scheme(op)


def _check_read_matrix(op: ReadMatrix, c: _OpCheck) -> None:
    lay = c.lay
    if op.devices is not None:
        n_dev = len(lay.devices)
        for d in op.devices:
            if not isinstance(d, (int, np.integer)) or not 0 <= int(d) < n_dev:
                raise SafetyError("read_matrix.devices", f"{d!r} is not a device index 0..{n_dev - 1}")
            for line in lay.devices[int(d)]:
                if int(line) in lay.forbidden:
                    raise SafetyError("read_matrix.devices", f"device {d} touches forbidden line "
                                      f"{c.line_name(int(line))}")
    c.v_read(op, c.lim.v_read_max_V)
    _check_repeats_scheme(op)


def _check_multiply(op: Multiply, c: _OpCheck) -> None:
    lay = c.lay
    n = len(lay.neuron_lines)
    if len(op.pattern) != n or any(s not in (1, -1) for s in op.pattern):
        raise SafetyError("multiply.pattern", f"needs {n} values of ±1, got {list(op.pattern)[:8]}"
                          f"{'...' if len(op.pattern) > 8 else ''} ({len(op.pattern)} values)")
    for i in op.neurons or ():
        if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < n:
            raise SafetyError("multiply.neurons", f"{i!r} is not a neuron index 0..{n - 1}")
    for i, lines in enumerate(lay.neuron_lines):
        for line in lines:
            if line in lay.forbidden:
                raise SafetyError("multiply.pattern", f"neuron {i} owns forbidden line {c.line_name(line)}")
    signs = {int(s) for s in op.pattern}
    mixed = len(signs) > 1
    c.v_read(op, c.lim.v_read_max_V / 2 if mixed else c.lim.v_read_max_V,
             " (a mixed pattern puts 2·v_read across devices)" if mixed else "")
    if len(signs) > c.n_drive:
        raise RoutingError("multiply.pattern", f"a mixed ±1 pattern needs 2 drive buses, the bench has {c.n_drive}")


def _check_wait(op: Wait, c: _OpCheck) -> None:
    if not (math.isfinite(op.seconds) and op.seconds >= 0):
        raise SafetyError("wait.seconds", f"{op.seconds} s is not a duration")


_CHECKS: tuple[tuple[type | tuple[type, ...], Callable[[Any, _OpCheck], None]], ...] = (
    ((Apply, Pulse), _check_drive), (ReadPair, _check_read_pair), (ReadMatrix, _check_read_matrix),
    (Multiply, _check_multiply), (Wait, _check_wait),
)


def _check_repeats_scheme(op: ReadPair | ReadMatrix) -> None:
    if not isinstance(op.repeats, (int, np.integer)) or op.repeats < 1:
        raise SafetyError(f"{op.kind}.repeats", f"{op.repeats!r} is not a positive count")
    if op.repeats > MAX_READ_REPEATS:
        raise SafetyError(f"{op.kind}.repeats", f"{op.repeats} repeats in one read exceeds {MAX_READ_REPEATS} "
                          f"(average several reads instead)")
    if op.scheme not in ("guarded", "floating"):
        raise SafetyError(f"{op.kind}.scheme", f"must be 'guarded' or 'floating', got {op.scheme!r}")
