"""Keithley 2400 SourceMeter (GPIB, LAN adapters, USB and RS-232), reusing pymeasure's driver.

pymeasure's ``Keithley2400`` is tested byte for byte upstream and its settings are sound,
so the instrument class subclasses it: source level, compliance, ranges, NPLC, output and
the ``:FORM:ELEM`` it sends on connect (which changes no output state) are its properties.
Two of its measurement paths are not used: ``current``/``voltage`` send ``:MEAS:<f>?``,
which on a 2400 runs ``:CONF`` first, turning the output on and resetting the function's
settings to their ``*RST`` values (2400 manual, :CONFigure); we read with ``:READ?`` after
choosing concurrent V and I sensing once, and take compliance from bit 3 of the status
element of the same reading.
"""
from __future__ import annotations

from typing import Any

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.keithley.keithley2400 import Keithley2400 as PymeasureKeithley2400

from .errors import BadReply
from .smu_common import (
    GuardedInstrument,
    InstrumentError,
    Reading,
    SourceMeterChannelBase,
    measured,
    parse_scpi_error,
    to_bool01,
    to_floats,
    translated,
)

STATUS_COMPLIANCE = 1 << 3  # status word bit 3: real compliance


def _forward(attr: str, doc: str) -> property:
    """A channel property backed by a pymeasure Keithley2400 property, error queue checked."""

    def fget(self: "Keithley2400Channel") -> Any:
        try:
            return getattr(self.parent, attr)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            # pymeasure leaves an unparsable reply as a string, then fails to map it
            raise BadReply(f"unexpected reply for {attr}") from exc

    def fset(self: "Keithley2400Channel", value: Any) -> None:
        setattr(self.parent, attr, value)
        self.parent.raise_errors()

    return property(fget, fset, doc=doc)


class Keithley2400Channel(SourceMeterChannelBase):
    """The 2400's one channel; settings go through the pymeasure instrument properties."""

    source_mode = _forward("source_mode", "Source function, 'voltage' or 'current'.")
    source_voltage = _forward("source_voltage", "Source level in V (±210).")
    current_limit = _forward("compliance_current", "Current compliance in A (±1.05).")
    source_voltage_range = _forward("source_voltage_range", "Fixed source range in V.")
    source_voltage_range_auto = _forward("source_voltage_range_auto_enabled", "Source auto-range.")
    current_range = _forward("current_range", "Fixed current measure range in A.")
    current_range_auto = _forward("current_range_auto_enabled", "Current measure auto-range.")
    nplc = _forward("current_nplc", "Integration time in power-line cycles (0.01 to 10).")

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

    def _prepare(self) -> None:
        if self.source_mode != "voltage":
            if self._query_output():
                raise InstrumentError("sourcing current with the output on; turn it off before using it as a voltage source")
            self.source_mode = "voltage"
        self.write(":SENSE:FUNCTION:CONCURRENT 1;:SENSE:FUNCTION 'VOLT','CURR'")
        self.parent.raise_errors()
        self._output = self._query_output()

    def _measure_raw(self) -> Reading:
        if self._output is False:
            # With auto output-off disabled a 2400 refuses :READ? (+803) and never answers.
            raise InstrumentError("output is off: a 2400 cannot read with its output off (error +803)")
        v, i, _r, _t, status = self.reading
        return Reading(measured(v, "voltage"), measured(i, "current"), bool(int(status) & STATUS_COMPLIANCE))

    def _pulse_raw(self, volts: float, width_s: float) -> bool:
        self.parent.source_voltage = volts  # pymeasure setter, no error round trip inside the pulse
        self.parent.sleep(width_s)
        tripped = self.limit_tripped
        self.parent.source_voltage = 0.0
        self.parent.raise_errors(f"pulse to {volts:g} V for {width_s:g} s")
        return tripped


class Keithley2400(GuardedInstrument, PymeasureKeithley2400):
    """pymeasure's Keithley 2400 plus typed errors and the source-meter role (``smu["1"]``)."""

    smu1 = Instrument.ChannelCreator(Keithley2400Channel, "1", collection="smu")

    def __init__(self, adapter: Any, name: str = "Keithley 2400", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 5000)
        with translated(name, f"open {adapter}"):
            super().__init__(adapter, name, **kwargs)

    def read_error(self) -> tuple[int, str]:
        return parse_scpi_error(self.ask(":SYST:ERR?"))

    def channels(self) -> dict[str, Keithley2400Channel]:
        return dict(self.smu)
