"""One transport-error translation for every driver: a timeout is a timeout, a broken link is lost.

Retries (lab's RetryPolicy) retry timeouts only, so the switch matrix and the source-meters
must type the same transport failure the same way; they share drivers.transport.
"""
from __future__ import annotations

import socket

import pytest
import pyvisa
import serial
from pyvisa.constants import StatusCode

from drivers.errors import BadReply, ConnectionLost, InstrumentError, InstrumentTimeout
from drivers.keithley707b import Keithley707B
from drivers.keithley2400 import Keithley2400
from drivers.keithley2450 import Keithley2450
from drivers.keithley2600b import Keithley2636B
from drivers.keysight_b2900 import KeysightB2902A
from drivers.transport import GuardedIO, translate, translated


@pytest.mark.parametrize("exc, typed", [
    (pyvisa.errors.VisaIOError(StatusCode.error_timeout), InstrumentTimeout),
    (socket.timeout("timed out"), InstrumentTimeout),
    (TimeoutError("timed out"), InstrumentTimeout),
    (pyvisa.errors.VisaIOError(StatusCode.error_connection_lost), ConnectionLost),
    (pyvisa.errors.VisaIOError(StatusCode.error_io), ConnectionLost),
    (ConnectionResetError(104, "Connection reset by peer"), ConnectionLost),
    (BrokenPipeError(32, "Broken pipe"), ConnectionLost),
    (EOFError(), ConnectionLost),
    (pyvisa.errors.InvalidSession(), ConnectionLost),
    (serial.SerialException("device reports readiness to read but returned no data"), ConnectionLost),
    (UnicodeDecodeError("ascii", b"\xff", 0, 1, "ordinal not in range"), BadReply),
    (pyvisa.errors.VisaIOError(StatusCode.error_invalid_format), InstrumentError),
])
def test_each_transport_failure_has_one_typed_error(exc, typed):
    out = translate(exc, "m", "print(x)")
    assert type(out) is typed and out.instrument == "m" and "print(x)" in str(out)
    with pytest.raises(typed) as info:
        with translated("m", "print(x)"):
            raise exc
    assert info.value.__cause__ is exc


def test_other_exceptions_pass_through_untouched():
    exc = KeyError("x")
    assert translate(exc, "m", "q") is exc
    typed = InstrumentTimeout("already typed", instrument="m")
    assert translate(typed, "other", "q") is typed


@pytest.mark.parametrize("cls", [Keithley707B, Keithley2400, Keithley2450, Keithley2636B, KeysightB2902A])
def test_every_driver_does_its_io_through_the_one_guard(cls):
    for method in ("write", "read", "disconnect"):
        assert getattr(cls, method) is getattr(GuardedIO, method), (cls.__name__, method)
