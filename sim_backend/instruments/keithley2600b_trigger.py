"""The 2600B trigger model (``smuX.trigger``), timers and blenders, on the virtual clock.

``smuX.trigger.initiate()`` runs the whole sweep at once, as far as the virtual clock is
concerned (a script that follows it with ``waitcomplete()`` sees it done): ``arm.count``
sweeps of ``count`` points; each point sets the next level of ``source.listv``/
``linearv``/``logv`` (if ``source.action`` is on), waits ``source.delay``, measures into
the buffers given to ``measure.i/v/iv/r/p(buf)`` (if ``measure.action`` is on), and, with
``endpulse.action = SOURCE_IDLE``, returns to the idle level (``source.levelv``) after the
pulse. A stimulus that is a ``trigger.timer[n].EVENT_ID`` paces by that timer's ``delay``:
as the source stimulus it is the point period, as the end-pulse stimulus the pulse width.
A stimulus that is ``digio.trigger[k].EVENT_ID`` of a line the twin wires between
instruments (:mod:`sim_backend.triggers`, the twin spec's ``trigger_lines``) waits for the
line: ``initiate()`` arms the channel and returns, and when a member of the line runs
``digio.trigger[k].assert()`` (its ``mode`` not ``TRIG_BYPASS``), every channel armed on
the line of a member whose ``digio.trigger[k].mode`` is not ``TRIG_BYPASS`` makes its
point at that same virtual instant: as the source stimulus, one point per edge; as the arm
stimulus, a whole sweep per edge. A line-triggered point may not measure (-221). Other
stimuli (digio lines not wired, TSP-Link, blenders, the command interface) count as
arrived at once. ``source.limiti`` of the trigger model, when set, is the limit during the
sweep. Current sweeps are refused (-221).
"""
from __future__ import annotations

import math
from typing import Any

from ..triggers import Armed
from .lua_runtime import LuaTable
from .tsp import TspError, TspInterpreter, number_argument
from .tsp_buffers import ReadingBuffer

N_TIMERS, N_BLENDERS, N_DIGIO = 8, 6, 14
TIMER_EVENT, BLENDER_EVENT, DIGIO_EVENT = 100, 200, 300
SMU_EVENTS = ("ARMED", "SWEEPING", "SWEEP_COMPLETE", "SOURCE_COMPLETE", "MEASURE_COMPLETE", "PULSE_COMPLETE", "IDLE")
MAX_POINTS = 100_000


class TriggerModel:
    """The ``smuX.trigger`` settings of one channel."""

    def __init__(self, index: int) -> None:
        self.events = {name: float(1000 * index + n) for n, name in enumerate(SMU_EVENTS, 1)}
        self.reset()

    def reset(self) -> None:
        self.settings = {"arm.count": 1.0, "count": 1.0, "source.action": 0.0, "measure.action": 0.0,
                         "endpulse.action": 0.0, "endsweep.action": 1.0, "autoclear": 0.0,
                         "arm.stimulus": 0.0, "source.stimulus": 0.0, "measure.stimulus": 0.0,
                         "endpulse.stimulus": 0.0}
        self.levels: list[float] = []
        self.limit: float | None = None
        self.measure_what = "i"
        self.buffers: tuple[Any, ...] = ()
        self.armed_line: int | None = None  # waiting for this wired digio line
        self.point = 0  # points made since initiate() of a line-triggered sweep


def _timer_delay(inst: Any, stimulus: float) -> float | None:
    n = int(stimulus) - TIMER_EVENT
    return inst.timers[n]["delay"] if 1 <= n <= N_TIMERS else None


def _sweep_levels(start: Any, stop: Any, points: Any, log: bool = False) -> list[float]:
    a, b, n = (number_argument(x, "sweep") for x in (start, stop, points))
    if not 1 <= n <= MAX_POINTS:
        raise TspError("Parameter data out of range: sweep points", -222)
    n = int(n)
    if log:
        if a <= 0 or b <= 0:
            raise TspError("Parameter data out of range: log sweep needs positive levels", -222)
        return [a * (b / a) ** (k / (n - 1)) if n > 1 else a for k in range(n)]
    return [a + (b - a) * k / (n - 1) if n > 1 else a for k in range(n)]


