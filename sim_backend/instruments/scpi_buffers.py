"""Reading buffers of the Keithley 2450 (``defbuffer1``, ``defbuffer2``, ``:TRACe:MAKE``) and
the ``:TRACe`` subsystem (2450-901-01, section 6, TRACe subsystem).

A reading keeps the measured value, the source value, the time on the virtual clock and
the status bits; ``:READ?``/``:FETCh?``/``:TRACe:DATA?`` pick elements of it
(``READing``, ``SOURce``, ``RELative``, ``SEConds``, ``FRACtional``, ``STATus``,
``SOURSTATus``, ``UNIT``, ``SOURUNIT``, ``TIME``, ``DATE``, ``TSTamp``, ``FORMatted``,
``SOURFORMatted``). A buffer in ``ONCE`` fill mode stops taking readings when full; in
``CONTinuous`` mode the oldest are overwritten. Names are case-sensitive, as on the
instrument; an unknown name is -224. The STYLe argument of ``:TRACe:MAKE`` (STANdard,
COMPact, FULL, WRITable, FULLWRITable) is kept and ignored.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from .scpi import Call, Dispatcher, ScpiError, choice, number, string

ELEMENTS = ("READing", "SOURce", "RELative", "SEConds", "FRACtional", "STATus", "SOURSTATus", "UNIT",
            "SOURUNIT", "TIME", "DATE", "TSTamp", "FORMatted", "SOURFORMatted")
DEFAULT_BUFFERS = {"defbuffer1": 100000, "defbuffer2": 10}
UNITS = {"CURR": "Amp DC", "VOLT": "Volt DC", "RES": "Ohm"}
EPOCH = time.mktime((2026, 1, 1, 0, 0, 0, 0, 1, -1))  # the virtual clock's 0


@dataclass
class Reading:
    value: float
    source: float
    t: float
    status: int
    unit: str
    source_unit: str = "Volt DC"


@dataclass
class TraceBuffer:
    name: str
    capacity: int
    style: str = "STAN"
    fill_continuous: bool = True
    readings: list[Reading] = field(default_factory=list)

    def add(self, r: Reading) -> None:
        if len(self.readings) >= self.capacity:
            if not self.fill_continuous:
                return
            del self.readings[0]
        self.readings.append(r)


def element(r: Reading, name: str, t0: float) -> str:
    """One element of a reading, as the 2450 prints it."""
    stamp = time.localtime(EPOCH + r.t)
    if name == "READING":
        return f"{r.value:.6E}"
    if name == "SOURCE":
        return f"{r.source:.6E}"
    if name == "RELATIVE":
        return f"{r.t - t0:.6E}"
    if name == "SECONDS":
        return str(int(EPOCH + r.t))
    if name == "FRACTIONAL":
        return f"{math.modf(r.t)[0]:.9f}"
    if name in ("STATUS", "SOURSTATUS"):
        return str(r.status if name == "STATUS" else 0)
    if name in ("UNIT", "SOURUNIT"):
        return r.unit if name == "UNIT" else r.source_unit
    if name == "TIME":
        return time.strftime("%H:%M:%S", stamp) + f".{int(math.modf(r.t)[0] * 1e3):03d}"
    if name == "DATE":
        return time.strftime("%m/%d/%Y", stamp)
    if name == "TSTAMP":
        return time.strftime("%m/%d/%Y %H:%M:%S", stamp) + f".{int(math.modf(r.t)[0] * 1e9):09d}"
    unit = {"Amp DC": "A", "Volt DC": "V", "Ohm": "Ohm"}
    if name == "FORMATTED":
        return f"{r.value:+.5E} {unit.get(r.unit, '')}"
    return f"{r.source:+.5E} {unit.get(r.source_unit, '')}"


class Buffers:
    """The buffers of one 2450 and its ``:TRACe`` commands."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.buffers = {n: TraceBuffer(n, size) for n, size in DEFAULT_BUFFERS.items()}

    def get(self, param: str | None) -> TraceBuffer:
        name = "defbuffer1" if param is None else string(param)
        if name not in self.buffers:
            raise ScpiError(-224, f"Illegal parameter value; no buffer named {name}")
        return self.buffers[name]

    def format(self, readings: list[Reading], elements: list[str], buf: TraceBuffer) -> str:
        t0 = buf.readings[0].t if buf.readings else 0.0
        names = [choice(e, ELEMENTS) for e in elements] or ["READING"]
        return ",".join(element(r, n, t0) for r in readings for n in names)

    def split(self, params: list[str]) -> tuple[TraceBuffer, list[str]]:
        """``["name"][, elements ...]`` of :READ?/:FETCh?/:MEASure?."""
        if params and params[0][:1] in "\"'":
            return self.get(params[0]), params[1:]
        return self.get(None), params

    def add_commands(self, scpi: Dispatcher) -> None:
        add = scpi.add
        add(":TRACe:MAKE", self._make)
        add(":TRACe:DELete", self._delete)
        add(":TRACe:CLEar", lambda c: self.get(c.params[0] if c.params else None).readings.clear())
        add(":TRACe:POINts", self._resize, lambda c: str(self._one(c).capacity))
        add(":TRACe:ACTual", None, lambda c: str(len(self._one(c).readings)))
        add(":TRACe:ACTual:STARt", None, lambda c: "1" if self._one(c).readings else "0")
        add(":TRACe:ACTual:END", None, lambda c: str(len(self._one(c).readings)))
        add(":TRACe:FILL:MODE", self._fill, lambda c: "CONT" if self._one(c).fill_continuous else "ONCE")
        add(":TRACe:DATA", None, self._data)
        for stat, fn in (("AVERage", _mean), ("MAXimum", max), ("MINimum", min), ("STDDev", _stdev),
                         ("PK2Pk", lambda v: max(v) - min(v))):
            add(f":TRACe:STATistics:{stat}", None, lambda c, fn=fn: self._stat(c, fn))
        add(":TRACe:STATistics:CLEar", lambda c: None)

    def _one(self, c: Call) -> TraceBuffer:
        if len(c.params) > 1:
            raise ScpiError(-108, "Parameter not allowed")
        return self.get(c.params[0] if c.params else None)

    def _make(self, c: Call) -> None:
        if len(c.params) not in (2, 3):
            raise ScpiError(-109, "Missing parameter")
        name = string(c.params[0])
        if name in self.buffers or not name or len(name) > 31:
            raise ScpiError(-224, f"Illegal parameter value; buffer name {name} in use or invalid")
        size = int(number(c.params[1], 10, 1e6))
        style = choice(c.params[2], ("STANdard", "COMPact", "FULL", "WRITable", "FULLWRITable")) if len(c.params) > 2 else "STAN"
        self.buffers[name] = TraceBuffer(name, size, style)

    def _delete(self, c: Call) -> None:
        name = string(c.one())
        if name in DEFAULT_BUFFERS:
            raise ScpiError(-221, "Settings conflict; default buffers cannot be deleted")
        self.get(c.params[0])
        del self.buffers[name]

    def _resize(self, c: Call) -> None:
        if not c.params or len(c.params) > 2:
            raise ScpiError(-109, "Missing parameter")
        buf = self.get(c.params[1] if len(c.params) > 1 else None)
        buf.capacity = int(number(c.params[0], 1 if buf.name != "defbuffer1" else 10, 1e6))
        buf.readings = buf.readings[-buf.capacity:]

    def _fill(self, c: Call) -> None:
        if not c.params or len(c.params) > 2:
            raise ScpiError(-109, "Missing parameter")
        buf = self.get(c.params[1] if len(c.params) > 1 else None)
        buf.fill_continuous = choice(c.params[0], ("CONTinuous", "ONCE")) == "CONTINUOUS"

    def _data(self, c: Call) -> str:
        if len(c.params) < 2:
            raise ScpiError(-109, "Missing parameter")
        first, last = int(number(c.params[0], 1, 1e6)), int(number(c.params[1], 1, 1e6))
        buf = self.get(c.params[2] if len(c.params) > 2 else None)
        if last < first or last > len(buf.readings):
            raise ScpiError(-222, "Data out of range; no such readings in the buffer")
        return self.format(buf.readings[first - 1:last], c.params[3:], buf)

    def _stat(self, c: Call, fn: Any) -> str:
        values = [r.value for r in self._one(c).readings]
        return f"{fn(values):.6E}" if values else "9.910000E+37"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _stdev(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    m = _mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
