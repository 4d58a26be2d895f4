"""What every source-meter driver shares: error-queue checks, property declarations, the role.

Transport errors are typed by :mod:`drivers.transport` (shared with the switch matrix);
bounds come from the model's entry in :mod:`drivers.capabilities`. A model module declares
its commands as pymeasure ``control``/``measurement``/``setting`` properties on a channel
class and implements the hooks (``_measure_raw``; where the model differs,
``_configure_sense`` and ``_pulse_raw``); :class:`SourceMeterChannelBase` turns those into
the source-meter role (``set_voltage`` ... ``pulse``) with the same safety rules for every
model:

- connecting sends nothing that changes the output (the first role call configures the
  channel: voltage source, current sense, and reads the output state);
- the output cannot go on before a current limit was set through this driver;
- every setting is followed by an error-queue check, an entry raises
  :class:`~drivers.errors.InstrumentReportedError`;
- a float-only answer (``measure_current``/``measure_voltage``) or a pulse that hit the
  current limit raises :class:`~drivers.errors.ComplianceTripped`; ``measure`` returns the
  flag in its :class:`Reading` instead.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .capabilities import capability
from .errors import BadReply, ComplianceTripped, InstrumentError, InstrumentReportedError
from .transport import GuardedIO, reserved_names_getattribute, reserved_set

OVERFLOW = 9.9e37  # Keithley/Keysight mark of a value not measured (9.91e37)


@dataclass(frozen=True)
class Reading:
    """One reading: terminal voltage (V), current out of HI (A), clamped at the limit."""

    voltage: float
    current: float
    compliance: bool


# -- reply parsing (raise BadReply, never return a half-parsed string) -------------------

def to_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        f = float(value)
    else:
        try:
            f = float(str(value).strip())
        except ValueError:
            raise BadReply("expected a number", reply=value) from None
    if math.isnan(f):
        raise BadReply("expected a number", reply=value)
    return f


def to_bool01(value: Any) -> bool:
    """``0``/``1`` (also ``0.00000e+00``, ``ON``/``OFF``, ``true``/``false``) as a bool."""
    text = str(value).strip().strip('"').upper()
    if text in ("ON", "TRUE"):
        return True
    if text in ("OFF", "FALSE"):
        return False
    f = to_float(value)
    if f not in (0.0, 1.0):
        raise BadReply("expected 0 or 1", reply=value)
    return f == 1.0


def to_floats(count: int) -> Callable[[list[Any]], list[float]]:
    def parse(values: list[Any]) -> list[float]:
        if len(values) != count:
            raise BadReply(f"expected {count} comma-separated numbers", reply=",".join(map(str, values)))
        return [to_float(v) for v in values]

    return parse


def one_of(*options: str) -> Callable[[Any], str]:
    """A get_process accepting only the given character replies."""

    def parse(value: Any) -> str:
        text = str(value).strip().strip('"').upper()
        if text not in options:
            raise BadReply(f"expected one of {', '.join(options)}", reply=value)
        return text

    return parse


def measured(value: float, what: str) -> float:
    """Reject the overflow mark: a reading beyond the fixed range is no reading."""
    if abs(value) >= OVERFLOW:
        raise InstrumentError(f"{what} overflow: the measurement range is too small")
    return value


# -- property declarations ------------------------------------------------------------------

def number_control(get: str, set_: str, doc: str, limits: tuple[float, float], **kwargs: Any) -> property:
    """A numeric setting: bounded before anything is sent, the error queue checked after."""
    return Channel.control(get, set_, doc, validator=strict_range, values=limits, get_process=to_float,
                           check_set_errors=True, **kwargs)


def switch_control(get: str, set_: str, doc: str) -> property:
    """An on/off setting sent as 0/1, read back as a bool, the error queue checked after."""
    return Channel.control(get, set_, doc, validator=strict_discrete_set, values=(True, False),
                           set_process=int, get_process=to_bool01, check_set_errors=True)


def channels_of(model: str, channel_class: type) -> Any:
    """The pymeasure channel creator for a model's channels (``smu["1"]``, ``smu["a"]`` ...)."""
    return Instrument.MultiChannelCreator(channel_class, list(capability(model).channels), prefix="smu")


