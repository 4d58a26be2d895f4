"""What the SCPI source-meters share: the error queue, and one channel built from a header table.

The Keithley 2450 and the Keysight B2900 ask the same things in the same SCPI shape
(``<source>:VOLT``, ``<limit>:TRIP?``, ``<sense>:CURR:RANG:AUTO`` ...); only the headers
differ (``:SOUR:VOLT:ILIM`` on a 2450 is ``:SENS<c>:CURR:PROT`` on a B2900). A model gives
its :class:`ScpiHeaders`, and :func:`scpi_channel` declares the role's pymeasure properties
on them with the bounds of the model's entry in :mod:`drivers.capabilities`. Reading is one
query answering ``V,I``; compliance is ``<limit>:TRIP?``; a pulse is the default
level-sleep-zero of :class:`~drivers.smu_common.SourceMeterChannelBase`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pymeasure.instruments import Channel
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .capabilities import capability
from .errors import BadReply
from .smu_common import (
    GuardedInstrument,
    Reading,
    SourceMeterChannelBase,
    measured,
    number_control,
    one_of,
    switch_control,
    to_bool01,
    to_floats,
)


def parse_scpi_error(reply: str) -> tuple[int, str]:
    """``-113,"Undefined header"`` -> (-113, 'Undefined header')."""
    m = re.match(r'^\s*([+-]?\d+)\s*,\s*"?(.*?)"?\s*$', reply, re.S)
    if not m:
        raise BadReply("expected an error queue entry 'code,\"message\"'", reply=reply)
    return int(m.group(1)), m.group(2)


class ScpiSourceMeter(GuardedInstrument):
    """Mixin of the SCPI source-meter instruments: the ``:SYST:ERR?`` error queue."""

    def read_error(self) -> tuple[int, str]:
        return parse_scpi_error(self.ask(":SYST:ERR?"))

    def sync_marker(self, nonce: int) -> tuple[str, str]:
        # SCPI has no echo: the event-status-enable register holds the nonce for one query
        # (1..255) and is set back to its *RST value, 0, in the same message
        value = nonce % 255 + 1
        return f"*ESE {value};*ESE?;*ESE 0", str(value)


@dataclass(frozen=True)
class ScpiHeaders:
    """Where one model keeps the role's settings (``{ch}`` is the channel number)."""

    function: str  # source function, e.g. ":SOUR:FUNC"
    source: str  # source subsystem, e.g. ":SOUR" (level and range are <source>:VOLT...)
    limit: str  # current limit of the voltage source; <limit>:TRIP? is its state
    sense: str  # sense subsystem, e.g. ":SENS" (<sense>:CURR:RANG, <sense>:CURR:NPLC)
    output: str  # output relay, e.g. ":OUTP"
    reading: str  # one query answering "V,I"


class ScpiSourceMeterChannel(SourceMeterChannelBase):
    """A SCPI channel: properties from :func:`scpi_channel`, a reading is ``V,I`` plus the trip state."""

    def _measure_raw(self) -> Reading:
        v, i = self.voltage_and_current  # type: ignore[attr-defined]
        return Reading(measured(v, "voltage"), measured(i, "current"), self.limit_tripped)  # type: ignore[attr-defined]


def _reading_pair(value: object) -> list[float]:
    return to_floats(2)([value])


def scpi_channel(model: str, headers: ScpiHeaders) -> type[ScpiSourceMeterChannel]:
    """A channel class for ``model`` speaking ``headers``, bounded by its capability entry."""
    cap = capability(model)
    h = headers
    v = (-cap.v_max, cap.v_max)
    i = (cap.i_limit_min, cap.i_limit_max)
    n = cap.nplc_range
    namespace = {
        "__doc__": f"A {model} channel: up to ±{cap.v_max:g} V, {cap.i_limit_max:g} A.",
        "__module__": __name__,
        "v_max": cap.v_max,
        "source_function": Channel.control(
            f"{h.function}?", f"{h.function} %s", """Control the source function ('VOLT' or 'CURR').""",
            validator=strict_discrete_set, values=("VOLT", "CURR"),
            get_process=one_of("VOLT", "CURR"), check_set_errors=True,
        ),
        "source_voltage": number_control(
            f"{h.source}:VOLT?", f"{h.source}:VOLT %g", f"Control the source voltage level in V (±{cap.v_max:g}).", v),
        "pulse_level": Channel.setting(
            f"{h.source}:VOLT %g", """Set the level without an error-queue round trip (pulse edges; checked after).""",
            validator=strict_range, values=v,
        ),
        "current_limit": number_control(
            f"{h.limit}?", f"{h.limit} %g", f"Control the current limit (compliance) in A ({i[0]:g} to {i[1]:g}).", i),
        "limit_tripped": Channel.measurement(
            f"{h.limit}:TRIP?", """Get whether the source is clamped at its current limit (bool).""",
            get_process=to_bool01,
        ),
        "source_voltage_range": number_control(
            f"{h.source}:VOLT:RANG?", f"{h.source}:VOLT:RANG %g",
            """Control the fixed source range in V (selects the range holding the value).""", v),
        "source_voltage_range_auto": switch_control(
            f"{h.source}:VOLT:RANG:AUTO?", f"{h.source}:VOLT:RANG:AUTO %d", """Control source auto-range (bool)."""),
        "current_range": number_control(
            f"{h.sense}:CURR:RANG?", f"{h.sense}:CURR:RANG %g", """Control the fixed current measure range in A.""", i),
        "current_range_auto": switch_control(
            f"{h.sense}:CURR:RANG:AUTO?", f"{h.sense}:CURR:RANG:AUTO %d",
            """Control current measure auto-range (bool)."""),
        "nplc": number_control(
            f"{h.sense}:CURR:NPLC?", f"{h.sense}:CURR:NPLC %g",
            f"Control the integration time in power-line cycles ({n[0]:g} to {n[1]:g}).", n),
        "output_on": switch_control(f"{h.output}?", f"{h.output} %d", """Control the output (bool)."""),
        "voltage_and_current": Channel.measurement(
            h.reading, """Get [V, A] from one reading.""", get_process=_reading_pair, get_process_list=to_floats(2)),
    }
    name = "".join(part.capitalize() for part in model.split("_")) + "ChannelBase"
    return type(name, (ScpiSourceMeterChannel,), namespace)
