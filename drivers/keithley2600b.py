"""Keithley Series 2600B System SourceMeter, TSP (Reference Manual 2600BS-901-01).

Written on pymeasure's Instrument and Channel instead of reusing
``pymeasure...Keithley2600``: that driver's channels are a legacy class outside
pymeasure's Channel machinery (no ``{ch}`` commands, no error checks after settings, no
protocol tests upstream), and it reads value and compliance in separate exchanges. Here
each channel (``smua``/``smub``) is a pymeasure Channel whose commands are TSP statements;
queries are wrapped in ``print()``, since a TSP instrument answers nothing else. One
reading is one chunk::

    local i, v = smua.measure.iv() print(v, i, smua.source.compliance)

and a pulse runs on the instrument in one chunk, timed by its own ``delay()``, so its width
does not depend on the link latency::

    smua.source.levelv = 1 delay(0.001) local c = smua.source.compliance smua.source.levelv = 0 print(c)
"""
from __future__ import annotations

from typing import Any

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .errors import InstrumentTimeout
from .smu_common import (
    BadReply,
    GuardedInstrument,
    InstrumentError,
    Reading,
    SourceMeterChannelBase,
    measured,
    to_bool01,
    to_float,
    translated,
)

_BOOL = dict(validator=strict_discrete_set, values=(True, False), set_process=int)


def _source_function(value: Any) -> str:
    f = to_float(value)
    if f not in (0.0, 1.0):
        raise BadReply("expected source function 0 (DCAMPS) or 1 (DCVOLTS)", reply=value)
    return "OUTPUT_DCVOLTS" if f == 1.0 else "OUTPUT_DCAMPS"  # mapped back to VOLT/CURR


def _reading(values: list[Any]) -> list[Any]:
    if len(values) != 3:
        raise BadReply("expected 'V<tab>I<tab>compliance'", reply="\t".join(map(str, values)))
    return [to_float(values[0]), to_float(values[1]), to_bool01(values[2])]


class Keithley2600BChannel(SourceMeterChannelBase):
    """One 2600B channel; ``{ch}`` is ``a`` or ``b`` (``smua``/``smub``)."""

    v_max = 202.0  # V, bound of source_voltage_values (pymeasure hides dynamic values from reads)

    source_function = Channel.control(
        "print(smu{ch}.source.func)", "smu{ch}.source.func = smu{ch}.%s",
        """Control the source function ('VOLT' or 'CURR').""",
        validator=strict_discrete_set, values={"VOLT": "OUTPUT_DCVOLTS", "CURR": "OUTPUT_DCAMPS"},
        map_values=True, get_process=_source_function, check_set_errors=True,
    )
    source_voltage = Channel.control(
        "print(smu{ch}.source.levelv)", "smu{ch}.source.levelv = %g",
        """Control the source voltage level in V (model-dependent bound).""",
        validator=strict_range, values=(-202, 202), get_process=to_float,
        check_set_errors=True, dynamic=True,
    )
    current_limit = Channel.control(
        "print(smu{ch}.source.limiti)", "smu{ch}.source.limiti = %g",
        """Control the current limit (compliance) in A (model-dependent bound).""",
        validator=strict_range, values=(1e-10, 1.515), get_process=to_float,
        check_set_errors=True, dynamic=True,
    )
    limit_tripped = Channel.measurement(
        "print(smu{ch}.source.compliance)",
        """Get whether the source is at its limit (bool).""",
        get_process=to_bool01,
    )
    source_voltage_range = Channel.control(
        "print(smu{ch}.source.rangev)", "smu{ch}.source.rangev = %g",
        """Control the fixed source range in V.""",
        validator=strict_range, values=(-202, 202), get_process=to_float,
        check_set_errors=True, dynamic=True,
    )
    source_voltage_range_auto = Channel.control(
        "print(smu{ch}.source.autorangev)", "smu{ch}.source.autorangev = %d",
        """Control source auto-range (bool).""",
        get_process=to_bool01, check_set_errors=True, **_BOOL,
    )
    current_range = Channel.control(
        "print(smu{ch}.measure.rangei)", "smu{ch}.measure.rangei = %g",
        """Control the fixed current measure range in A.""",
        validator=strict_range, values=(1e-10, 1.515), get_process=to_float,
        check_set_errors=True, dynamic=True,
    )
    current_range_auto = Channel.control(
        "print(smu{ch}.measure.autorangei)", "smu{ch}.measure.autorangei = %d",
        """Control current measure auto-range (bool).""",
        get_process=to_bool01, check_set_errors=True, **_BOOL,
    )
    nplc = Channel.control(
        "print(smu{ch}.measure.nplc)", "smu{ch}.measure.nplc = %g",
        """Control the integration time in power-line cycles (0.001 to 25).""",
        validator=strict_range, values=(0.001, 25), get_process=to_float, check_set_errors=True,
    )
    output_on = Channel.control(
        "print(smu{ch}.source.output)", "smu{ch}.source.output = %d",
        """Control the output (bool; 1 = smuX.OUTPUT_ON).""",
        get_process=to_bool01, check_set_errors=True, **_BOOL,
    )
    reading = Channel.measurement(
        "local i, v = smu{ch}.measure.iv() print(v, i, smu{ch}.source.compliance)",
        """Get [V, A, compliance] from one measurement (tab-separated reply).""",
        separator="\t", get_process=lambda v: _reading([v]), get_process_list=_reading,
    )

    def _prepare(self) -> None:
        if self.source_function != "VOLT":
            if self._query_output():
                raise InstrumentError("sourcing current with the output on; turn it off before using it as a voltage source")
            self.source_function = "VOLT"
        self._output = self._query_output()

    def _measure_raw(self) -> Reading:
        v, i, comp = self.reading
        return Reading(measured(v, "voltage"), measured(i, "current"), comp)

    def _pulse_raw(self, volts: float, width_s: float) -> bool:
        chunk = (
            f"smu{self.id}.source.levelv = {volts:g} delay({width_s:.9g}) "
            f"local c = smu{self.id}.source.compliance smu{self.id}.source.levelv = 0 print(c)"
        )
        try:
            with self.parent.longer_timeout(width_s):
                reply = self.parent.ask(chunk)
        except InstrumentTimeout:
            # A rejected chunk prints nothing: the reason, if any, is in the error queue.
            self.parent.raise_errors()
            raise
        return to_bool01(reply)


