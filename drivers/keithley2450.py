"""Keithley 2450 SourceMeter, native SCPI command set (Reference Manual 2450-901-01, section 6).

Written on pymeasure's Instrument rather than reusing ``pymeasure...Keithley2450``: that
driver works only in 2400-emulation mode for its buffer, reads with a bare ``:READ?``
(whatever the sense function is) and has no way to report the limit state. Ours checks
``*LANG?`` is ``SCPI`` on connect (the language changes only after a power cycle, so a
2450 in TSP or SCPI2400 mode cannot be fixed from here), reads voltage and current in one
``:READ? "defbuffer1",SOUR,READ`` and asks ``:SOUR:VOLT:ILIM:TRIP?`` for compliance.
"""
from __future__ import annotations

from typing import Any

from pymeasure.instruments import Channel, Instrument, SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .errors import WrongLanguageMode
from .smu_common import (
    GuardedInstrument,
    InstrumentError,
    Reading,
    SourceMeterChannelBase,
    measured,
    one_of,
    parse_scpi_error,
    to_bool01,
    to_float,
    to_floats,
    translated,
)

_BOOL = dict(validator=strict_discrete_set, values=(True, False), set_process=int)


class Keithley2450Channel(SourceMeterChannelBase):
    """The 2450's one source-measure channel."""

    source_function = Channel.control(
        ":SOUR:FUNC?", ":SOUR:FUNC %s",
        """Control the source function ('VOLT' or 'CURR').""",
        validator=strict_discrete_set, values=("VOLT", "CURR"),
        get_process=one_of("VOLT", "CURR"), check_set_errors=True,
    )
    sense_current = Channel.setting(
        ':SENS:FUNC "%s"',
        """Set the measure function; the role needs current ('CURR').""",
        validator=strict_discrete_set, values=("CURR",), check_set_errors=True,
    )
    source_voltage = Channel.control(
        ":SOUR:VOLT?", ":SOUR:VOLT %g",
        """Control the source voltage level in V (-210 to 210).""",
        validator=strict_range, values=(-210, 210), get_process=to_float, check_set_errors=True,
    )
    pulse_level = Channel.setting(
        ":SOUR:VOLT %g",
        """Set the level without an error-queue round trip (pulse edges; checked after).""",
        validator=strict_range, values=(-210, 210),
    )
    current_limit = Channel.control(
        ":SOUR:VOLT:ILIM?", ":SOUR:VOLT:ILIM %g",
        """Control the current limit (compliance) of the voltage source in A (1 nA to 1.05 A).""",
        validator=strict_range, values=(1e-9, 1.05), get_process=to_float, check_set_errors=True,
    )
    limit_tripped = Channel.measurement(
        ":SOUR:VOLT:ILIM:TRIP?",
        """Get whether the source is clamped at its current limit (bool).""",
        get_process=to_bool01,
    )
    source_voltage_range = Channel.control(
        ":SOUR:VOLT:RANG?", ":SOUR:VOLT:RANG %g",
        """Control the fixed source range in V (selects the range holding the value).""",
        validator=strict_range, values=(-210, 210), get_process=to_float, check_set_errors=True,
    )
    source_voltage_range_auto = Channel.control(
        ":SOUR:VOLT:RANG:AUTO?", ":SOUR:VOLT:RANG:AUTO %d",
        """Control source auto-range (bool).""",
        get_process=to_bool01, check_set_errors=True, **_BOOL,
    )
    current_range = Channel.control(
        ":SENS:CURR:RANG?", ":SENS:CURR:RANG %g",
        """Control the fixed current measure range in A (10 nA to 1 A ranges).""",
        validator=strict_range, values=(1e-9, 1.05), get_process=to_float, check_set_errors=True,
    )
    current_range_auto = Channel.control(
        ":SENS:CURR:RANG:AUTO?", ":SENS:CURR:RANG:AUTO %d",
        """Control current measure auto-range (bool).""",
        get_process=to_bool01, check_set_errors=True, **_BOOL,
    )
    nplc = Channel.control(
        ":SENS:CURR:NPLC?", ":SENS:CURR:NPLC %g",
        """Control the integration time in power-line cycles (0.01 to 10).""",
        validator=strict_range, values=(0.01, 10), get_process=to_float, check_set_errors=True,
    )
    output_on = Channel.control(
        ":OUTP?", ":OUTP %d",
        """Control the output relay (bool).""",
        get_process=to_bool01, check_set_errors=True, **_BOOL,
    )
    source_and_reading = Channel.measurement(
        ':READ? "defbuffer1",SOUR,READ',
        """Get [source readback V, measured current A] from one reading.""",
        get_process=lambda v: to_floats(2)([v]), get_process_list=to_floats(2),
    )

    def _prepare(self) -> None:
        if self.source_function != "VOLT":
            if self._query_output():
                raise InstrumentError("sourcing current with the output on; turn it off before using it as a voltage source")
            self.source_function = "VOLT"
        self.sense_current = "CURR"
        self._output = self._query_output()

    def _measure_raw(self) -> Reading:
        v, i = self.source_and_reading
        return Reading(measured(v, "voltage"), measured(i, "current"), self.limit_tripped)

    def _pulse_raw(self, volts: float, width_s: float) -> bool:
        self.pulse_level = volts
        self.parent.sleep(width_s)
        tripped = self.limit_tripped
        self.pulse_level = 0.0
        self.parent.raise_errors(f"pulse to {volts:g} V for {width_s:g} s")
        return tripped


class Keithley2450(GuardedInstrument, SCPIMixin, Instrument):
    """Keithley 2450 SourceMeter in its native SCPI mode; ``smu["1"]`` is the channel."""

    smu1 = Instrument.ChannelCreator(Keithley2450Channel, "1", collection="smu")

    def __init__(self, adapter: Any, name: str = "Keithley 2450", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 5000)
        with translated(name, f"open {adapter}"):
            super().__init__(adapter, name, **kwargs)
        try:
            language = self.ask("*LANG?").strip()
        except Exception:
            self.adapter.close()
            raise
        if language != "SCPI":
            self.adapter.close()
            raise WrongLanguageMode(
                f"command set is {language!r}, not 'SCPI': choose SCPI under System > Settings "
                "(or send *LANG SCPI) and power-cycle the instrument",
                instrument=name,
            )

    def read_error(self) -> tuple[int, str]:
        return parse_scpi_error(self.ask(":SYST:ERR?"))

    def channels(self) -> dict[str, Keithley2450Channel]:
        return dict(self.smu)
