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

Pulses on several buses start together on a digital I/O trigger line (the instruments'
DB-25 ports joined by a cable): each channel is armed with
:meth:`Keithley2600BChannel.arm_sync_pulse` (its trigger model waits for the line's
edge, steps to the level, ends the pulse on a timer ``width_s`` later and returns to its
idle level ``smuX.source.levelv``), then one instrument asserts the line with
:meth:`Keithley2600B.fire_trigger_line`, and every other armed instrument is waited for
with :meth:`Keithley2600B.wait_complete`.
"""
from __future__ import annotations

from typing import Any

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .capabilities import capability
from .errors import InstrumentError, InstrumentTimeout
from .smu_common import (
    BadReply,
    GuardedInstrument,
    Reading,
    SourceMeterChannelBase,
    channels_of,
    measured,
    number_control,
    role_method,
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


    @role_method
    def arm_sync_pulse(self, volts: float, width_s: float, line: int, timer: int | None = None) -> None:
        """Arm one pulse of ``volts`` for ``width_s`` that starts on digital I/O trigger ``line``.

        The trigger model's source waits for ``digio.trigger[line]``; the end of the pulse
        waits for ``trigger.timer[timer]`` (default 1 for smua, 2 for smub: one timer per
        channel), started by the source step. The channel returns to its idle level
        (``source.levelv``, normally 0 V) when the pulse ends. The output must be on.
        """
        strict_range(volts, (-self.v_max, self.v_max))
        if not 1e-6 <= width_s <= 100e3:
            raise ValueError(f"pulse width must be 1 µs to 100000 s (a trigger timer's delay), got {width_s!r}")
        if line not in range(1, 15):
            raise ValueError(f"digital I/O trigger line must be 1..14, got {line!r}")
        timer = ("a", "b").index(self.id) + 1 if timer is None else timer
        if timer not in range(1, 9):
            raise ValueError(f"trigger timer must be 1..8, got {timer!r}")
        self._ready()
        if self._output is None:
            self._output = self._query_output()
        if not self._output:
            raise InstrumentError(f"channel {self.id}: output is off, a pulse would not reach the device")
        self.parent.write(sync_pulse_chunk(f"smu{self.id}", volts, width_s, line, timer))
        self.parent.raise_errors(f"arm a {volts:g} V, {width_s:g} s pulse on digio trigger line {line}")

    @role_method
    def abort_sync_pulse(self) -> None:
        """Disarm the trigger model (an armed pulse that never fired is dropped)."""
        self.parent.write(f"smu{self.id}.trigger.abort()")
        self.parent.raise_errors()


def sync_pulse_chunk(smu: str, volts: float, width_s: float, line: int, timer: int) -> str:
    """The TSP chunk that arms ``smu`` (``smua``/``smub``) for one line-triggered pulse."""
    tmr, dio = f"trigger.timer[{timer}]", f"digio.trigger[{line}]"
    return " ".join((
        f"{smu}.trigger.source.listv({{{volts:g}}})",
        f"{smu}.trigger.source.action = {smu}.ENABLE",
        f"{smu}.trigger.measure.action = {smu}.DISABLE",
        f"{smu}.trigger.count = 1",
        f"{smu}.trigger.arm.count = 1",
        f"{smu}.trigger.arm.stimulus = 0",
        f"{smu}.trigger.source.stimulus = {dio}.EVENT_ID",
        f"{tmr}.delay = {width_s:.9g}",
        f"{tmr}.count = 1",
        f"{tmr}.passthrough = false",
        f"{tmr}.stimulus = {smu}.trigger.SOURCE_COMPLETE_EVENT_ID",
        f"{smu}.trigger.endpulse.action = {smu}.SOURCE_IDLE",
        f"{smu}.trigger.endpulse.stimulus = {tmr}.EVENT_ID",
        f"{smu}.trigger.endsweep.action = {smu}.SOURCE_IDLE",
        f"{dio}.mode = digio.TRIG_FALLING",
        f"{dio}.clear()",
        f"{smu}.trigger.initiate()",
    ))


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

    def sync_marker(self, nonce: int) -> tuple[str, str]:
        token = f"hopbench-sync-{nonce}"
        return f'print("{token}")', token

    def fire_trigger_line(self, line: int, width_s: float) -> None:
        """Assert digital I/O trigger ``line``: every channel armed on it starts its pulse now.

        Waits (``waitcomplete()``) for this instrument's own armed pulses, ``width_s`` long,
        then checks the error queue; wait for the other instruments with :meth:`wait_complete`.
        """
        if line not in range(1, 15):
            raise ValueError(f"digital I/O trigger line must be 1..14, got {line!r}")
        self._ask_done(f"digio.trigger[{line}].mode = digio.TRIG_FALLING digio.trigger[{line}].assert() "
                       "waitcomplete() print(1)", width_s)
        self.raise_errors(f"assert digio trigger line {line}")

    def wait_complete(self, timeout_s: float = 0.0) -> None:
        """``waitcomplete()``: return once the armed pulses ran (allowing ``timeout_s`` more)."""
        self._ask_done("waitcomplete() print(1)", timeout_s)

    def _ask_done(self, chunk: str, extra_s: float) -> None:
        try:
            with self.longer_timeout(extra_s):
                reply = self.ask(chunk)
        except InstrumentTimeout:
            self.raise_errors(chunk)  # a rejected chunk prints nothing: the reason is in the queue
            raise
        try:
            done = to_float(reply) == 1.0
        except BadReply:
            done = False
        if not done:
            raise BadReply(f"{self.name}: expected 1 once the operations completed ({chunk})", reply=reply)

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
