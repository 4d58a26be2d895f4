"""Simulated Keithley 2400 SourceMeter (2400 Series User's Manual, sections 17-18, appendix B).

``:READ?`` returns the elements chosen by ``:FORM:ELEM`` (default all five: VOLT, CURR, RES,
TIME, STAT) as comma-separated floats; 9.91e37 marks a value not measured. Bit 3 of the
status word is compliance. With auto output-off disabled (the reset default) ``:READ?``
needs the output on, else error +803; ``:MEASure?`` turns the output on (and leaves it on)
as the manual warns. ``:INITiate`` takes ``:ARM:COUNt`` x ``:TRIGger:COUNt`` readings (each
``:TRIGger:DELay`` after the last) into the trace buffer when ``:TRACe:FEED:CONTrol NEXT``
(``:TRACe:POINts`` of them, then the buffer-full bit 9 of the measurement event register
sets, which ``*STB?`` reports with ``:STAT:MEAS:ENAB 512``); ``:FETCh?`` answers the last
readings, ``:READ?`` is ``:INIT`` plus ``:FETCh?``, ``:TRACe:DATA?`` the buffer and
``:CALCulate3:DATA?`` its statistics. Trigger and arm sources, lines and the timer are kept
and read back (no trigger link between instruments is simulated); every other setting of
the tree is kept and read back (:mod:`.scpi_settings`). Sourcing current is refused (-221).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .keithley2400_tree import SETTINGS, TRACE_FEED, TRACE_POINTS, add_trace_commands
from .scpi import Call, ScpiError, boolean, choice, string
from .scpi_settings import add_settings, put, stored
from .smu_common import COMMON, ScpiSourceMeter, SmuRatings, scpi_tree

NOT_MEASURED = 9.91e37
ELEMENTS = ("VOLTage", "CURRent", "RESistance", "TIME", "STATus")
STATUS_COMPLIANCE = 1 << 3
STATUS_RANGE_COMPLIANCE = 1 << 16


class Keithley2400(ScpiSourceMeter):
    model = "keithley2400"
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4109713,C32   Oct  4 2010 14:20:11/A02  /S/K"
    ratings = SmuRatings(
        v_max=210.0, i_max=1.05, nplc_min=0.01, nplc_max=10.0, default_limit=105e-6,
        voltage_ranges=(0.2, 2.0, 20.0, 200.0),
        current_ranges=(1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0),
    )
    # SOUR1/SENS1 are the only suffixes a 2400 accepts; NPLC is one setting for every function
    tree = scpi_tree(":SOURce#", "[:SENSe#]", nplc=("CURRent[:DC]", "VOLTage[:DC]", "RESistance"),
                     source_range_reply=21.0, measure_range_reply=1.05e-4, measure_range_fixed=1e-4)

    def __init__(self, name: str, bench: Any, channels: Mapping[str, str] | None = None,
                 limits: Mapping[str, Any] | None = None) -> None:
        self._reset_measure_config()
        super().__init__(name, bench, channels, limits)

    def _reset_measure_config(self) -> None:
        self.elements = ["VOLTAGE", "CURRENT", "RESISTANCE", "TIME", "STATUS"]
        self.functions = {"CURRENT"}
        self.resistance_auto = True
        self.auto_output_off = False
        self.auto_zero = True
        self.trace: list[list[float]] = []
        self.last: list[list[float]] = []
        self.measurement_events = 0

    def reset(self) -> None:
        super().reset()
        self._reset_measure_config()

    def add_commands(self) -> None:
        add = self.scpi.add
        add(":SOURce#:CLEar:AUTO", lambda c: setattr(self, "auto_output_off", boolean(c.one())),
            lambda c: "1" if self.auto_output_off else "0")
        add("[:SENSe#]:FUNCtion[:ON]", self._functions_on, self._functions_query)
        add("[:SENSe#]:FUNCtion[:ON]:ALL", lambda c: self.functions.update({"VOLTAGE", "CURRENT", "RESISTANCE"}))
        add("[:SENSe#]:FUNCtion:OFF:ALL", lambda c: self.functions.clear())
        add("[:SENSe#]:FUNCtion:CONCurrent", lambda c: boolean(c.one()) and None, lambda c: "1")
        add("[:SENSe#]:FUNCtion:OFF", self._functions_off, lambda c: self._functions_query(c, on=False))
        add("[:SENSe#]:RESistance:MODE",
            lambda c: setattr(self, "resistance_auto", choice(c.one(), ("AUTO", "MANual")) == "AUTO"),
            lambda c: "AUTO" if self.resistance_auto else "MAN")
        add(":FORMat:ELEMents[:SENSe#]", self._set_elements, lambda c: ",".join(e[:4] for e in self.elements))
        add(":READ", None, lambda c: self._read(c, turn_on=self.auto_output_off))
        add(":FETCh", None, lambda c: self._fetch())
        add(":INITiate[:IMMediate]", lambda c: self._initiate(turn_on=self.auto_output_off) and None)
        add(":ABORt", lambda c: None)
        add("*TRG", lambda c: None)
        add("*OPT", None, lambda c: "0")
        for f in ("", ":VOLTage[:DC]", ":CURRent[:DC]", ":RESistance"):
            add(f":MEASure{f or '[:VOLTage][:DC]'}", None, lambda c: self._read(c, turn_on=True, leave_on=True))
            add(f":CONFigure{f or '[:VOLTage][:DC]'}", lambda c: self.smu["1"].set_output(True))
        add(":SYSTem:AZERo[:STATe]", self._set_azero, lambda c: "1" if self.auto_zero else "0")
        add(":STATus:MEASurement[:EVENt]", None, lambda c: str(self._take_measurement_events()))
        add_settings(self.scpi, SETTINGS, self.settings)
        add_trace_commands(self)

    def _set_azero(self, c: Call) -> None:
        value = c.one()
        if value.strip().upper() != "ONCE":
            self.auto_zero = boolean(value)

    def _take_measurement_events(self) -> int:
        value, self.measurement_events = self.measurement_events, 0
        return value

    def status_byte(self) -> int:
        """Bit 0: measurement summary (events & :STAT:MEAS:ENAB), then the common bits."""
        stb = super().status_byte()
        if self.measurement_events & stored(self.settings, COMMON["meas_enable"]):
            stb |= 1
            if stored(self.settings, COMMON["sre"]) & 1:
                stb |= 64
        return stb

    def _functions_on(self, c: Call) -> None:
        if not c.params:
            raise ScpiError(-109, "Missing parameter")
        for p in c.params:
            self.functions.add(choice(string(p).split(":")[0], ELEMENTS[:3]))

    def _functions_off(self, c: Call) -> None:
        if not c.params:
            raise ScpiError(-109, "Missing parameter")
        for p in c.params:
            self.functions.discard(choice(string(p).split(":")[0], ELEMENTS[:3]))

    def _functions_query(self, c: Call, on: bool = True) -> str:
        chosen = self.functions if on else {"VOLTAGE", "CURRENT", "RESISTANCE"} - self.functions
        return ",".join(f'"{f[:4]}:DC"' if f != "RESISTANCE" else '"RES"' for f in sorted(chosen))

    def _set_elements(self, c: Call) -> None:
        if not c.params:
            raise ScpiError(-109, "Missing parameter")
        self.elements = [choice(p, ELEMENTS) for p in c.params]

    def _initiate(self, *, turn_on: bool, leave_on: bool = False) -> list[list[float]]:
        """Take arm count x trigger count readings; the trace buffer takes them if fed."""
        smu = self.smu["1"]
        if not smu.output:
            if not turn_on:
                raise ScpiError(803, "Not permitted with OUTPUT off")
            smu.set_output(True)
        count = int(stored(self.settings, SETTINGS_BY_NAME["arm"])) * int(stored(self.settings, SETTINGS_BY_NAME["trigger"]))
        delay = float(stored(self.settings, SETTINGS_BY_NAME["delay"]))
        readings = []
        for _ in range(count):
            self.advance_bounded(delay, "trigger delay")
            readings.append(self._one_reading())
        if turn_on and self.auto_output_off and not leave_on:
            smu.set_output(False)
        self._feed(readings)
        self.last = readings
        return readings

    def _feed(self, readings: list[list[float]]) -> None:
        if stored(self.settings, TRACE_FEED) != "NEXT":
            return
        points = int(stored(self.settings, TRACE_POINTS))
        self.trace.extend(readings[: max(points - len(self.trace), 0)])
        if len(self.trace) >= points:
            put(self.settings, TRACE_FEED, "NEV")
            self.measurement_events |= 1 << 9  # buffer full

    def _one_reading(self) -> list[float]:
        smu = self.smu["1"]
        v, i, comp = smu.measure()
        status = 0
        if comp:
            status |= STATUS_COMPLIANCE
            if smu.measure_range is not None and smu.measure_range < smu.limit:
                status |= STATUS_RANGE_COMPLIANCE
        resistance = NOT_MEASURED
        if "RESISTANCE" in self.functions and not self.resistance_auto and i != 0.0:
            resistance = v / i
        return [v, i, resistance, float(self.bench.clock.now), float(status)]

    def format_readings(self, readings: list[list[float]]) -> str:
        index = {"VOLTAGE": 0, "CURRENT": 1, "RESISTANCE": 2, "TIME": 3, "STATUS": 4}
        return ",".join(f"{r[index[e]]:+.6E}" for r in readings for e in self.elements)

    def _read(self, c: Call, *, turn_on: bool, leave_on: bool = False) -> str:
        return self.format_readings(self._initiate(turn_on=turn_on, leave_on=leave_on))

    def _fetch(self) -> str:
        if not self.last:
            raise ScpiError(-230, "Data corrupt or stale")
        return self.format_readings(self.last)


SETTINGS_BY_NAME = {
    "arm": next(s for s in SETTINGS if s.pattern.startswith(":ARM") and s.pattern.endswith(":COUNt")),
    "trigger": next(s for s in SETTINGS if s.pattern.startswith(":TRIGger") and s.pattern.endswith(":COUNt")),
    "delay": next(s for s in SETTINGS if s.pattern.startswith(":TRIGger") and s.pattern.endswith(":DELay")),
}
