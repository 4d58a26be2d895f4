"""Simulated Keithley Series 2600B System SourceMeter (TSP; 2600BS-901-01).

A 2600B runs every message as a Lua chunk through the one TSP interpreter
(:mod:`sim_backend.instruments.tsp`); ``delay(s)`` and every measurement advance the
virtual clock. Per channel (``smua``, ``smub``):

- ``smuX.source``: ``func``, ``levelv``, ``limiti``, ``rangev``, ``autorangev``,
  ``output``, ``compliance`` act on the simulated bench; ``leveli``, ``limitv``, ``limitp``,
  ``rangei``, ``autorangei``, ``lowrange*``, ``offmode``, ``offfunc``, ``offlimiti``,
  ``highc``, ``delay``, ``settling``, ``sink``, ``outputenableaction`` are kept and read back.
- ``smuX.measure``: ``nplc``, ``rangei``, ``autorangei`` act (a fixed range below the
  limit clamps first); ``rangev``, ``autorangev``, ``autozero``, ``delay``, ``delayfactor``,
  ``filter.count/enable/type``, ``rel.*``, ``lowrange*``, ``analogfilter`` are kept;
  ``count`` readings ``interval`` apart; ``i()``, ``v()``, ``iv()``, ``r()``, ``p()``,
  each optionally into reading buffers.
- ``smuX.nvbuffer1``/``nvbuffer2``, ``smuX.makebuffer(n)``, ``printbuffer``, ``smuX.sense``,
  ``smuX.reset()``, ``smuX.abort()``, the trigger model ``smuX.trigger.*`` with
  ``trigger.timer[1-8]`` and ``trigger.blender[1-6]`` (:mod:`.keithley2600b_trigger`);
  ``digio.trigger[1-14]`` (``mode``, ``assert()``) drives the lines the twin wires between
  instruments (:mod:`sim_backend.triggers`), so sources on one line start together.
- ``status.measurement.instrument.smuX.condition`` (bit 0 voltage, bit 1 current limit),
  ``status.reset()`` and the status enable registers (kept), ``digio`` (14 lines, kept),
  ``display`` and ``beeper`` (accepted, no effect).

Current sourcing is not simulated (``smuX.source.func = smuX.OUTPUT_DCAMPS`` is refused
with -221, nothing changes).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .keithley2600b_trigger import add_trigger_functions, add_trigger_model, line_event
from .smu_common import SmuChannel, SmuRatings, SourceMeter
from .tsp import PARAMETER_ERROR, TspError, TspInterpreter, number_argument
from .tsp_base import TspInstrument
from .tsp_buffers import ReadingBuffer, printbuffer_values

CONSTANTS = {
    "OUTPUT_DCAMPS": 0.0, "OUTPUT_DCVOLTS": 1.0, "OUTPUT_OFF": 0.0, "OUTPUT_ON": 1.0, "OUTPUT_HIGH_Z": 2.0,
    "OUTPUT_NORMAL": 0.0, "OUTPUT_ZERO": 2.0,
    "AUTORANGE_OFF": 0.0, "AUTORANGE_ON": 1.0, "AUTORANGE_FOLLOW_LIMIT": 2.0,
    "SENSE_LOCAL": 0.0, "SENSE_REMOTE": 1.0, "SENSE_CALA": 3.0,
    "FILTER_MOVING_AVG": 0.0, "FILTER_REPEAT_AVG": 1.0, "FILTER_MEDIAN": 2.0,
    "FILTER_OFF": 0.0, "FILTER_ON": 1.0, "AUTOZERO_OFF": 0.0, "AUTOZERO_ONCE": 1.0, "AUTOZERO_AUTO": 2.0,
    "DELAY_OFF": 0.0, "DELAY_AUTO": -1.0, "ENABLE": 1.0, "DISABLE": 0.0,
    "SOURCE_HOLD": 0.0, "SOURCE_IDLE": 1.0, "ASYNC": 0.0,
}
STORED_SOURCE = {
    "leveli": 0.0, "limitv": 20.0, "limitp": 1e308, "rangei": 1e-6, "autorangei": 1.0, "lowrangei": 1e-7,
    "lowrangev": 0.2, "offmode": 0.0, "offfunc": 1.0, "offlimiti": 1e-3, "offlimitv": 40.0, "highc": 0.0,
    "delay": 0.0, "settling": 0.0, "sink": 0.0, "outputenableaction": 0.0,
}
STORED_MEASURE = {
    "rangev": 0.2, "autorangev": 1.0, "autozero": 2.0, "delay": -1.0, "delayfactor": 1.0, "lowrangei": 1e-7,
    "lowrangev": 0.2, "analogfilter": 1.0, "filter.count": 1.0, "filter.enable": 0.0, "filter.type": 1.0,
    "rel.enablei": 0.0, "rel.leveli": 0.0, "rel.enablev": 0.0, "rel.levelv": 0.0,
    "rel.enabler": 0.0, "rel.levelr": 0.0, "rel.enablep": 0.0, "rel.levelp": 0.0,
}
NOT_A_NUMBER = 9.91e37
CONDITION_VOLTAGE, CONDITION_CURRENT = 1, 2


class ChannelState:
    """What a 2600B channel keeps besides the source-measure physics of :class:`SmuChannel`."""

    def __init__(self, path: str, ch: SmuChannel) -> None:
        self.path = path
        self.ch = ch
        self.nvbuffer1 = ReadingBuffer(f"{path}.nvbuffer1", 60000)
        self.nvbuffer2 = ReadingBuffer(f"{path}.nvbuffer2", 60000)
        self.reset_stored()

    def reset_stored(self) -> None:
        self.source = dict(STORED_SOURCE)
        self.measure = dict(STORED_MEASURE)
        self.sense = 0.0
        self.count = 1
        self.interval = 0.0
        for buf in (self.nvbuffer1, self.nvbuffer2):
            buf.clear()

    def condition(self) -> float:
        return float(CONDITION_CURRENT) if self.ch.output and self.ch.in_compliance() else 0.0


class Keithley2600B(SourceMeter, TspInstrument):
    """A dual-channel 2600B (smua, smub); model variants below differ in channels and ratings.

    :param channels: channel id (``"a"``, ``"b"``) -> bench bus it drives.
    :param limits: ratings in place of the model's datasheet defaults (see ``SmuRatings``).
    """

    model = "keithley2636b"
    model_number = "2636B"
    serial = "4390001"
    idn = "Keithley Instruments Inc., Model 2636B, 4390001, 4.0.4"
    channel_ids: tuple[str, ...] = ("a", "b")
    ratings = SmuRatings(
        v_max=202.0, i_max=1.515, nplc_min=0.001, nplc_max=25.0, default_limit=0.1,
        voltage_ranges=(0.2, 2.0, 20.0, 200.0),
        current_ranges=(100e-12, 1e-9, 10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 1.5),
    )
    error_severity = 30
    error_node = 1
    unknown_common = (-285, "TSP Syntax error at line 1: unexpected symbol near '*'")

    def __init__(self, name: str, bench: Any, channels: Mapping[str, str] | None = None,
                 limits: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, bench)
        self.setup_channels(bench, channels, limits)
        self.states = {cid: ChannelState(f"smu{cid}", ch) for cid, ch in self.smu.items()}
        self.stored: dict[str, float] = {}
        self.trigger_lines: dict[int, Any] = {}  # digio line -> sim_backend.triggers.TriggerLine

    def attach_trigger_line(self, line: Any) -> None:
        """Wire digio line ``line.number`` to a twin's trigger line (:mod:`sim_backend.triggers`)."""
        self.trigger_lines[line.number] = line
        line.connect(self.name, lambda n: line_event(self, n))

    def reset(self) -> None:
        super().reset()
        for state in getattr(self, "states", {}).values():
            state.reset_stored()
            if getattr(state, "trigger", None) is not None:
                state.trigger.armed_line = None
        for stored in getattr(self, "digio_triggers", {}).values():
            stored.update(mode=0.0, pulsewidth=10e-6, stimulus=0.0)
        self.stored = {}

    def add_functions(self, t: TspInterpreter) -> None:
        for cid, state in self.states.items():
            _add_channel(t, state, self)
            add_trigger_model(t, state, self)
            t.attribute(f"status.measurement.instrument.smu{cid}.condition", state.condition)
        add_trigger_functions(t, self)
        t.function("printbuffer", lambda first, last, *bufs: self.print_numbers(printbuffer_values(first, last, bufs)))
        _add_status_digio_display(t, self)

    def store(self, key: str, default: float) -> tuple[Any, Any]:
        """(getter, setter) of an instrument-wide number kept for read-back."""
        return (lambda: self.stored.get(key, default),
                lambda v: self.stored.__setitem__(key, number_argument(v, key)))

    def measure_into(self, state: ChannelState, what: str, buffers: tuple[Any, ...]) -> tuple[float, ...]:
        """``measure.<what>(buf ...)``: ``count`` readings ``interval`` apart; returns the last."""
        for b in buffers:
            if not isinstance(b, ReadingBuffer):
                raise TspError(f"Parameter error {state.path}.measure.{what}: reading buffer expected", PARAMETER_ERROR)
            b.start_measurement()
        last: tuple[float, ...] = ()
        for k in range(state.count):
            if k and state.interval > state.ch.integration_s:
                self.bench.advance(state.interval - state.ch.integration_s)
            v, i, comp = state.ch.measure()
            values = _reading(what, v, i)
            now = self._now()
            status = float(CONDITION_CURRENT if comp else 0)
            for b, value in zip(buffers, values):
                b.append(value, now, state.ch.level, status)
            last = values
        return last


