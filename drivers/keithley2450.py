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
from pymeasure.instruments.validators import strict_discrete_set

from .errors import WrongLanguageMode
from .scpi_smu import ScpiHeaders, ScpiSourceMeter, scpi_channel
from .smu_common import channels_of

MODEL = "keithley2450"
HEADERS = ScpiHeaders(
    function=":SOUR:FUNC", source=":SOUR", limit=":SOUR:VOLT:ILIM", sense=":SENS", output=":OUTP",
    reading=':READ? "defbuffer1",SOUR,READ',
)


class Keithley2450Channel(scpi_channel(MODEL, HEADERS)):  # type: ignore[misc]
    """The 2450's one source-measure channel."""

    sense_current = Channel.setting(
        ':SENS:FUNC "%s"',
        """Set the measure function; the role needs current ('CURR').""",
        validator=strict_discrete_set, values=("CURR",), check_set_errors=True,
    )

    def _configure_sense(self) -> None:
        self.sense_current = "CURR"


class Keithley2450(ScpiSourceMeter, SCPIMixin, Instrument):
    """Keithley 2450 SourceMeter in its native SCPI mode; ``smu["1"]`` is the channel."""

    default_name = "Keithley 2450"
    smu = channels_of(MODEL, Keithley2450Channel)

    def __init__(self, adapter: Any, name: str | None = None, **kwargs: Any) -> None:
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
                instrument=self.name,
            )