def add_trigger_model(t: TspInterpreter, state: Any, inst: Any) -> None:
    """``smuX.trigger.*`` of one channel (``state``: its ChannelState)."""
    path = f"{state.path}.trigger"
    tm = state.trigger = TriggerModel(len(getattr(inst, "_trigger_models", [])) + 1)
    inst._trigger_models = getattr(inst, "_trigger_models", []) + [tm]
    for name, value in tm.events.items():
        t.constant(f"{path}.{name}_EVENT_ID", value)
    for key in tm.settings:
        t.attribute(f"{path}.{key}", lambda k=key: tm.settings[k],
                    lambda v, k=key: tm.settings.__setitem__(k, number_argument(v, f"{path}.{k}")))

    def listv(values: Any) -> None:
        if not isinstance(values, LuaTable) or not values.n:
            raise TspError("Parameter error listv: table of levels expected", 1104)
        tm.levels = [number_argument(values.get(float(k)), "listv") for k in range(1, values.n + 1)]

    def current_sweep(*_: Any) -> None:
        raise TspError("Settings conflict; simulated source sources voltage only", -221)

    def set_limit(v: Any) -> None:
        tm.limit = None if v is None else abs(number_argument(v, "trigger.source.limiti"))

    t.function(f"{path}.source.listv", listv)
    t.function(f"{path}.source.linearv", lambda a, b, n: setattr(tm, "levels", _sweep_levels(a, b, n)))
    t.function(f"{path}.source.logv", lambda a, b, n, asym=0.0: setattr(tm, "levels", _sweep_levels(a, b, n, True)))
    for fn in ("listi", "lineari", "logi"):
        t.function(f"{path}.source.{fn}", current_sweep)
    t.attribute(f"{path}.source.limiti", lambda: tm.limit if tm.limit is not None else math.inf, set_limit)
    for what in ("i", "v", "iv", "r", "p"):
        t.function(f"{path}.measure.{what}",
                   lambda *bufs, w=what: (setattr(tm, "measure_what", w), setattr(tm, "buffers", bufs)) and None)
    t.function(f"{path}.initiate", lambda: run_sweep(inst, state, tm))
    t.function(f"{path}.abort", lambda: disarm(state, tm))
    t.function(f"{path}.clear", lambda: None)


def run_sweep(inst: Any, state: Any, tm: TriggerModel) -> None:
    ch = state.ch
    points, sweeps = int(tm.settings["count"]), int(tm.settings["arm.count"])
    if tm.settings["source.action"] and not tm.levels:
        raise TspError("Settings conflict: source action on, no sweep levels", -221)
    if points * sweeps > MAX_POINTS or points < 1 or sweeps < 1:
        raise TspError("Parameter data out of range: trigger count", -222)
    if any(abs(v) > ch.ratings.v_max * 1.01 for v in tm.levels):
        raise TspError("Parameter data out of range: sweep level", -222)
    for b in tm.buffers:
        if not isinstance(b, ReadingBuffer):
            raise TspError("Parameter error trigger.measure: reading buffer expected", 1104)
        b.start_measurement()
    if wired_line(inst, tm) is not None:
        arm(state, tm, wired_line(inst, tm))
        return
    if tm.limit is not None:
        ch.bench.set_compliance(ch.bus, tm.limit)
    period = _timer_delay(inst, tm.settings["source.stimulus"])
    width = _timer_delay(inst, tm.settings["endpulse.stimulus"])
    try:
        for n in range(points * sweeps):
            inst.tsp.machine.budget.step()
            _point(inst, state, tm, n, period, width)
    finally:
        if tm.settings["endsweep.action"]:
            ch.bench.set_level(ch.bus, ch.level)
        ch.set_limit(ch.limit)