# -- instrument base ------------------------------------------------------------------------

class GuardedInstrument(GuardedIO):
    """Mixin for source-meter instruments: typed errors on I/O, error-queue checks, injectable sleep.

    Put it before the pymeasure base class. Subclasses implement :meth:`read_error`
    (one error-queue entry as ``(code, message)``, code 0 = empty) and hold their channels
    in ``smu``.
    """

    # The lab injects its bench clock here so pulses take virtual time in a dry run.
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def read_error(self) -> tuple[int, str]:
        raise NotImplementedError

    def raise_errors(self, command: str | None = None) -> None:
        """Read the error queue dry; raise the first entry, if any (naming ``command``)."""
        command = self._last_command if command is None else command
        first: tuple[int, str] | None = None
        for _ in range(64):  # a queue holds at most a few dozen entries
            code, message = self.read_error()
            if code == 0:
                break
            first = first or (code, message)
        if first is not None:
            raise InstrumentReportedError(first[0], first[1], command=command, instrument=self.name)

    def drain_errors(self) -> list[tuple[int, str]]:
        """Read the error queue dry and return its entries (nothing raised)."""
        entries: list[tuple[int, str]] = []
        for _ in range(64):
            code, message = self.read_error()
            if code == 0:
                break
            entries.append((code, message))
        return entries

    # pymeasure calls these after properties declared with check_set_errors/check_get_errors.
    def check_set_errors(self) -> list:
        self.raise_errors()
        return []

    def check_get_errors(self) -> list:
        self.raise_errors()
        return []

    def channels(self) -> dict[str, "SourceMeterChannelBase"]:
        """The source-meter channels by id (``"1"``, ``"a"`` ...)."""
        return {str(k): v for k, v in self.smu.items()}  # type: ignore[attr-defined]

    def close(self) -> None:
        """Close the VISA session (the outputs keep their state)."""
        self.disconnect()


