"""Simulated Keithley 2450 SourceMeter, native SCPI command set (2450-901-01, section 6).

What acts on the simulated bench: the voltage source (``:SOUR:FUNC VOLT``, level, range,
``:SOUR:VOLT:ILIM`` and its ``:TRIPped?``), the current measure range and auto-range,
NPLC of the active sense function, ``:OUTP``. ``[:SENSe]:FUNCtion`` chooses what a reading
is (current, voltage, or resistance V/I). ``:READ?``, ``:MEASure[:<function>]?`` (which also
selects the function) and ``:TRACe:TRIGger`` take ``[:SENSe]:COUNt`` readings into a buffer
(``defbuffer1`` unless named) and answer the last one's elements; ``:FETCh?`` answers the
latest reading without measuring. ``:TRIGger:LOAD "SimpleLoop", count[, delay[, buffer]]``,
``:SOURce:SWEep:VOLTage:LINear``/``:LOG``/``:LIST`` and ``"Empty"`` load the trigger model;
``:INITiate`` runs it to the end on the virtual clock (a sweep clears its buffer first) (``*WAI``/``*OPC?`` then return at
once); ``:ABORt`` is accepted. Every other setting of the tree is kept and read back
(:mod:`.scpi_settings`). ``*LANG?`` tells the command set; a 2450 left in TSP or SCPI2400
mode (``language``) refuses SCPI commands, as the real one does. Current sourcing is not
simulated: ``:SOUR:FUNC CURR`` is refused (-221) and changes nothing.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .scpi import Call, ScpiError, choice, number, string
from .scpi_buffers import UNITS, Buffers, Reading, TraceBuffer
from .scpi_settings import Setting, add_settings, flag, integer, num, pick, readonly, stored
from .smu_common import ScpiSourceMeter, SmuRatings, scpi_tree

SENSE_FUNCTIONS = ("CURRent", "VOLTage", "RESistance")
SMODES = ("NORMal", "HIMPedance", "ZERO", "GUARd")


def _function_settings() -> list[Setting]:
    out: list[Setting] = [
        num("[:SOURce#]:CURRent[:LEVel][:IMMediate][:AMPLitude]", 0.0, -1.05, 1.05),
        num("[:SOURce#]:CURRent:RANGe", 1e-8, -1.05, 1.05), flag("[:SOURce#]:CURRent:RANGe:AUTO", True),
        num("[:SOURce#]:CURRent:VLIMit[:LEVel]", 21.0, 0.02, 210.0),
        readonly("[:SOURce#]:CURRent:VLIMit[:LEVel]:TRIPped", "0"),
        pick("[:SOURce#]:VOLTage:PROTection[:LEVel]", "NONE", "PROT2", "PROT5", "PROT10", "PROT20", "PROT40",
             "PROT60", "PROT80", "PROT100", "PROT120", "PROT140", "PROT160", "PROT180", "NONE"),
        num("[:SOURce#]:VOLTage:ILIMit[:LEVel]:MAXimum", 1.05, 1e-9, 1.05),
        integer("[:SENSe#]:COUNt", 1, 1, 300000),
        pick(":ROUTe:TERMinals", "FRON", "FRONt", "REAR"),
        readonly(":SYSTem:LFRequency", "50"),
        pick(":DISPlay:LIGHt:STATe", "ON50", "ON100", "ON75", "ON50", "ON25", "OFF", "BLACkout"),
        pick(":FORMat[:DATA]", "ASC", "ASCii", "REAL", "SReal"),
        integer(":FORMat:ASCii:PRECision", 0, 0, 16),
        readonly(":OUTPut#:INTerlock:TRIPped", "0"),
    ]
    for f in ("VOLTage", "CURRent"):
        src = f"[:SOURce#]:{f}"
        out += [num(f"{src}:DELay", 0.0, 0.0, 1e4), flag(f"{src}:DELay:AUTO", True),
                num(f"{src}:DELay:USER#", 0.0, 0.0, 1e4), flag(f"{src}:READ:BACK", True),
                flag(f"{src}:HIGH:CAPacitance", False), pick(f":OUTPut#:{f}:SMODe", "NORM", *SMODES)]
    for f in SENSE_FUNCTIONS:
        sense = f"[:SENSe#]:{f}[:DC]"
        out += [flag(f"{sense}:AZERo[:STATe]", True), flag(f"{sense}:AVERage[:STATe]", False),
                integer(f"{sense}:AVERage:COUNt", 10, 1, 100),
                pick(f"{sense}:AVERage:TCONtrol", "REP", "REPeat", "MOVing"),
                num(f"{sense}:DELay:USER#", 0.0, 0.0, 1e4), flag(f"{sense}:RSENse", f == "RESistance"),
                num(f"{sense}:RELative", 0.0, -1e9, 1e9), flag(f"{sense}:RELative:STATe", False)]
    out += [num("[:SENSe#]:VOLTage[:DC]:RANGe[:UPPer]", 0.02, 0.02, 210.0), flag("[:SENSe#]:VOLTage[:DC]:RANGe:AUTO", True),
            num("[:SENSe#]:RESistance:RANGe[:UPPer]", 2e5, 20.0, 200e6), flag("[:SENSe#]:RESistance:RANGe:AUTO", True),
            flag("[:SENSe#]:RESistance:OCOMpensated", False)]
    return out


SETTINGS = tuple(_function_settings())
COUNT = next(s for s in SETTINGS if s.pattern == "[:SENSe#]:COUNt")


class Keithley2450(ScpiSourceMeter):
    model = "keithley2450"
    idn = "KEITHLEY INSTRUMENTS,MODEL 2450,04520001,1.7.12b"
    ratings = SmuRatings(
        v_max=210.0, i_max=1.05, nplc_min=0.01, nplc_max=10.0, default_limit=105e-6,
        voltage_ranges=(0.02, 0.2, 2.0, 20.0, 200.0),
        current_ranges=(10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0),
    )
    tree = scpi_tree(  # the 2450 has one channel: SOUR1/SENS1
        "[:SOURce#]", "[:SENSe#]", source_range=":VOLTage:RANGe", nplc=("CURRent[:DC]",),
        limit="[:SOURce#]:VOLTage:ILIMit[:LEVel]", limit_tripped="[:SOURce#]:VOLTage:ILIMit[:LEVel]:TRIPped",
        source_range_reply=None, measure_range_reply=1.0, limit_min=1e-9,
    )

    def __init__(self, name: str, bench: Any, channels: Mapping[str, str] | None = None,
                 limits: Mapping[str, Any] | None = None) -> None:
        self.language = "SCPI"  # as set at the last power-up
        self._next_language = "SCPI"
        self.buffers = Buffers()
        self._reset_model()
        super().__init__(name, bench, channels, limits)

    def _reset_model(self) -> None:
        self.sense_function = "CURR"
        self.nplcs = {"CURR": 1.0, "VOLT": 1.0, "RES": 1.0}
        self.trigger_model: tuple[str, Any] = ("EMPTY", None)
        self.buffers.reset()

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
        self._reset_model()

    def add_commands(self) -> None:
        add = self.scpi.add

        def lang_set(c: Call) -> None:
            self._next_language = choice(c.one(), ("SCPI", "TSP", "SCPI2400"))  # after power cycle

        add("*LANG", lang_set, lambda c: self.language)
        add("*TRG", lambda c: None)
        add("[:SENSe#]:FUNCtion[:ON]", self._sense_function, self._sense_query)
        for f in ("VOLTage", "RESistance"):
            key = f[:4].upper() if f != "RESistance" else "RES"
            add(f"[:SENSe#]:{f}[:DC]:NPLCycles", lambda c, k=key: self._set_nplc(k, c),
                lambda c, k=key: f"{self.nplcs[k]:+.6E}")
        add("[:SENSe#]:AZERo:ONCE", lambda c: c.none())
        add_settings(self.scpi, SETTINGS, self.settings)
        add(":READ", None, lambda c: self._read(c, measure=True))
        add(":FETCh", None, lambda c: self._read(c, measure=False))
        add(":MEASure", None, lambda c: self._read(c, measure=True))
        for f in SENSE_FUNCTIONS:
            add(f":MEASure:{f}[:DC]", None, lambda c, f=f: self._measure_function(c, f))
        add(":TRACe:TRIGger", lambda c: self._take(self.buffers.split(c.params)[0]) and None)
        self.buffers.add_commands(self.scpi)
        add(":TRIGger:LOAD", self._load)
        for kind in ("LINear", "LOG", "LIST"):
            add(f"[:SOURce#]:SWEep:VOLTage:{kind}", lambda c, k=kind: self._sweep(c, k))
        add(":INITiate[:IMMediate]", lambda c: self._initiate())
        add(":ABORt", lambda c: None)

    # -- sense function and NPLC -------------------------------------------------------------
    def _sense_function(self, c: Call) -> None:
        func = choice(string(c.one()).split(":")[0], SENSE_FUNCTIONS)
        self.sense_function = {"CURRENT": "CURR", "VOLTAGE": "VOLT", "RESISTANCE": "RES"}[func]
        self.smu["1"].set_nplc(self.nplcs[self.sense_function])

    def _sense_query(self, c: Call) -> str:
        return '"RES"' if self.sense_function == "RES" else f'"{self.sense_function}:DC"'

    def _set_nplc(self, key: str, c: Call) -> None:
        value = number(c.one(), self.ratings.nplc_min, self.ratings.nplc_max, 1.0)
        self.nplcs[key] = value
        if key == self.sense_function:
            self.smu["1"].set_nplc(value)

    def add_channel_commands(self, t: Any) -> None:
        super().add_channel_commands(t)
        ch = self.smu["1"]
        original = ch.set_nplc

        def set_current_nplc(value: float) -> None:  # :SENS:CURR:NPLC is the current function's
            self.nplcs["CURR"] = float(value)
            if self.sense_function == "CURR":
                original(value)

        ch.set_nplc = set_current_nplc  # type: ignore[method-assign]
        self._channel_nplc = original

    # -- readings ---------------------------------------------------------------------------
    def _take(self, buf: TraceBuffer) -> Reading:
        ch = self.smu["1"]
        v, i, comp = ch.measure()
        value = {"CURR": i, "VOLT": v, "RES": (v / i if i else 9.91e37)}[self.sense_function]
        r = Reading(value, v, float(self.bench.clock.now), 8 if comp else 0, UNITS[self.sense_function])
        buf.add(r)
        return r

    def _read(self, c: Call, *, measure: bool) -> str:
        buf, elements = self.buffers.split(c.params)
        if measure:
            count = stored(self.settings, COUNT)
            readings = [self._take(buf) for _ in range(int(count))]
            last = readings[-1]
        else:
            if not buf.readings:
                raise ScpiError(-230, "Data corrupt or stale; the buffer is empty")
            last = buf.readings[-1]
        return self.buffers.format([last], elements, buf)

    def _measure_function(self, c: Call, function: str) -> str:
        self.sense_function = {"CURRent": "CURR", "VOLTage": "VOLT", "RESistance": "RES"}[function]
        self._channel_nplc(self.nplcs[self.sense_function])
        return self._read(c, measure=True)

    # -- trigger model ------------------------------------------------------------------------
    def _load(self, c: Call) -> None:
        if not c.params:
            raise ScpiError(-109, "Missing parameter")
        name = string(c.params[0])
        if name == "Empty":
            self.trigger_model = ("EMPTY", None)
        elif name == "SimpleLoop":
            args = c.params[1:]
            count = int(number(args[0], 1, 300000)) if args else 1
            delay = number(args[1], 0, 1e4) if len(args) > 1 else 0.0
            buf = self.buffers.get(args[2] if len(args) > 2 else None)
            self.trigger_model = ("LOOP", (count, delay, buf))
        else:
            raise ScpiError(-221, f"Settings conflict; trigger template {name} is not simulated")

    def _sweep(self, c: Call, kind: str) -> None:
        p = c.params
        if kind == "LIST":
            levels = [number(x, -self.ratings.v_max, self.ratings.v_max) for x in p[:-1]] if len(p) > 1 else []
            if not levels:
                raise ScpiError(-109, "Missing parameter")
            self.trigger_model = ("SWEEP", (levels, 0.0, 1, self.buffers.get(None)))
            return
        if len(p) < 3:
            raise ScpiError(-109, "Missing parameter")
        v = self.ratings.v_max
        start, stop, points = number(p[0], -v, v), number(p[1], -v, v), int(number(p[2], 2, 1e6))
        delay = number(p[3], -1, 1e4) if len(p) > 3 else -1
        count = int(number(p[4], 0, 268435455)) if len(p) > 4 else 1
        buf = self.buffers.get(p[8] if len(p) > 8 else None)
        if kind == "LOG" and (start <= 0 or stop <= 0):
            raise ScpiError(-222, "Data out of range")
        levels = [start * (stop / start) ** (k / (points - 1)) if kind == "LOG" else start + (stop - start) * k / (points - 1)
                  for k in range(points)]
        self.trigger_model = ("SWEEP", (levels, max(delay, 0.0), max(count, 1), buf))

    def _initiate(self) -> None:
        kind, args = self.trigger_model
        ch = self.smu["1"]
        if kind == "LOOP":
            count, delay, buf = args
            for _ in range(count):
                self.advance_bounded(delay, "trigger delay")
                self._take(buf)
        elif kind == "SWEEP":
            levels, delay, count, buf = args
            if len(levels) * count > 1_000_000:
                raise ScpiError(-222, "Data out of range; sweep too long")
            buf.readings.clear()  # a sweep starts on an empty buffer
            idle = ch.level
            ch.set_output(True)
            try:
                for _ in range(count):
                    for level in levels:
                        ch.set_level(level)
                        self.advance_bounded(delay, "sweep delay")
                        self._take(buf)
            finally:
                ch.set_level(idle)