def _reading(what: str, v: float, i: float) -> tuple[float, ...]:
    if what == "i":
        return (i,)
    if what == "v":
        return (v,)
    if what == "iv":
        return (i, v)
    if what == "r":
        return (v / i if i else NOT_A_NUMBER,)
    return (v * i,)


def _number(setter: Any, what: str) -> Any:
    return lambda v: setter(number_argument(v, what))


def _kept(t: TspInterpreter, prefix: str, table: dict[str, float]) -> None:
    for key in table:
        t.attribute(f"{prefix}.{key}", lambda k=key: table[k],
                    lambda v, k=key: table.__setitem__(k, number_argument(v, f"{prefix}.{k}")))


def _add_channel(t: TspInterpreter, state: ChannelState, inst: Keithley2600B) -> None:
    """The ``smuX`` table of one channel."""
    path, ch = state.path, state.ch
    for const, value in CONSTANTS.items():
        t.constant(f"{path}.{const}", value)

    def reset_channel(*_: Any) -> None:
        ch.reset()
        state.reset_stored()

    t.function(f"{path}.reset", reset_channel)
    t.function(f"{path}.abort", lambda *a: None)
    t.object(f"{path}.nvbuffer1", state.nvbuffer1)
    t.object(f"{path}.nvbuffer2", state.nvbuffer2)
    t.function(f"{path}.makebuffer", lambda n: ReadingBuffer(f"{path}.buffer", max(1, int(number_argument(n, "makebuffer")))))

    def set_sense(v: Any) -> None:
        if number_argument(v, "sense") not in (0.0, 1.0, 3.0):
            raise TspError("Parameter data out of range: sense", -222)
        state.sense = float(v)

    t.attribute(f"{path}.sense", lambda: state.sense, set_sense)
    _add_source(t, state)
    _add_measure(t, state, inst)


