"""Simulated Keithley 2400 SourceMeter (2400 Series User's Manual, sections 17-18, appendix B).

``:READ?`` returns the elements chosen by ``:FORM:ELEM`` (default all five: VOLT, CURR, RES,
TIME, STAT) as comma-separated floats; 9.91e37 marks a value not measured. Bit 3 of the
status word is compliance. With auto output-off disabled (the reset default) ``:READ?``
needs the output on, else error +803; ``:MEASure?`` turns the output on (and leaves it on)
as the manual warns.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .scpi import Call, ScpiError, boolean, choice, string
from .smu_common import ScpiSourceMeter, SmuRatings, scpi_tree

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
        add("[:SENSe#]:RESistance:MODE",
            lambda c: setattr(self, "resistance_auto", choice(c.one(), ("AUTO", "MANual")) == "AUTO"),
            lambda c: "AUTO" if self.resistance_auto else "MAN")
        add(":FORMat:ELEMents[:SENSe#]", self._set_elements, lambda c: ",".join(e[:4] for e in self.elements))
        add(":READ", None, lambda c: self._read(c, turn_on=self.auto_output_off))
        add(":MEASure[:VOLTage][:DC]", None, lambda c: self._read(c, turn_on=True, leave_on=True))
        add(":MEASure:CURRent[:DC]", None, lambda c: self._read(c, turn_on=True, leave_on=True))

    def _functions_on(self, c: Call) -> None:
        if not c.params:
            raise ScpiError(-109, "Missing parameter")
        for p in c.params:
            self.functions.add(choice(string(p).split(":")[0], ELEMENTS[:3]))

    def _functions_query(self, c: Call) -> str:
        return ",".join(f'"{f[:4]}:DC"' for f in sorted(self.functions))

    def _set_elements(self, c: Call) -> None:
        if not c.params:
            raise ScpiError(-109, "Missing parameter")
        self.elements = [choice(p, ELEMENTS) for p in c.params]

    def _read(self, c: Call, *, turn_on: bool, leave_on: bool = False) -> str | None:
        smu = self.smu["1"]
        if not smu.output:
            if not turn_on:
                raise ScpiError(803, "Not permitted with OUTPUT off")
            smu.set_output(True)
        v, i, comp = smu.measure()
        if turn_on and self.auto_output_off and not leave_on:
            smu.set_output(False)
        status = 0
        if comp:
            status |= STATUS_COMPLIANCE
            if smu.measure_range is not None and smu.measure_range < smu.limit:
                status |= STATUS_RANGE_COMPLIANCE
        resistance = NOT_MEASURED
        if "RESISTANCE" in self.functions and not self.resistance_auto and i != 0.0:
            resistance = v / i
        values = {
            "VOLTAGE": v,
            "CURRENT": i,
            "RESISTANCE": resistance,
            "TIME": float(self.bench.clock.now),
            "STATUS": float(status),
        }
        return ",".join(f"{values[e]:+.6E}" for e in self.elements)