def _point(inst: Any, state: Any, tm: TriggerModel, n: int, period: float | None, width: float | None) -> None:
    ch, start = state.ch, inst._now()
    if tm.settings["source.action"]:
        ch.bench.set_level(ch.bus, tm.levels[n % len(tm.levels)])
    delay = state.source["delay"]
    if delay > 0:
        inst.advance_bounded(delay, f"{state.path}.source.delay")
    if tm.settings["measure.action"]:
        v, i, comp = ch.measure()
        values = {"i": (i,), "v": (v,), "iv": (i, v), "r": (v / i if i else 9.91e37,), "p": (v * i,)}[tm.measure_what]
        level = tm.levels[n % len(tm.levels)] if tm.levels else ch.level
        for b, value in zip(tm.buffers, values):
            b.append(value, inst._now(), level, 2.0 if comp else 0.0)
    if tm.settings["endpulse.action"]:
        if width is not None and inst._now() < start + width:
            inst.advance_bounded(start + width - inst._now(), "trigger pulse width")
        ch.bench.set_level(ch.bus, ch.level)
    if period is not None and inst._now() < start + period:
        inst.advance_bounded(start + period - inst._now(), "trigger period")


def add_trigger_functions(t: TspInterpreter, inst: Any) -> None:
    """``trigger.timer[n]``, ``trigger.blender[n]``, ``digio.trigger[n]``, ``trigger.wait``."""
    inst.timers = {n: {"delay": 10e-6, "count": 1.0, "passthrough": 0.0, "stimulus": 0.0} for n in range(1, N_TIMERS + 1)}
    for n, timer in inst.timers.items():
        base = f"trigger.timer.{n}"
        t.constant(f"{base}.EVENT_ID", float(TIMER_EVENT + n))
        for key in timer:
            t.attribute(f"{base}.{key}", lambda k=key, d=timer: d[k], lambda v, k=key, d=timer: _set_timer(d, k, v))
        for fn in ("reset", "clear"):
            t.function(f"{base}.{fn}", lambda d=timer: d.update(delay=10e-6, count=1.0, passthrough=0.0, stimulus=0.0))
        t.function(f"{base}.wait", lambda timeout=0.0: True)
    for n in range(1, N_BLENDERS + 1):
        base, stored = f"trigger.blender.{n}", {"orenable": 0.0, **{f"stimulus.{k}": 0.0 for k in range(1, 5)}}
        t.constant(f"{base}.EVENT_ID", float(BLENDER_EVENT + n))
        for key in stored:
            t.attribute(f"{base}.{key}", lambda k=key, d=stored: d[k],
                        lambda v, k=key, d=stored: d.__setitem__(k, number_argument(v, k)))
        t.function(f"{base}.reset", lambda d=stored: d.update({k: 0.0 for k in d}))
        t.function(f"{base}.clear", lambda: None)
        t.function(f"{base}.wait", lambda timeout=0.0: True)
    _add_digio_triggers(t, inst)
    t.constant("trigger.EVENT_ID", 1.0)
    t.function("trigger.wait", lambda timeout=0.0: True)
    t.function("trigger.clear", lambda: None)


def _add_digio_triggers(t: TspInterpreter, inst: Any) -> None:
    """``digio.trigger[n]``: kept settings; ``assert()`` drives the line if the twin wires it."""
    for name, value in DIGIO_MODES.items():
        t.constant(f"digio.{name}", value)
    inst.digio_triggers = {}
    for n in range(1, N_DIGIO + 1):
        base = f"digio.trigger.{n}"
        stored = inst.digio_triggers[n] = {"mode": 0.0, "pulsewidth": 10e-6, "stimulus": 0.0}
        t.constant(f"{base}.EVENT_ID", float(DIGIO_EVENT + n))
        for key in stored:
            t.attribute(f"{base}.{key}", lambda k=key, d=stored: d[k], lambda v, k=key, d=stored: _set_digio(d, k, v))
        t.function(f"{base}.assert", lambda *_, n=n: assert_line(inst, n))
        t.function(f"{base}.reset", lambda d=stored: d.update(mode=0.0, pulsewidth=10e-6, stimulus=0.0))
        for fn in ("clear", "release"):
            t.function(f"{base}.{fn}", lambda *a: None)
        t.function(f"{base}.wait", lambda timeout=0.0: True)
        t.attribute(f"{base}.overrun", lambda: False)


def _set_digio(d: dict[str, float], key: str, value: Any) -> None:
    n = number_argument(value, f"digio.trigger.{key}")
    if key == "mode" and n not in DIGIO_MODES.values():
        raise TspError("Parameter data out of range: digio.trigger.mode", -222)
    d[key] = n


