"""Simulated Keithley 2400 SourceMeter (2400 Series User's Manual, sections 17-18, appendix B).

``:READ?`` returns the elements chosen by ``:FORM:ELEM`` (default all five: VOLT, CURR, RES,
TIME, STAT) as comma-separated floats; 9.91e37 marks a value not measured. Bit 3 of the
status word is compliance. With auto output-off disabled (the reset default) ``:READ?``
needs the output on, else error +803; ``:MEASure?`` turns the output on (and leaves it on)
as the manual warns.
"""
from __future__ import annotations

from typing import Any

from .scpi import Call, ScpiError, boolean, choice, nr3, number, string
from .smu_common import ScpiSourceMeter, SmuRatings

NOT_MEASURED = 9.91e37
ELEMENTS = ("VOLTage", "CURRent", "RESistance", "TIME", "STATus")
STATUS_COMPLIANCE = 1 << 3
STATUS_RANGE_COMPLIANCE = 1 << 16


class Keithley2400(ScpiSourceMeter):
    model = "keithley2400"
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4109713,C32   Oct  4 2010 14:20:11/A02  /S/K"
    channel_ids = ("1",)
    ratings = SmuRatings(
        v_max=210.0, i_max=1.05, nplc_min=0.01, nplc_max=10.0, default_limit=105e-6,
        voltage_ranges=(0.2, 2.0, 20.0, 200.0),
        current_ranges=(1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0),
    )

    def __init__(self, name: str, bench: Any, channels: dict[str, str] | None = None) -> None:
        self._reset_measure_config()
        super().__init__(name, bench, channels)

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
        ch = self.channel  # SOUR1/SENS1 are the only suffixes a 2400 accepts

        add(":SOURce#:FUNCtion[:MODE]",
            lambda c: ch(c).set_source_function(choice(c.one(), ("VOLTage", "CURRent"))[:4]),
            lambda c: ch(c).source_function)
        add(":SOURce#:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
            lambda c: ch(c).set_level(number(c.one(), -210, 210, 0)),
            lambda c: nr3(ch(c).level))
        add(":SOURce#:VOLTage:RANGe[:UPPer]",
            lambda c: ch(c).set_source_range(number(c.one(), -210, 210)),
            lambda c: nr3(ch(c).source_range or 21.0))
        add(":SOURce#:VOLTage:RANGe:AUTO",
            lambda c: ch(c).set_source_range(None if boolean(c.one()) else (ch(c).source_range or 21.0)),
            lambda c: "1" if ch(c).source_range is None else "0")
        add(":SOURce#:CLEar:AUTO", lambda c: setattr(self, "auto_output_off", boolean(c.one())),
            lambda c: "1" if self.auto_output_off else "0")
        add("[:SENSe#]:CURRent[:DC]:PROTection[:LEVel]",
            lambda c: ch(c).set_limit(number(c.one(), -1.05, 1.05, 105e-6)),
            lambda c: nr3(ch(c).limit))
        add("[:SENSe#]:CURRent[:DC]:PROTection:TRIPped", None,
            lambda c: "1" if ch(c).in_compliance() else "0")
        add("[:SENSe#]:CURRent[:DC]:RANGe[:UPPer]",
            lambda c: ch(c).set_measure_range(number(c.one(), -1.05, 1.05)),
            lambda c: nr3(ch(c).measure_range or 1.05e-4))
        add("[:SENSe#]:CURRent[:DC]:RANGe:AUTO",
            lambda c: ch(c).set_measure_range(None if boolean(c.one()) else (ch(c).measure_range or 1e-4)),
            lambda c: "1" if ch(c).measure_range is None else "0")
        for func in ("CURRent[:DC]", "VOLTage[:DC]", "RESistance"):
            # NPLC is one setting shared by all functions on the 2400.
            add(f"[:SENSe#]:{func}:NPLCycles",
                lambda c: ch(c).set_nplc(number(c.one(), 0.01, 10, 1)),
                lambda c: nr3(ch(c).nplc))
        add("[:SENSe#]:FUNCtion[:ON]", self._functions_on, self._functions_query)
        add("[:SENSe#]:FUNCtion[:ON]:ALL", lambda c: self.functions.update({"VOLTAGE", "CURRENT", "RESISTANCE"}))
        add("[:SENSe#]:FUNCtion:OFF:ALL", lambda c: self.functions.clear())
        add("[:SENSe#]:FUNCtion:CONCurrent", lambda c: boolean(c.one()) and None, lambda c: "1")
        add("[:SENSe#]:RESistance:MODE",
            lambda c: setattr(self, "resistance_auto", choice(c.one(), ("AUTO", "MANual")) == "AUTO"),
            lambda c: "AUTO" if self.resistance_auto else "MAN")
        add(":FORMat:ELEMents[:SENSe#]", self._set_elements, lambda c: ",".join(e[:4] for e in self.elements))
        add(":OUTPut#[:STATe]", lambda c: ch(c).set_output(boolean(c.one())),
            lambda c: "1" if ch(c).output else "0")
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
