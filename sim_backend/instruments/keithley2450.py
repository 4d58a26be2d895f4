"""Simulated Keithley 2450 SourceMeter, native SCPI command set (2450-901-01, section 6).

Readings come from ``:READ? "defbuffer1", <elements>`` (READing = the sense function,
SOURce = the source readback); a clamped source reports through
``:SOUR:VOLT:ILIM:TRIP?``. ``*LANG?`` tells the command set; a 2450 left in TSP or
SCPI2400 mode (``language``) refuses SCPI commands, as the real one does.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .scpi import Call, ScpiError, choice, nr3, string
from .smu_common import ScpiSourceMeter, SmuRatings, scpi_tree

BUFFERS = ("defbuffer1", "defbuffer2")


class Keithley2450(ScpiSourceMeter):
    model = "keithley2450"
    idn = "KEITHLEY INSTRUMENTS,MODEL 2450,04520001,1.7.12b"
    ratings = SmuRatings(
        v_max=210.0, i_max=1.05, nplc_min=0.01, nplc_max=10.0, default_limit=105e-6,
        voltage_ranges=(0.02, 0.2, 2.0, 20.0, 200.0),
        current_ranges=(10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0),
    )
    tree = scpi_tree(  # the 2450 has one channel: SOUR1/SENS1
        "[:SOURce#]", "[:SENSe#]", source_range=":VOLTage:RANGe",
        limit="[:SOURce#]:VOLTage:ILIMit[:LEVel]", limit_tripped="[:SOURce#]:VOLTage:ILIMit[:LEVel]:TRIPped",
        source_range_reply=None, measure_range_reply=1.0, limit_min=1e-9,
    )

    def __init__(self, name: str, bench: Any, channels: Mapping[str, str] | None = None,
                 limits: Mapping[str, Any] | None = None) -> None:
        self.language = "SCPI"  # as set at the last power-up
        self._next_language = "SCPI"
        self.sense_function = "CURR"
        super().__init__(name, bench, channels, limits)

    def handle(self, message: str) -> str | None:
        if message.strip().upper().startswith("*LANG"):
            return super().handle(message)
        if self.language != "SCPI":
            # A TSP-mode 2450 runs the line as Lua, where SCPI is a syntax error.
            self.push_error(-285, "TSP Syntax error at line 1: unexpected symbol near ':'")
            return None
        return super().handle(message)

    def reset(self) -> None:
        super().reset()
        self.sense_function = "CURR"

    def add_commands(self) -> None:
        add = self.scpi.add

        def lang_set(c: Call) -> None:
            self._next_language = choice(c.one(), ("SCPI", "TSP", "SCPI2400"))  # after power cycle

        add("*LANG", lang_set, lambda c: self.language)
        add("[:SENSe#]:FUNCtion[:ON]", self._sense_function, lambda c: f'"{self.sense_function}:DC"')
        add(":READ", None, self._read)
        add(":MEASure[:CURRent][:DC]", None, lambda c: nr3(self._measure(c)[1]))
        add(":MEASure:VOLTage[:DC]", None, lambda c: nr3(self._measure(c)[0]))

    def _sense_function(self, c: Call) -> None:
        func = choice(string(c.one()).split(":")[0], ("CURRent", "VOLTage", "RESistance"))
        if func != "CURRENT":
            raise ScpiError(-221, "Settings conflict; simulated 2450 senses current only")
        self.sense_function = "CURR"

    def _measure(self, c: Call) -> tuple[float, float, bool]:
        return self.channel(c).measure()

    def _read(self, c: Call) -> str:
        params = list(c.params)
        if params:
            if string(params[0]) not in BUFFERS:
                raise ScpiError(-224, "Illegal parameter value")
            params = params[1:]
        elements = [choice(p, ("READing", "SOURce", "RELative", "SEConds")) for p in params] or ["READING"]
        v, i, _ = self.channel(c).measure()
        now = float(self.bench.clock.now)
        values = {"READING": i, "SOURCE": v, "RELATIVE": now, "SECONDS": now}
        return ",".join(f"{values[e]:.6E}" for e in elements)