# -- role methods ---------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def role_method(fn: F) -> F:
    """Name the instrument in errors raised below (reply parsers do not know it)."""

    @functools.wraps(fn)
    def wrapper(self: "SourceMeterChannelBase", *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except InstrumentError as exc:
            if not exc.instrument:
                exc.instrument = self.parent.name
                exc.args = (f"{self.parent.name}: {exc.args[0]}",) + exc.args[1:]
            raise

    return wrapper  # type: ignore[return-value]


class SourceMeterChannelBase(Channel):
    """One SMU channel filling the source-meter role (lab.roles.SourceMeterChannel).

    Subclasses declare properties ``source_function``, ``source_voltage``,
    ``current_limit``, ``source_voltage_range``, ``source_voltage_range_auto``,
    ``current_range``, ``current_range_auto``, ``nplc``, ``output_on`` with
    ``check_set_errors=True``, and for the default pulse ``pulse_level`` (no error check)
    and ``limit_tripped``; they implement :meth:`_measure_raw` and may override the other
    hooks.
    """

    v_max = 210.0  # V, the model's source bound (pulse levels are checked against it first)
    voltage_function = "VOLT"  # the source_function value of a voltage source
    __getattribute__ = reserved_names_getattribute  # pymeasure's rule, cheaper (see transport)

    def __init__(self, parent: Any, id: Any, **kwargs: Any) -> None:
        super().__init__(parent, id, **kwargs)
        # pymeasure keeps the reserved names as a list, scanned at every attribute access (44
        # names on a 2600B channel); only membership is ever asked of it: a set answers at once
        reserved_set(self)
        self.name = f"{parent.name}.{id}"
        self._prepared = False
        self._limit_set = False
        self._output: bool | None = None  # last known output state

    # hooks ---------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Configure voltage source / current sense once; must not change the output."""
        if self.source_function != self.voltage_function:  # type: ignore[attr-defined]
            if self._query_output():
                raise InstrumentError(
                    "sourcing current with the output on; turn it off before using it as a voltage source")
            self.source_function = self.voltage_function  # type: ignore[attr-defined]
        self._configure_sense()
        self._output = self._query_output()

    def _configure_sense(self) -> None:
        """Set up current sensing (model-specific); runs once, after the source function."""

    def _measure_raw(self) -> Reading:
        raise NotImplementedError

    def _pulse_raw(self, volts: float, width_s: float) -> bool:
        """Apply the pulse; return whether the source was clamped during it.

        The default steps the level, sleeps on the parent's clock, reads the limit state,
        steps back to 0 V and checks the error queue once, after the pulse.
        """
        self.pulse_level = volts  # type: ignore[attr-defined]
        self.parent.sleep(width_s)
        tripped = self.limit_tripped  # type: ignore[attr-defined]
        self.pulse_level = 0.0  # type: ignore[attr-defined]
        self.parent.raise_errors(f"pulse to {volts:g} V for {width_s:g} s")
        return bool(tripped)

    def _query_output(self) -> bool:
        return bool(self.output_on)  # type: ignore[attr-defined]

    # role ----------------------------------------------------------------------------
    def _ready(self) -> None:
        if not self._prepared:
            self._prepare()
            self._prepared = True

    @role_method
    def set_voltage(self, volts: float) -> None:
        self._ready()
        self.source_voltage = volts  # type: ignore[attr-defined]

    @role_method
    def set_current_limit(self, amps: float) -> None:
        self._ready()
        self.current_limit = amps  # type: ignore[attr-defined]
        self._limit_set = True

    def _set_range(self, setting: str, value: float | None) -> None:
        """A fixed range (``setting`` = value) or, for None, auto-range (``setting_auto``)."""
        self._ready()
        if value is None:
            setattr(self, f"{setting}_auto", True)
        else:
            setattr(self, setting, value)

    @role_method
    def set_voltage_range(self, volts: float | None) -> None:
        self._set_range("source_voltage_range", volts)

    @role_method
    def set_current_range(self, amps: float | None) -> None:
        self._set_range("current_range", amps)

    @role_method
    def set_nplc(self, nplc: float) -> None:
        self._ready()
        self.nplc = nplc  # type: ignore[attr-defined]

    @role_method
    def set_output(self, on: bool) -> None:
        self._ready()
        if on and not self._limit_set:
            raise InstrumentError(f"channel {self.id}: set a current limit before turning the output on")
        self.output_on = bool(on)  # type: ignore[attr-defined]
        self._output = bool(on)

    @role_method
    def output_enabled(self) -> bool:
        self._output = self._query_output()
        return self._output

    @role_method
    def measure(self) -> Reading:
        self._ready()
        return self._measure_raw()

    @role_method
    def measure_current(self) -> float:
        r = self.measure()
        if r.compliance:
            raise ComplianceTripped(f"channel {self.id}: current clamped at the limit ({r.current:.4g} A)")
        return r.current

    @role_method
    def measure_voltage(self) -> float:
        r = self.measure()
        if r.compliance:
            raise ComplianceTripped(f"channel {self.id}: source clamped at the current limit ({r.voltage:.4g} V)")
        return r.voltage

    @role_method
    def pulse(self, volts: float, width_s: float) -> None:
        """Step to ``volts`` for ``width_s``, then back to 0 V (the output must be on)."""
        strict_range(volts, (-self.v_max, self.v_max))
        if not width_s > 0:
            raise ValueError(f"pulse width must be > 0 s, got {width_s!r}")
        self._ready()
        if self._output is None:
            self._output = self._query_output()
        if not self._output:
            raise InstrumentError(f"channel {self.id}: output is off, a pulse would not reach the device")
        if self._pulse_raw(volts, width_s):
            raise ComplianceTripped(f"channel {self.id}: the {volts:g} V pulse hit the current limit")
