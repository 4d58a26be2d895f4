"""Typed instrument errors, so callers can tell a dead link from a refused command.

Every error names the instrument it came from; transport exceptions (pyvisa, sockets,
pyserial) are translated into these by :mod:`drivers.transport` at the one place where
bytes cross the wire, the same way for every driver (a timeout is always
:class:`InstrumentTimeout`, a broken link always :class:`ConnectionLost`).
"""
from __future__ import annotations


class InstrumentError(Exception):
    """Base of every error raised by a hopbench driver."""

    def __init__(self, message: str, *, instrument: str = "") -> None:
        self.instrument = instrument
        super().__init__(f"{instrument}: {message}" if instrument else message)


class InstrumentTimeout(InstrumentError):
    """The instrument did not answer within the VISA timeout."""


class ConnectionLost(InstrumentError):
    """The link to the instrument broke (socket closed, serial port gone, I/O error)."""


class BadReply(InstrumentError):
    """The instrument answered something the driver cannot parse."""

    def __init__(self, message: str, *, reply: object = None, instrument: str = "") -> None:
        self.reply = reply
        super().__init__(f"{message}: {reply!r}" if reply is not None else message, instrument=instrument)


class InstrumentReportedError(InstrumentError):
    """The instrument put an entry in its error queue."""

    def __init__(self, code: int, message: str, *, command: str = "", instrument: str = "") -> None:
        self.code = int(code)
        self.message = message
        self.command = command
        text = f"error {self.code}, {message!r}"
        if command:
            text += f" after {command!r}"
        super().__init__(text, instrument=instrument)


class ComplianceTripped(InstrumentError):
    """The source hit its current limit, so the value asked for was not applied."""


class WrongLanguageMode(InstrumentError):
    """The instrument speaks another command language than the driver (e.g. a 2450 in TSP mode)."""