def _set_timer(d: dict[str, float], key: str, value: Any) -> None:
    if key == "passthrough" and isinstance(value, bool):  # the manual's true/false
        value = float(value)
    n = number_argument(value, f"trigger.timer.{key}")
    if key == "delay" and not 1e-6 <= n <= 100e3:
        raise TspError("Parameter data out of range: trigger.timer.delay 1e-6..100000 s", -222)
    d[key] = n


# -- trigger lines between instruments (sim_backend.triggers) ------------------------------------

DIGIO_MODES = {"TRIG_BYPASS": 0.0, "TRIG_FALLING": 1.0, "TRIG_RISING": 2.0, "TRIG_EITHER": 3.0,
               "TRIG_SYNCHRONOUSA": 4.0, "TRIG_SYNCHRONOUS": 5.0, "TRIG_SYNCHRONOUSM": 6.0,
               "TRIG_RISINGA": 7.0, "TRIG_RISINGM": 8.0}


def wired_line(inst: Any, tm: TriggerModel) -> int | None:
    """The wired digio line the sweep waits for (source stimulus first, then arm stimulus)."""
    for key in ("source.stimulus", "arm.stimulus"):
        n = int(tm.settings[key]) - DIGIO_EVENT
        if n in getattr(inst, "trigger_lines", {}):
            return n
    return None


def arm(state: Any, tm: TriggerModel, line: int) -> None:
    """``initiate()`` of a sweep that waits for a wired line: armed, nothing changes yet."""
    if tm.settings["measure.action"]:
        raise TspError("Settings conflict: a measurement in a line-triggered sweep is not simulated", -221)
    with state.ch.bench.lock:
        if tm.limit is not None:
            state.ch.bench.set_compliance(state.ch.bus, tm.limit)
        tm.armed_line, tm.point = line, 0


def disarm(state: Any, tm: TriggerModel) -> None:
    """``abort()``, or the end of a line-triggered sweep: back to idle, the limit restored."""
    with state.ch.bench.lock:
        if tm.armed_line is not None:
            tm.armed_line = None
            state.ch.set_limit(state.ch.limit)


def line_event(inst: Any, line: int) -> list[Armed]:
    """The listener of one instrument on a wired line: what each of its armed channels does."""
    digio = getattr(inst, "digio_triggers", {}).get(line)
    if digio is None or digio["mode"] == DIGIO_MODES["TRIG_BYPASS"]:
        return []
    out = []
    for state in inst.states.values():
        tm = getattr(state, "trigger", None)
        if tm is not None and tm.armed_line == line:
            out.append(_edge_points(inst, state, tm, line))
    return out


def _edge_points(inst: Any, state: Any, tm: TriggerModel, line: int) -> Armed:
    """The level changes of the points one edge starts, relative to the edge."""
    ch, s = state.ch, tm.settings
    total = int(s["count"]) * int(s["arm.count"])
    per_edge = 1 if int(s["source.stimulus"]) - DIGIO_EVENT == line else int(s["count"])
    period = _timer_delay(inst, s["source.stimulus"]) if per_edge > 1 else None
    width = max(state.source["delay"], _timer_delay(inst, s["endpulse.stimulus"]) or 0.0)
    changes: list[tuple[float, str, float]] = []
    start = end = 0.0
    for _ in range(min(per_edge, total - tm.point)):
        if s["source.action"]:
            changes.append((start, ch.bus, tm.levels[tm.point % len(tm.levels)]))
        end = start + width
        if s["endpulse.action"]:
            changes.append((end, ch.bus, ch.level))
        tm.point += 1
        start = max(end, start + (period or 0.0))
    if tm.point < total:
        return Armed(changes)
    if s["endsweep.action"]:
        changes.append((end, ch.bus, ch.level))
    return Armed(changes, done=lambda: disarm(state, tm))


def assert_line(inst: Any, line: int) -> None:
    """``digio.trigger[line].assert()``: drive a wired line (a line not wired reaches no one)."""
    wire = getattr(inst, "trigger_lines", {}).get(line)
    if wire is not None and inst.digio_triggers[line]["mode"] != DIGIO_MODES["TRIG_BYPASS"]:
        wire.fire(inst.name)