class Keithley2600BChannel40V(Keithley2600BChannel):
    """2602B/2601B: 40 V, 3 A channels."""

    v_max = 40.4
    source_voltage_values = (-40.4, 40.4)
    source_voltage_range_values = (-40.4, 40.4)
    current_limit_values = (1e-9, 3.03)
    current_range_values = (1e-9, 3.03)


class Keithley2600B(GuardedInstrument, Instrument):
    """A dual-channel 2600B (2612B, 2634B, 2636B): ``smua``, ``smub``."""

    smu = Instrument.MultiChannelCreator(Keithley2600BChannel, ["a", "b"], prefix="smu")

    def __init__(self, adapter: Any, name: str = "Keithley 2600B", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 5000)
        kwargs.setdefault("includeSCPI", False)
        with translated(name, f"open {adapter}"):
            super().__init__(adapter, name, **kwargs)

    id = Instrument.measurement("*IDN?", """Get the identification string.""", cast=str, maxsplit=0)

    def read_error(self) -> tuple[int, str]:
        fields = self.ask("print(errorqueue.next())").split("\t")
        try:
            return int(to_float(fields[0])), fields[1] if len(fields) > 1 else ""
        except BadReply:
            raise BadReply("expected an error queue entry 'code<tab>message'", reply="\t".join(fields)) from None

    def clear_errors(self) -> None:
        self.write("errorqueue.clear()")

    def channels(self) -> dict[str, Keithley2600BChannel]:
        return dict(self.smu)


class Keithley2636B(Keithley2600B):
    def __init__(self, adapter: Any, name: str = "Keithley 2636B", **kwargs: Any) -> None:
        super().__init__(adapter, name, **kwargs)


class Keithley2634B(Keithley2600B):
    def __init__(self, adapter: Any, name: str = "Keithley 2634B", **kwargs: Any) -> None:
        super().__init__(adapter, name, **kwargs)


class Keithley2612B(Keithley2600B):
    def __init__(self, adapter: Any, name: str = "Keithley 2612B", **kwargs: Any) -> None:
        super().__init__(adapter, name, **kwargs)


class Keithley2602B(Keithley2600B):
    """40 V / 3 A channels."""

    smu = Instrument.MultiChannelCreator(Keithley2600BChannel40V, ["a", "b"], prefix="smu")

    def __init__(self, adapter: Any, name: str = "Keithley 2602B", **kwargs: Any) -> None:
        super().__init__(adapter, name, **kwargs)


class Keithley2635B(Keithley2600B):
    """Single channel: only ``smua``."""

    smu = Instrument.MultiChannelCreator(Keithley2600BChannel, ["a"], prefix="smu")

    def __init__(self, adapter: Any, name: str = "Keithley 2635B", **kwargs: Any) -> None:
        super().__init__(adapter, name, **kwargs)
