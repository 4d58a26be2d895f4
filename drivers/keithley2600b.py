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
from pymeasure.instruments.validators import strict_discrete_set

from .capabilities import capability
from .errors import InstrumentTimeout
from .smu_common import (
    BadReply,
    GuardedInstrument,
    Reading,
    SourceMeterChannelBase,
    channels_of,
    measured,
    number_control,
    switch_control,
    to_bool01,
    to_float,
)
from .transport import GuardedIO

FAMILY = capability("keithley2600b")  # the 200 V class; other models bound their channels below


def _source_function(value: Any) -> str:
    f = to_float(value)
    if f not in (0.0, 1.0):
        raise BadReply("expected source function 0 (DCAMPS) or 1 (DCVOLTS)", reply=value)
    return "OUTPUT_DCVOLTS" if f == 1.0 else "OUTPUT_DCAMPS"  # mapped back to VOLT/CURR


def _reading(values: list[Any]) -> list[Any]:
    if len(values) != 3:
        raise BadReply("expected 'V<tab>I<tab>compliance'", reply="\t".join(map(str, values)))
    return [to_float(values[0]), to_float(values[1]), to_bool01(values[2])]


def _number(attr: str, doc: str, limits: tuple[float, float], dynamic: bool = True) -> property:
    """``smu<ch>.<attr>`` as a bounded number (``dynamic``: each model sets its own bounds)."""
    return number_control(f"print(smu{{ch}}.{attr})", f"smu{{ch}}.{attr} = %g", doc, limits, dynamic=dynamic)


def _switch(attr: str, doc: str) -> property:
    return switch_control(f"print(smu{{ch}}.{attr})", f"smu{{ch}}.{attr} = %d", doc)


_V = (-FAMILY.v_max, FAMILY.v_max)
_I = (FAMILY.i_limit_min, FAMILY.i_limit_max)


class Keithley2600BChannel(SourceMeterChannelBase):
    """One 2600B channel; ``{ch}`` is ``a`` or ``b`` (``smua``/``smub``).

    Bounds are the 200 V class's; :func:`channel_class` gives each model's channel its own.
    """

    v_max = FAMILY.v_max  # bound of source_voltage_values (pymeasure hides dynamic values from reads)

    source_function = Channel.control(
        "print(smu{ch}.source.func)", "smu{ch}.source.func = smu{ch}.%s",
        """Control the source function ('VOLT' or 'CURR').""",
        validator=strict_discrete_set, values={"VOLT": "OUTPUT_DCVOLTS", "CURR": "OUTPUT_DCAMPS"},
        map_values=True, get_process=_source_function, check_set_errors=True,
    )
    source_voltage = _number("source.levelv", """Control the source voltage level in V (model-dependent bound).""", _V)
    current_limit = _number("source.limiti", """Control the current limit in A (model-dependent bound).""", _I)
    limit_tripped = Channel.measurement(
        "print(smu{ch}.source.compliance)",
        """Get whether the source is at its limit (bool).""",
        get_process=to_bool01,
    )
    source_voltage_range = _number("source.rangev", """Control the fixed source range in V.""", _V)
    source_voltage_range_auto = _switch("source.autorangev", """Control source auto-range (bool).""")
    current_range = _number("measure.rangei", """Control the fixed current measure range in A.""", _I)
    current_range_auto = _switch("measure.autorangei", """Control current measure auto-range (bool).""")
    nplc = _number("measure.nplc", f"Control the integration time in power-line cycles "
                   f"({FAMILY.nplc_range[0]:g} to {FAMILY.nplc_range[1]:g}).", FAMILY.nplc_range, dynamic=False)
    output_on = _switch("source.output", """Control the output (bool; 1 = smuX.OUTPUT_ON).""")
    reading = Channel.measurement(
        "local i, v = smu{ch}.measure.iv() print(v, i, smu{ch}.source.compliance)",
        """Get [V, A, compliance] from one measurement (tab-separated reply).""",
        separator="\t", get_process=lambda v: _reading([v]), get_process_list=_reading,
    )

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


_CHANNEL_CLASSES: dict[str, type[Keithley2600BChannel]] = {}


def channel_class(model: str) -> type[Keithley2600BChannel]:
    """The channel class of ``model``, its bounds from the model's capability entry."""
    if model not in _CHANNEL_CLASSES:
        cap = capability(model)
        v, i = (-cap.v_max, cap.v_max), (cap.i_limit_min, cap.i_limit_max)
        _CHANNEL_CLASSES[model] = type(f"Keithley2600BChannel_{model}", (Keithley2600BChannel,), {
            "__doc__": f"A {model} channel: up to ±{cap.v_max:g} V, {cap.i_limit_max:g} A.",
            "__module__": __name__,
            "v_max": cap.v_max,
            "source_voltage_values": v,
            "source_voltage_range_values": v,
            "current_limit_values": i,
            "current_range_values": i,
        })
    return _CHANNEL_CLASSES[model]


class Keithley2600B(GuardedInstrument, Instrument):
    """A dual-channel 2600B (2612B, 2634B, 2636B): ``smua``, ``smub``.

    A model's class only names its ``model``: its channels (ids and bounds) and its
    default name follow from the model's capability entry.
    """

    model = "keithley2600b"
    connection_defaults = {**GuardedIO.connection_defaults, "includeSCPI": False}

    id = Instrument.measurement("*IDN?", """Get the identification string.""", cast=str, maxsplit=0)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._bind_model()

    @classmethod
    def _bind_model(cls) -> None:
        cls.default_name = f"Keithley {cls.model.removeprefix('keithley').upper()}"
        cls.smu = channels_of(cls.model, channel_class(cls.model))

    def read_error(self) -> tuple[int, str]:
        fields = self.ask("print(errorqueue.next())").split("\t")
        try:
            return int(to_float(fields[0])), fields[1] if len(fields) > 1 else ""
        except BadReply:
            raise BadReply("expected an error queue entry 'code<tab>message'", reply="\t".join(fields)) from None


Keithley2600B._bind_model()


class Keithley2636B(Keithley2600B):
    model = "keithley2636b"


class Keithley2634B(Keithley2600B):
    model = "keithley2634b"


class Keithley2612B(Keithley2600B):
    model = "keithley2612b"


class Keithley2602B(Keithley2600B):
    """40 V / 3 A channels."""

    model = "keithley2602b"


class Keithley2635B(Keithley2600B):
    """Single channel: only ``smua``."""

    model = "keithley2635b"