def _add_source(t: TspInterpreter, state: ChannelState) -> None:
    src, ch = f"{state.path}.source", state.ch

    def set_func(v: Any) -> None:
        n = number_argument(v, "func")
        if n not in (0.0, 1.0):
            raise TspError("Parameter data out of range: func", -222)
        ch.set_source_function("VOLT" if n == 1.0 else "CURR")

    def set_output(v: Any) -> None:
        n = number_argument(v, "output")
        if n not in (0.0, 1.0, 2.0):
            raise TspError("Parameter error: illegal value", PARAMETER_ERROR)
        ch.set_output(n != 0.0)

    def auto_v(on: float) -> None:
        ch.set_source_range(None if on else (ch.source_range or _range_of(ch)))

    t.attribute(f"{src}.func", lambda: 1.0 if ch.source_function == "VOLT" else 0.0, set_func)
    t.attribute(f"{src}.levelv", lambda: ch.level, _number(ch.set_level, "levelv"))
    t.attribute(f"{src}.limiti", lambda: ch.limit, _number(ch.set_limit, "limiti"))
    t.attribute(f"{src}.rangev", lambda: ch.source_range or _range_of(ch), _number(ch.set_source_range, "rangev"))
    t.attribute(f"{src}.autorangev", lambda: 1.0 if ch.source_range is None else 0.0, _number(auto_v, "autorangev"))
    t.attribute(f"{src}.output", lambda: 1.0 if ch.output else 0.0, set_output)
    t.attribute(f"{src}.compliance", ch.in_compliance)
    _kept(t, src, state.source)


def _range_of(ch: SmuChannel) -> float:
    """The source range auto-range holds for the present level."""
    for r in ch.ratings.voltage_ranges:
        if abs(ch.level) <= r:
            return r
    return ch.ratings.voltage_ranges[-1]


