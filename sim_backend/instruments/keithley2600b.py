"""Simulated Keithley Series 2600B System SourceMeter (TSP; 2600BS-901-01).

A 2600B runs every message as a Lua chunk, through the one TSP interpreter of
:mod:`sim_backend.instruments.tsp`: statements (``smua.source.levelv = 1``,
``local c = smua.source.compliance``, ``delay(0.001)``, ``print(...)``), dotted names,
calls with multiple results, numbers, strings, booleans, nil and unary minus. The whole
chunk is parsed before anything runs, so a syntax error changes nothing (-285); a run-time
error (-286) or a rejected setting stops the chunk where it happened. ``delay(s)``
advances the virtual clock.

Each channel is a table ``smua``/``smub`` with the constants, ``source`` and ``measure``
attributes and the ``measure.i/v/iv`` functions the drivers use.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .smu_common import SmuChannel, SmuRatings, SourceMeter
from .tsp import PARAMETER_ERROR, TspError, TspInstrument, TspInterpreter, number_argument

CONSTANTS = {
    "OUTPUT_DCAMPS": 0.0, "OUTPUT_DCVOLTS": 1.0, "OUTPUT_OFF": 0.0, "OUTPUT_ON": 1.0, "OUTPUT_HIGH_Z": 2.0,
    "AUTORANGE_OFF": 0.0, "AUTORANGE_ON": 1.0, "AUTORANGE_FOLLOW_LIMIT": 2.0,
    "SENSE_LOCAL": 0.0, "SENSE_REMOTE": 1.0,
}
# source attributes the simulator keeps but does not act on (current sourcing is not simulated)
STORED_SOURCE = {"leveli": 0.0, "limitv": 20.0, "rangei": 1e-6, "autorangei": 1.0, "offmode": 0.0}


class Keithley2600B(SourceMeter, TspInstrument):
    """A dual-channel 2600B (smua, smub); model variants below differ in channels and ratings.

    :param channels: channel id (``"a"``, ``"b"``) -> bench bus it drives.
    :param limits: ratings in place of the model's datasheet defaults (see ``SmuRatings``).
    """

    model = "keithley2636b"
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

    def add_functions(self, t: TspInterpreter) -> None:
        for cid, ch in self.smu.items():
            _add_channel(t, f"smu{cid}", ch)


def _add_channel(t: TspInterpreter, path: str, ch: SmuChannel) -> None:
    """The ``smuX`` table of one channel."""
    for const, value in CONSTANTS.items():
        t.constant(f"{path}.{const}", value)
    t.function(f"{path}.reset", ch.reset)
    src, meas = f"{path}.source", f"{path}.measure"

    def set_func(v: Any) -> None:
        ch.set_source_function("VOLT" if number_argument(v, "func") == 1.0 else "CURR")

    def set_output(v: Any) -> None:
        n = number_argument(v, "output")
        if n not in (0.0, 1.0, 2.0):
            raise TspError("Parameter error: illegal value", PARAMETER_ERROR)
        ch.set_output(n != 0.0)

    def number(setter: Any, what: str) -> Any:
        return lambda v: setter(number_argument(v, what))

    t.attribute(f"{src}.func", lambda: 1.0 if ch.source_function == "VOLT" else 0.0, set_func)
    t.attribute(f"{src}.levelv", lambda: ch.level, number(ch.set_level, "levelv"))
    t.attribute(f"{src}.limiti", lambda: ch.limit, number(ch.set_limit, "limiti"))
    t.attribute(f"{src}.rangev", lambda: ch.source_range or 0.2, number(ch.set_source_range, "rangev"))
    t.attribute(f"{src}.autorangev", lambda: 1.0 if ch.source_range is None else 0.0,
                number(lambda on: ch.set_source_range(None if on else (ch.source_range or 20.0)), "autorangev"))
    t.attribute(f"{src}.output", lambda: 1.0 if ch.output else 0.0, set_output)
    t.attribute(f"{src}.compliance", ch.in_compliance)
    stored = dict(STORED_SOURCE)
    for key in stored:
        t.attribute(f"{src}.{key}", lambda k=key: stored[k],
                    lambda v, k=key: stored.__setitem__(k, number_argument(v, k)))

    t.attribute(f"{meas}.nplc", lambda: ch.nplc, number(ch.set_nplc, "nplc"))
    t.attribute(f"{meas}.rangei", lambda: ch.measure_range or 1e-6, number(ch.set_measure_range, "rangei"))
    t.attribute(f"{meas}.autorangei", lambda: 1.0 if ch.measure_range is None else 0.0,
                number(lambda on: ch.set_measure_range(None if on else (ch.measure_range or 1e-6)), "autorangei"))
    t.function(f"{meas}.i", lambda: ch.measure()[1])
    t.function(f"{meas}.v", lambda: ch.measure()[0])
    t.function(f"{meas}.iv", lambda: ch.measure()[1::-1])  # (i, v)


class Keithley2634B(Keithley2600B):
    model = "keithley2634b"
    idn = "Keithley Instruments Inc., Model 2634B, 4390002, 4.0.4"


class Keithley2612B(Keithley2600B):
    """No low-current ranges: the smallest is 100 nA."""

    model = "keithley2612b"
    idn = "Keithley Instruments Inc., Model 2612B, 4390003, 4.0.4"
    ratings = replace(Keithley2600B.ratings, current_ranges=Keithley2600B.ratings.current_ranges[3:])


class Keithley2602B(Keithley2600B):
    """The 40 V, 3 A class."""

    model = "keithley2602b"
    idn = "Keithley Instruments Inc., Model 2602B, 4390004, 4.0.4"
    ratings = replace(
        Keithley2600B.ratings, v_max=40.4, i_max=3.03, voltage_ranges=(0.1, 1.0, 6.0, 40.0),
        current_ranges=(100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 3.0),
    )


class Keithley2635B(Keithley2600B):
    """Single channel: only smua exists."""

    model = "keithley2635b"
    idn = "Keithley Instruments Inc., Model 2635B, 4390005, 4.0.4"
    channel_ids = ("a",)
