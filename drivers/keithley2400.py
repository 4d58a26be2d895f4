"""Keithley 2400 SourceMeter (GPIB, LAN adapters, USB and RS-232), reusing pymeasure's driver.

pymeasure's ``Keithley2400`` is tested byte for byte upstream and its settings are sound,
so the instrument class subclasses it: source level, compliance, ranges, NPLC, output and
the ``:FORM:ELEM`` it sends on connect (which changes no output state) are its properties,
checked first against the 2400's entry in :mod:`drivers.capabilities`.
Two of its measurement paths are not used: ``current``/``voltage`` send ``:MEAS:<f>?``,
which on a 2400 runs ``:CONF`` first, turning the output on and resetting the function's
settings to their ``*RST`` values (2400 manual, :CONFigure); we read with ``:READ?`` after
choosing concurrent V and I sensing once, and take compliance from bit 3 of the status
element of the same reading.
"""
from __future__ import annotations

from typing import Any

from pymeasure.instruments import Channel
from pymeasure.instruments.keithley.keithley2400 import Keithley2400 as PymeasureKeithley2400
from pymeasure.instruments.validators import strict_range

from .capabilities import capability
from .errors import BadReply
from .scpi_smu import ScpiSourceMeter
from .smu_common import (
    InstrumentError,
    Reading,
    SourceMeterChannelBase,
    channels_of,
    measured,
    to_bool01,
    to_floats,
)

MODEL = "keithley2400"
CAP = capability(MODEL)
STATUS_COMPLIANCE = 1 << 3  # status word bit 3: real compliance
_V = (-CAP.v_max, CAP.v_max)
_I = (-CAP.i_limit_max, CAP.i_limit_max)  # symmetric, as pymeasure's 2400 bounds it


def _forward(attr: str, doc: str, limits: tuple[float, float] | None = None, check: bool = True) -> property:
    """A channel property backed by a pymeasure Keithley2400 property.

    ``limits``: checked before anything is sent; ``check``: error queue read after setting.
    """

    def fget(self: "Keithley2400Channel") -> Any:
        try:
            return getattr(self.parent, attr)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            # pymeasure leaves an unparsable reply as a string, then fails to map it
            raise BadReply(f"unexpected reply for {attr}") from exc

    def fset(self: "Keithley2400Channel", value: Any) -> None:
        if limits is not None:
            value = strict_range(value, limits)
        setattr(self.parent, attr, value)
        if check:
            self.parent.raise_errors()

    return property(fget, fset, doc=doc)


class Keithley2400Channel(SourceMeterChannelBase):
    """The 2400's one channel; settings go through the pymeasure instrument properties."""

    v_max = CAP.v_max
    voltage_function = "voltage"  # pymeasure's name for :SOUR:FUNC VOLT
    source_function = _forward("source_mode", "Source function, 'voltage' or 'current'.")
    source_voltage = _forward("source_voltage", f"Source level in V (±{CAP.v_max:g}).", _V)
    pulse_level = _forward("source_voltage", "Source level without an error-queue round trip.", _V, check=False)
    current_limit = _forward("compliance_current", f"Current compliance in A (±{CAP.i_limit_max:g}).", _I)
    source_voltage_range = _forward("source_voltage_range", "Fixed source range in V.", _V)
    source_voltage_range_auto = _forward("source_voltage_range_auto_enabled", "Source auto-range.")
    current_range = _forward("current_range", "Fixed current measure range in A.", _I)
    current_range_auto = _forward("current_range_auto_enabled", "Current measure auto-range.")
    nplc = _forward("current_nplc", "Integration time in power-line cycles.", CAP.nplc_range)

    limit_tripped = Channel.measurement(
        ":SENSE:CURRENT:PROTECTION:TRIPPED?",
        """Get whether the source is in current compliance (bool).""",
        get_process=to_bool01,
    )
    reading = Channel.measurement(
        ":READ?",
        """Get one reading [V, A, Ohm, s, status] (the :FORM:ELEM set on connect).""",
        get_process=lambda v: to_floats(5)([v]), get_process_list=to_floats(5),
    )

    @property
    def output_on(self) -> bool:
        return to_bool01(self.parent.ask("OUTPUT?"))

    @output_on.setter
    def output_on(self, on: bool) -> None:
        self.parent.source_enabled = bool(on)
        self.parent.raise_errors()

    def _configure_sense(self) -> None:
        self.write(":SENSE:FUNCTION:CONCURRENT 1;:SENSE:FUNCTION 'VOLT','CURR'")
        self.parent.raise_errors()

    def _measure_raw(self) -> Reading:
        if self._output is False:
            # With auto output-off disabled a 2400 refuses :READ? (+803) and never answers.
            raise InstrumentError("output is off: a 2400 cannot read with its output off (error +803)")
        v, i, _r, _t, status = self.reading
        return Reading(measured(v, "voltage"), measured(i, "current"), bool(int(status) & STATUS_COMPLIANCE))


class Keithley2400(ScpiSourceMeter, PymeasureKeithley2400):
    """pymeasure's Keithley 2400 plus typed errors and the source-meter role (``smu["1"]``)."""

    default_name = "Keithley 2400"
    smu = channels_of(MODEL, Keithley2400Channel)
