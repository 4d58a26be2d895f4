"""Keysight B2901A/B2902A precision SMU (B2900 SCPI Command Reference, B2910-90030).

pymeasure has no B2900 driver; this one is written on its Instrument with a Channel per
output, the channel number going into the header suffix (``:SOUR2:VOLT``) or the channel
list (``:MEAS? (@2)``). Two reset defaults would surprise a role user and are changed on
first use of a channel (never on connect, never touching the output): ``:OUTP:ON:AUTO`` is ON
(a measurement would switch an off output on) and ``:FORM:ELEM:SENS`` returns six elements
(we read VOLT,CURR). Compliance is ``:SENS<c>:CURR:PROT:TRIP?``.
"""
from __future__ import annotations

from typing import Any

from pymeasure.instruments import Channel, Instrument, SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set, strict_range

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


class KeysightB2900Channel(SourceMeterChannelBase):
    """One B2900 output; ``{ch}`` is the channel number."""

    source_function = Channel.control(
        ":SOUR{ch}:FUNC:MODE?", ":SOUR{ch}:FUNC:MODE %s",
        """Control the source function ('VOLT' or 'CURR').""",
        validator=strict_discrete_set, values=("VOLT", "CURR"),
        get_process=one_of("VOLT", "CURR"), check_set_errors=True,
    )
    auto_output_on = Channel.control(
        ":OUTP{ch}:ON:AUTO?", ":OUTP{ch}:ON:AUTO %d",
        """Control whether :INIT/:READ/:MEAS switch an off output on (bool).""",
        get_process=to_bool01, check_set_errors=True, **_BOOL,
    )
    source_voltage = Channel.control(
        ":SOUR{ch}:VOLT?", ":SOUR{ch}:VOLT %g",
        """Control the source voltage level in V (-210 to 210).""",
        validator=strict_range, values=(-210, 210), get_process=to_float, check_set_errors=True,
    )
    pulse_level = Channel.setting(
        ":SOUR{ch}:VOLT %g",
        """Set the level without an error-queue round trip (pulse edges; checked after).""",
        validator=strict_range, values=(-210, 210),
    )
    current_limit = Channel.control(
        ":SENS{ch}:CURR:PROT?", ":SENS{ch}:CURR:PROT %g",
        """Control the current compliance in A (1 nA to 3.03 A).""",
        validator=strict_range, values=(1e-9, 3.03), get_process=to_float, check_set_errors=True,
    )
    limit_tripped = Channel.measurement(
        ":SENS{ch}:CURR:PROT:TRIP?",
        """Get whether the channel is in current compliance (bool).""",
        get_process=to_bool01,
    )
    source_voltage_range = Channel.control(
        ":SOUR{ch}:VOLT:RANG?", ":SOUR{ch}:VOLT:RANG %g",
        """Control the fixed source range in V.""",
        validator=strict_range, values=(-210, 210), get_process=to_float, check_set_errors=True,
    )
    source_voltage_range_auto = Channel.control(
        ":SOUR{ch}:VOLT:RANG:AUTO?", ":SOUR{ch}:VOLT:RANG:AUTO %d",
        """Control source auto-range (bool).""",
        get_process=to_bool01, check_set_errors=True, **_BOOL,
    )
    current_range = Channel.control(
        ":SENS{ch}:CURR:RANG?", ":SENS{ch}:CURR:RANG %g",
        """Control the fixed current measure range in A.""",
        validator=strict_range, values=(1e-9, 3.03), get_process=to_float, check_set_errors=True,
    )
    current_range_auto = Channel.control(
        ":SENS{ch}:CURR:RANG:AUTO?", ":SENS{ch}:CURR:RANG:AUTO %d",
        """Control current measure auto-range (bool).""",
        get_process=to_bool01, check_set_errors=True, **_BOOL,
    )
    nplc = Channel.control(
        ":SENS{ch}:CURR:NPLC?", ":SENS{ch}:CURR:NPLC %g",
        """Control the integration time in power-line cycles (4e-4 to 100).""",
        validator=strict_range, values=(4e-4, 100), get_process=to_float, check_set_errors=True,
    )
    output_on = Channel.control(
        ":OUTP{ch}?", ":OUTP{ch} %d",
        """Control the output switch (bool).""",
        get_process=to_bool01, check_set_errors=True, **_BOOL,
    )
    voltage_and_current = Channel.measurement(
        ":MEAS? (@{ch})",
        """Get [V, A] from one spot measurement (needs :FORM:ELEM:SENS VOLT,CURR).""",
        get_process=lambda v: to_floats(2)([v]), get_process_list=to_floats(2),
    )

    def _prepare(self) -> None:
        if self.source_function != "VOLT":
            if self._query_output():
                raise InstrumentError("sourcing current with the output on; turn it off before using it as a voltage source")
            self.source_function = "VOLT"
        self.write(':SENS{ch}:FUNC "VOLT","CURR"')
        self.auto_output_on = False
        self.parent.sense_elements = "VOLT,CURR"
        self._output = self._query_output()

    def _measure_raw(self) -> Reading:
        v, i = self.voltage_and_current
        return Reading(measured(v, "voltage"), measured(i, "current"), self.limit_tripped)

    def _pulse_raw(self, volts: float, width_s: float) -> bool:
        self.pulse_level = volts
        self.parent.sleep(width_s)
        tripped = self.limit_tripped
        self.pulse_level = 0.0
        self.parent.raise_errors(f"pulse to {volts:g} V for {width_s:g} s")
        return tripped


class KeysightB2902A(GuardedInstrument, SCPIMixin, Instrument):
    """Keysight B2902A (two channels, ``smu["1"]``, ``smu["2"]``)."""

    smu = Instrument.MultiChannelCreator(KeysightB2900Channel, [1, 2], prefix="smu")

    sense_elements = Instrument.setting(
        ":FORM:ELEM:SENS %s",
        """Set the elements :MEAS? returns (instrument-wide).""",
        validator=strict_discrete_set, values=("VOLT,CURR",), check_set_errors=True,
    )

    def __init__(self, adapter: Any, name: str = "Keysight B2902A", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 5000)
        with translated(name, f"open {adapter}"):
            super().__init__(adapter, name, **kwargs)

    def read_error(self) -> tuple[int, str]:
        return parse_scpi_error(self.ask(":SYST:ERR?"))

    def channels(self) -> dict[str, KeysightB2900Channel]:
        return {str(k): v for k, v in self.smu.items()}


class KeysightB2901A(KeysightB2902A):
    """Keysight B2901A (one channel, ``smu["1"]``)."""

    smu = Instrument.MultiChannelCreator(KeysightB2900Channel, [1], prefix="smu")

    def __init__(self, adapter: Any, name: str = "Keysight B2901A", **kwargs: Any) -> None:
        super().__init__(adapter, name, **kwargs)
