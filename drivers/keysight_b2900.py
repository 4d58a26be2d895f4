"""Keysight B2901A/B2902A precision SMU (B2900 SCPI Command Reference, B2910-90030).

pymeasure has no B2900 driver; this one is written on its Instrument with a Channel per
output, the channel number going into the header suffix (``:SOUR2:VOLT``) or the channel
list (``:MEAS? (@2)``). Two reset defaults would surprise a role user and are changed on
first use of a channel (never on connect, never touching the output): ``:OUTP:ON:AUTO`` is ON
(a measurement would switch an off output on) and ``:FORM:ELEM:SENS`` returns six elements
(we read VOLT,CURR). Compliance is ``:SENS<c>:CURR:PROT:TRIP?``.
"""
from __future__ import annotations

from pymeasure.instruments import Instrument, SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set

from .scpi_smu import ScpiHeaders, ScpiSourceMeter, scpi_channel
from .smu_common import channels_of, switch_control

HEADERS = ScpiHeaders(
    function=":SOUR{ch}:FUNC:MODE", source=":SOUR{ch}", limit=":SENS{ch}:CURR:PROT", sense=":SENS{ch}",
    output=":OUTP{ch}", reading=":MEAS? (@{ch})",
)


class KeysightB2900Channel(scpi_channel("keysight_b2900", HEADERS)):  # type: ignore[misc]
    """One B2900 output; ``{ch}`` is the channel number."""

    auto_output_on = switch_control(
        ":OUTP{ch}:ON:AUTO?", ":OUTP{ch}:ON:AUTO %d",
        """Control whether :INIT/:READ/:MEAS switch an off output on (bool).""",
    )

    def _configure_sense(self) -> None:
        self.write(':SENS{ch}:FUNC "VOLT","CURR"')
        self.auto_output_on = False
        self.parent.sense_elements = "VOLT,CURR"


class KeysightB2902A(ScpiSourceMeter, SCPIMixin, Instrument):
    """Keysight B2902A (two channels, ``smu["1"]``, ``smu["2"]``)."""

    default_name = "Keysight B2902A"
    smu = channels_of("keysight_b2902a", KeysightB2900Channel)

    sense_elements = Instrument.setting(
        ":FORM:ELEM:SENS %s",
        """Set the elements :MEAS? returns (instrument-wide).""",
        validator=strict_discrete_set, values=("VOLT,CURR",), check_set_errors=True,
    )


class KeysightB2901A(KeysightB2902A):
    """Keysight B2901A (one channel, ``smu["1"]``)."""

    default_name = "Keysight B2901A"
    smu = channels_of("keysight_b2901a", KeysightB2900Channel)
