"""What every source-meter driver shares: guarded I/O, error-queue checks, the role methods.

A model module declares its commands as pymeasure ``control``/``measurement``/``setting``
properties on a channel class and implements three hooks (``_prepare``, ``_measure_raw``,
``_pulse_raw``); :class:`SourceMeterChannelBase` turns those into the source-meter role
(``set_voltage`` ... ``pulse``) with the same safety rules for every model:

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
import re
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import pyvisa
from pyvisa import constants as vc
from pymeasure.instruments import Channel
from pymeasure.instruments.validators import strict_range

from .errors import (
    BadReply,
    ComplianceTripped,
    ConnectionLost,
    InstrumentError,
    InstrumentReportedError,
    InstrumentTimeout,
)

OVERFLOW = 9.9e37  # Keithley/Keysight mark of a value not measured (9.91e37)

_LOST_CODES = {
    vc.StatusCode.error_connection_lost,
    vc.StatusCode.error_io,
    vc.StatusCode.error_invalid_object,
    vc.StatusCode.error_resource_not_found,
    vc.StatusCode.error_closing_failed,
}


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


def parse_scpi_error(reply: str) -> tuple[int, str]:
    """``-113,"Undefined header"`` -> (-113, 'Undefined header')."""
    m = re.match(r'^\s*([+-]?\d+)\s*,\s*"?(.*?)"?\s*$', reply, re.S)
    if not m:
        raise BadReply("expected an error queue entry 'code,\"message\"'", reply=reply)
    return int(m.group(1)), m.group(2)


# -- I/O guard ----------------------------------------------------------------------------

def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, pyvisa.errors.VisaIOError) and exc.error_code == vc.StatusCode.error_timeout


@contextmanager
def translated(instrument: str, what: str) -> Iterator[None]:
    """Turn transport exceptions into the typed errors of :mod:`drivers.errors`."""
    try:
        yield
    except InstrumentError:
        raise
    except pyvisa.errors.VisaIOError as exc:
        if _is_timeout(exc):
            raise InstrumentTimeout(f"no answer to {what!r} within the timeout", instrument=instrument) from exc
        if exc.error_code in _LOST_CODES:
            raise ConnectionLost(f"link lost during {what!r} ({exc.abbreviation})", instrument=instrument) from exc
        raise InstrumentError(f"VISA error during {what!r}: {exc}", instrument=instrument) from exc
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:
        raise BadReply(f"undecodable bytes in reply to {what!r}", instrument=instrument) from exc
    except (socket.timeout, TimeoutError) as exc:
        raise InstrumentTimeout(f"no answer to {what!r} within the timeout", instrument=instrument) from exc
    except (ConnectionError, EOFError, OSError) as exc:
        raise ConnectionLost(f"link lost during {what!r}: {exc}", instrument=instrument) from exc
    except pyvisa.errors.InvalidSession as exc:
        raise ConnectionLost(f"session closed during {what!r}", instrument=instrument) from exc
    except Exception as exc:
        if type(exc).__name__ == "SerialException":  # pyserial, without importing it here
            raise ConnectionLost(f"serial link lost during {what!r}: {exc}", instrument=instrument) from exc
        raise


class GuardedInstrument:
    """Mixin for pymeasure instruments: typed errors on I/O, error-queue checks, injectable sleep.

    Put it before the pymeasure base class. Subclasses implement :meth:`read_error`
    (one error-queue entry as ``(code, message)``, code 0 = empty).
    """

    name: str
    _last_command = ""
    _late_reply_possible = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The lab injects its bench clock here so pulses take virtual time in a dry run.
        self.sleep: Callable[[float], None] = time.sleep
        super().__init__(*args, **kwargs)
        self._disable_nagle()

    def _disable_nagle(self) -> None:
        """Raw sockets: send each message at once, as VISA does by default (pyvisa-py does not).

        With Nagle's algorithm a command followed by a query waits for the delayed ACK of the
        command (~40 ms on Linux) on every setting. pyvisa-py implements the
        VI_ATTR_TCPIP_NODELAY setter but does not register it, so the socket is set directly.
        """
        conn = getattr(getattr(self, "adapter", None), "connection", None)
        if conn is None or getattr(conn, "resource_class", "") != "SOCKET":
            return
        try:
            conn.set_visa_attribute(vc.ResourceAttribute.tcpip_nodelay, vc.VisaBoolean.true)
            return
        except Exception:  # noqa: BLE001 - any library may refuse; fall through
            pass
        try:
            sock = conn.visalib.sessions[conn.session].interface
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception:  # noqa: BLE001 - not pyvisa-py: a slower link still works
            pass

    def write(self, command: str, **kwargs: Any) -> None:
        if self._late_reply_possible:
            self._discard_late_replies()
        self._last_command = command
        with translated(self.name, command):
            super().write(command, **kwargs)  # type: ignore[misc]

    def read(self, **kwargs: Any) -> str:
        try:
            with translated(self.name, f"reply to {self._last_command}"):
                return super().read(**kwargs)  # type: ignore[misc]
        except InstrumentTimeout:
            self._late_reply_possible = True
            raise

    def _discard_late_replies(self) -> None:
        # A reply that missed its timeout may still come and would answer the next query.
        self._late_reply_possible = False
        try:
            self.adapter.flush_read_buffer()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - best effort; the next exchange reports a dead link
            pass

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

    # pymeasure calls these after properties declared with check_set_errors/check_get_errors.
    def check_set_errors(self) -> list:
        self.raise_errors()
        return []

    def check_get_errors(self) -> list:
        self.raise_errors()
        return []

    @contextmanager
    def longer_timeout(self, extra_s: float) -> Iterator[None]:
        """Give one exchange ``extra_s`` more time (an instrument busy with a pulse answers late)."""
        conn = getattr(self.adapter, "connection", None)  # type: ignore[attr-defined]
        old = getattr(conn, "timeout", None)
        if not isinstance(old, (int, float)) or isinstance(old, bool):
            yield
            return
        conn.timeout = old + 1000.0 * extra_s
        try:
            yield
        finally:
            conn.timeout = old

    def close(self) -> None:
        with translated(self.name, "close"):
            self.adapter.close()  # type: ignore[attr-defined]


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

    Subclasses declare properties ``source_voltage``, ``current_limit``,
    ``source_voltage_range``, ``source_voltage_range_auto``, ``current_range``,
    ``current_range_auto``, ``nplc``, ``output_on`` with ``check_set_errors=True`` and
    implement the hooks.
    """

    v_max = 210.0  # V, the model's source bound (pulse levels are checked against it first)

    def __init__(self, parent: Any, id: Any, **kwargs: Any) -> None:
        super().__init__(parent, id, **kwargs)
        self.name = f"{parent.name}.{id}"
        self._prepared = False
        self._limit_set = False
        self._output: bool | None = None  # last known output state

    # hooks ---------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Configure voltage source / current sense once; must not change the output."""
        raise NotImplementedError

    def _measure_raw(self) -> Reading:
        raise NotImplementedError

    def _pulse_raw(self, volts: float, width_s: float) -> bool:
        """Apply the pulse; return whether the source was clamped during it."""
        raise NotImplementedError

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

    @role_method
    def set_voltage_range(self, volts: float | None) -> None:
        self._ready()
        if volts is None:
            self.source_voltage_range_auto = True  # type: ignore[attr-defined]
        else:
            self.source_voltage_range = volts  # type: ignore[attr-defined]

    @role_method
    def set_current_range(self, amps: float | None) -> None:
        self._ready()
        if amps is None:
            self.current_range_auto = True  # type: ignore[attr-defined]
        else:
            self.current_range = amps  # type: ignore[attr-defined]

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