def _add_measure(t: TspInterpreter, state: ChannelState, inst: Keithley2600B) -> None:
    meas, ch = f"{state.path}.measure", state.ch

    def auto_i(on: float) -> None:
        ch.set_measure_range(None if on else (ch.measure_range or 1e-6))

    def set_count(v: Any) -> None:
        n = number_argument(v, "measure.count")
        if not 1 <= n <= 60000:
            raise TspError("Parameter data out of range: measure.count", -222)
        state.count = int(n)

    def set_interval(v: Any) -> None:
        n = number_argument(v, "measure.interval")
        if not 0 <= n <= 1:
            raise TspError("Parameter data out of range: measure.interval", -222)
        state.interval = n

    t.attribute(f"{meas}.nplc", lambda: ch.nplc, _number(ch.set_nplc, "nplc"))
    t.attribute(f"{meas}.rangei", lambda: ch.measure_range or ch.ratings.current_ranges[-1],
                _number(ch.set_measure_range, "rangei"))
    t.attribute(f"{meas}.autorangei", lambda: 1.0 if ch.measure_range is None else 0.0, _number(auto_i, "autorangei"))
    t.attribute(f"{meas}.count", lambda: float(state.count), set_count)
    t.attribute(f"{meas}.interval", lambda: state.interval, set_interval)
    _kept(t, meas, state.measure)
    for what in ("i", "v", "iv", "r", "p"):
        t.function(f"{meas}.{what}", lambda *bufs, w=what: inst.measure_into(state, w, bufs))


def _add_status_digio_display(t: TspInterpreter, inst: Keithley2600B) -> None:
    t.attribute("status.condition", lambda: 4.0 if inst.error_queue else 0.0)
    for reg in ("request_enable", "node_enable", "standard.enable", "operation.enable",
                "questionable.enable", "measurement.enable", "measurement.instrument.enable"):
        t.attribute(f"status.{reg}", *inst.store(f"status.{reg}", 0.0))
    t.function("status.reset", lambda: None)
    port = {"value": 0.0}

    def write_bit(bit: Any, value: Any) -> None:
        b = int(number_argument(bit, "digio.writebit"))
        if not 1 <= b <= 14:
            raise TspError("Parameter data out of range: digio line 1..14", -222)
        mask = 1 << (b - 1)
        v = int(port["value"])
        port["value"] = float(v | mask if number_argument(value, "digio.writebit") else v & ~mask)

    def write_port(value: Any) -> None:
        port["value"] = float(int(number_argument(value, "digio.writeport")) & 0x3FFF)

    t.function("digio.writebit", write_bit)
    t.function("digio.readbit", lambda bit: float((int(port["value"]) >> (int(number_argument(bit, "digio")) - 1)) & 1))
    t.function("digio.writeport", write_port)
    t.function("digio.readport", lambda: port["value"])
    t.attribute("digio.writeprotect", *inst.store("digio.writeprotect", 0.0))
    for name, value in {"SMUA_SMUB": 2.0, "SMUA": 0.0, "SMUB": 1.0, "USER": 3.0}.items():
        t.constant(f"display.{name}", value)
    for name in ("clear", "setcursor", "settext", "sendkey", "loadmenu.add", "loadmenu.delete"):
        t.function(f"display.{name}", lambda *a: None)
    for name in ("screen", "smua.measure.func", "smub.measure.func", "smua.digits", "smub.digits"):
        t.attribute(f"display.{name}", *inst.store(f"display.{name}", 2.0 if name == "screen" else 1.0))
    t.function("beeper.beep", lambda *a: None)
    t.attribute("beeper.enable", *inst.store("beeper.enable", 1.0))


class Keithley2634B(Keithley2600B):
    model = "keithley2634b"
    model_number = "2634B"
    serial = "4390002"
    idn = "Keithley Instruments Inc., Model 2634B, 4390002, 4.0.4"


class Keithley2612B(Keithley2600B):
    """No low-current ranges: the smallest is 100 nA."""

    model = "keithley2612b"
    model_number = "2612B"
    serial = "4390003"
    idn = "Keithley Instruments Inc., Model 2612B, 4390003, 4.0.4"
    ratings = replace(Keithley2600B.ratings, current_ranges=Keithley2600B.ratings.current_ranges[3:])


class Keithley2602B(Keithley2600B):
    """The 40 V, 3 A class."""

    model = "keithley2602b"
    model_number = "2602B"
    serial = "4390004"
    idn = "Keithley Instruments Inc., Model 2602B, 4390004, 4.0.4"
    ratings = replace(
        Keithley2600B.ratings, v_max=40.4, i_max=3.03, voltage_ranges=(0.1, 1.0, 6.0, 40.0),
        current_ranges=(100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 3.0),
    )


class Keithley2635B(Keithley2600B):
    """Single channel: only smua exists."""

    model = "keithley2635b"
    model_number = "2635B"
    serial = "4390005"
    idn = "Keithley Instruments Inc., Model 2635B, 4390005, 4.0.4"
    channel_ids = ("a",)
