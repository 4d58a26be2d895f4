"""Simulated Keysight B2901A/B2902A precision SMU (B2900 SCPI Command Reference).

Channels are header suffixes (``:SOUR2:VOLT``, ``:OUTP2``) or channel lists
(``:MEAS? (@2)``). ``:MEAS?`` returns the elements set by ``:FORM:ELEM:SENS``; the
compliance state is ``:SENS<c>:CURR:PROT:TRIP?``. The reset default of
``:OUTP:ON:AUTO`` is ON: a ``:READ?``/``:INIT``/``:MEAS?`` then turns an off output on.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .scpi import Call, ScpiError, boolean, channel_list, choice, nr3, string
from .smu_common import ScpiSourceMeter, SmuChannel, SmuRatings, scpi_tree

ELEMENTS = ("VOLTage", "CURRent", "RESistance", "TIME", "STATus", "SOURce")
STATUS_CURRENT_COMPLIANCE = 1 << 1


class KeysightB2902A(ScpiSourceMeter):
    model = "keysight_b2902a"
    idn = "Keysight Technologies,B2902A,MY51140001,3.4.2011.5100"
    channel_ids = ("1", "2")
    error_format = '{code:+d},"{message}"'
    ratings = SmuRatings(
        v_max=210.0, i_max=3.03, nplc_min=4e-4, nplc_max=100.0, default_limit=100e-6,
        voltage_ranges=(0.2, 2.0, 20.0, 200.0),
        current_ranges=(10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 1.5, 3.0),
    )
    tree = scpi_tree(":SOURce#", ":SENSe#", function=":FUNCtion:MODE",
                     source_range_reply=2.0, measure_range_reply=100e-6, nplc_default=0.1)

    def __init__(self, name: str, bench: Any, channels: Mapping[str, str] | None = None,
                 limits: Mapping[str, Any] | None = None) -> None:
        self.elements = ["VOLTAGE", "CURRENT", "RESISTANCE", "TIME", "STATUS", "SOURCE"]
        self.auto_on = {cid: True for cid in self.channel_ids}
        super().__init__(name, bench, channels, limits)

    def reset(self) -> None:
        super().reset()
        self.elements = ["VOLTAGE", "CURRENT", "RESISTANCE", "TIME", "STATUS", "SOURCE"]
        self.auto_on = {cid: True for cid in self.channel_ids}

    def add_commands(self) -> None:
        add = self.scpi.add
        add(":SENSe#:FUNCtion[:ON]", self._functions_on, lambda c: '"VOLT","CURR"')
        add(":OUTPut#:ON:AUTO", lambda c: self.auto_on.__setitem__(self._cid(c), boolean(c.one())),
            lambda c: "1" if self.auto_on[self._cid(c)] else "0")
        add(":FORMat:ELEMents:SENSe", self._set_elements, lambda c: ",".join(e[:4] for e in self.elements))
        add(":MEASure", None, self._measure_all)
        add(":READ", None, self._measure_all)
        add(":MEASure:CURRent[:DC]", None, lambda c: self._measure_one(c, 1))
        add(":MEASure:VOLTage[:DC]", None, lambda c: self._measure_one(c, 0))

    def _cid(self, c: Call) -> str:
        self.channel(c)
        return str(c.suffix())

    def _functions_on(self, c: Call) -> None:
        if not c.params:
            raise ScpiError(-109, "Missing parameter")
        for p in c.params:
            choice(string(p), ("VOLTage", "CURRent", "RESistance"))

    def _set_elements(self, c: Call) -> None:
        if not c.params:
            raise ScpiError(-109, "Missing parameter")
        self.elements = [choice(p, ELEMENTS) for p in c.params]

    def _targets(self, c: Call) -> list[tuple[str, SmuChannel]]:
        if not c.params:
            return [("1", self.smu["1"])]
        if len(c.params) > 1:
            raise ScpiError(-108, "Parameter not allowed")
        out = []
        for n in channel_list(c.params[0]):
            if str(n) not in self.smu:
                raise ScpiError(-224, "Illegal parameter value")
            out.append((str(n), self.smu[str(n)]))
        return out

    def _sample(self, cid: str, smu: SmuChannel) -> tuple[float, float, bool]:
        if not smu.output and self.auto_on[cid]:
            smu.set_output(True)
        return smu.measure()

    def _measure_all(self, c: Call) -> str:
        fields = []
        for cid, smu in self._targets(c):
            v, i, comp = self._sample(cid, smu)
            values = {
                "VOLTAGE": v, "CURRENT": i, "RESISTANCE": (v / i if i else 9.91e37),
                "TIME": float(self.bench.clock.now),
                "STATUS": float(STATUS_CURRENT_COMPLIANCE if comp else 0), "SOURCE": smu.level,
            }
            fields.extend(nr3(values[e]) for e in self.elements)
        return ",".join(fields)

    def _measure_one(self, c: Call, index: int) -> str:
        return ",".join(nr3(self._sample(cid, smu)[index]) for cid, smu in self._targets(c))


class KeysightB2901A(KeysightB2902A):
    model = "keysight_b2901a"
    idn = "Keysight Technologies,B2901A,MY51140002,3.4.2011.5100"
    channel_ids = ("1",)
