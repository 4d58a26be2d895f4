"""The settings of the Keithley 2400 SCPI tree the simulator keeps and reads back, and its
``:TRACe``/``:CALCulate3`` buffer commands (2400 Series User's Manual, section 18).

The source-measure settings that act on the simulated bench (voltage level, ranges,
compliance, NPLC, output) are the channel's, declared by
:class:`~sim_backend.instruments.smu_common.ScpiSourceMeter`; these are the rest.
"""
from __future__ import annotations

import math
from typing import Any

from .scpi import Call, ScpiError, choice, nr3
from .scpi_settings import Setting, flag, integer, num, pick, put, stored

TRACE_POINTS = integer(":TRACe:POINts", 100, 1, 2500)
TRACE_FEED = pick(":TRACe:FEED:CONTrol", "NEV", "NEXT", "NEVer")

SETTINGS: tuple[Setting, ...] = (
    num(":SOURce#:CURRent[:LEVel][:IMMediate][:AMPLitude]", 0.0, -1.05, 1.05),
    num(":SOURce#:CURRent:RANGe", 1.05e-4, -1.05, 1.05), flag(":SOURce#:CURRent:RANGe:AUTO", True),
    num(":SOURce#:DELay", 0.0, 0.0, 999.9999), flag(":SOURce#:DELay:AUTO", True),
    num(":SOURce#:VOLTage:PROTection[:LEVel]", 210.0, 20.0, 210.0),
    pick(":SOURce#:VOLTage:MODE", "FIX", "FIXed", "LIST", "SWEep"),
    pick(":SOURce#:CURRent:MODE", "FIX", "FIXed", "LIST", "SWEep"),
    flag(":SOURce#:CLEar:AUTO:MODE", False),
    pick(":OUTPut#:SMODe", "NORM", "HIMPedance", "NORMal", "ZERO", "GUARd"),
    flag(":OUTPut#:ENABle[:STATe]", False),
    flag("[:SENSe#]:AVERage[:STATe]", False), pick("[:SENSe#]:AVERage:TCONtrol", "REP", "REPeat", "MOVing"),
    integer("[:SENSe#]:AVERage:COUNt", 10, 1, 100),
    num("[:SENSe#]:VOLTage[:DC]:RANGe[:UPPer]", 21.0, -210.0, 210.0), flag("[:SENSe#]:VOLTage[:DC]:RANGe:AUTO", True),
    num("[:SENSe#]:VOLTage[:DC]:PROTection[:LEVel]", 21.0, -210.0, 210.0),
    num("[:SENSe#]:RESistance:RANGe[:UPPer]", 2.1e5, 0.0, 2.1e8), flag("[:SENSe#]:RESistance:RANGe:AUTO", True),
    flag("[:SENSe#]:RESistance:OCOMpensated", False),
    integer(":TRIGger[:SEQuence#]:COUNt", 1, 1, 2500), num(":TRIGger[:SEQuence#]:DELay", 0.0, 0.0, 999.9999),
    pick(":TRIGger[:SEQuence#]:SOURce", "IMM", "IMMediate", "TLINk"),
    pick(":TRIGger[:SEQuence#]:OUTPut", "NONE", "SOURce", "DELay", "SENSe", "NONE"),
    pick(":TRIGger[:SEQuence#]:INPut", "NONE", "SOURce", "DELay", "SENSe", "NONE"),
    integer(":TRIGger[:SEQuence#]:ILINe", 1, 1, 4), integer(":TRIGger[:SEQuence#]:OLINe", 2, 1, 4),
    integer(":ARM[:SEQuence#][:LAYer#]:COUNt", 1, 1, 2500),
    pick(":ARM[:SEQuence#][:LAYer#]:SOURce", "IMM", "IMMediate", "TLINk", "TIMer", "MANual", "BUS",
         "NSTest", "PSTest", "BSTest"),
    num(":ARM[:SEQuence#][:LAYer#]:TIMer", 0.1, 0.001, 99999.99),
    pick(":ARM[:SEQuence#][:LAYer#]:OUTPut", "NONE", "TENTer", "TEXit", "NONE"),
    integer(":ARM[:SEQuence#][:LAYer#]:ILINe", 1, 1, 4), integer(":ARM[:SEQuence#][:LAYer#]:OLINe", 2, 1, 4),
    flag(":DISPlay:ENABle", True), integer(":DISPlay:DIGits", 5, 4, 7),
    flag(":SYSTem:RSENse", False), pick(":SYSTem:LFRequency", "50", "50", "60"),
    flag(":SYSTem:LFRequency:AUTO", False), pick(":SYSTem:GUARd", "CABL", "OHMS", "CABLe"),
    flag(":SYSTem:BEEPer:STATe", True),
    pick(":ROUTe:TERMinals", "FRON", "FRONt", "REAR"),
    TRACE_POINTS, TRACE_FEED, pick(":TRACe:FEED", "SENS", "SENSe", "CALCulate1", "CALCulate2"),
    pick(":TRACe:TSTamp:FORMat", "ABS", "ABSolute", "DELTa"),
    pick(":FORMat[:DATA]", "ASC", "ASCii", "REAL", "SREal"), pick(":FORMat:BORDer", "SWAP", "NORMal", "SWAPped"),
    pick(":FORMat:SREGister", "ASC", "ASCii", "HEXadecimal", "OCTal", "BINary"),
)
_CALC3 = Setting(":CALCulate3:FORMat", "custom", "MEAN")  # stored by hand below
_STATS = {
    "MEAN": lambda v: sum(v) / len(v),
    "SDEV": lambda v: math.sqrt(sum((x - sum(v) / len(v)) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0,
    "MAX": max, "MIN": min, "PKPK": lambda v: max(v) - min(v),
}


def add_trace_commands(inst: Any) -> None:
    """``:TRACe:CLEar/DATA?/POINts:ACTual?/FREE?`` and ``:CALCulate3:DATA?`` of a simulated 2400."""
    add = inst.scpi.add

    def clear(c: Call) -> None:
        c.none()
        inst.trace.clear()

    def data(c: Call) -> str:
        c.none()
        if not inst.trace:
            raise ScpiError(-230, "Data corrupt or stale; the buffer is empty")
        return inst.format_readings(inst.trace)

    def calc3(c: Call) -> str:
        c.none()
        stat = _STATS[stored(inst.settings, _CALC3)]
        columns = {"VOLTAGE": 0, "CURRENT": 1, "RESISTANCE": 2}
        chosen = [columns[e] for e in inst.elements if e in columns] or [0, 1, 2]
        if not inst.trace:
            return ",".join(nr3(9.91e37) for _ in chosen)
        return ",".join(nr3(stat([r[k] for r in inst.trace])) for k in chosen)

    add(":TRACe:CLEar", clear)
    add(":TRACe:DATA", None, data)
    add(":TRACe:POINts:ACTual", None, lambda c: str(len(inst.trace)))
    add(":TRACe:FREE", None, lambda c: f"{(int(stored(inst.settings, TRACE_POINTS)) - len(inst.trace)) * 40},{len(inst.trace) * 40}")
    add(":CALCulate#:DATA", None, lambda c: calc3(_calc3(c)))
    add(":CALCulate#:FORMat", lambda c: put(inst.settings, _CALC3, _calc_format(_calc3(c))),
        lambda c: stored(inst.settings, _calc3(c) and _CALC3))


def _calc3(c: Call) -> Call:
    """CALCulate1/2 (math expressions, limit tests) are not simulated: only CALCulate3 exists."""
    if c.suffix() != 3:
        raise ScpiError(-113, "Undefined header")
    return c


def _calc_format(c: Call) -> str:
    value = choice(c.one(), ("MEAN", "SDEViation", "MAXimum", "MINimum", "PKPK"))
    return {"SDEVIATION": "SDEV", "MAXIMUM": "MAX", "MINIMUM": "MIN"}.get(value, value)
