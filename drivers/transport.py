"""The one place where bytes cross the wire: transport failures become typed errors.

Every driver's ``write``/``read``/open/close runs inside :func:`translated`, so a failure
means the same thing whichever instrument it came from, and a retry policy can rely on it:

- no answer in time (VISA timeout, socket timeout) -> :class:`~drivers.errors.InstrumentTimeout`;
- the link broke (connection reset or closed, I/O error, session gone, serial port
  unplugged) -> :class:`~drivers.errors.ConnectionLost`;
- bytes that do not decode -> :class:`~drivers.errors.BadReply`;
- any other VISA failure -> :class:`~drivers.errors.InstrumentError`.

:class:`GuardedIO` is the mixin (put before the pymeasure base class) that applies it to
pymeasure's I/O, discards a reply that arrives after its timeout, and opens a link with
the terminations and timeout a model wants.
"""
from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import Any, Iterator

import pyvisa
from pyvisa import constants as vc

from .errors import BadReply, ConnectionLost, InstrumentError, InstrumentTimeout

_LOST_CODES = {
    vc.StatusCode.error_connection_lost,
    vc.StatusCode.error_io,
    vc.StatusCode.error_invalid_object,
    vc.StatusCode.error_resource_not_found,
    vc.StatusCode.error_closing_failed,
}


def translate(exc: BaseException, instrument: str, what: str) -> BaseException:
    """The typed error for a transport exception raised during ``what`` (others as they are)."""
    if isinstance(exc, InstrumentError):
        return exc
    if isinstance(exc, pyvisa.errors.VisaIOError):
        if exc.error_code == vc.StatusCode.error_timeout:
            return InstrumentTimeout(f"no answer to {what!r} within the timeout", instrument=instrument)
        if exc.error_code in _LOST_CODES:
            return ConnectionLost(f"link lost during {what!r} ({exc.abbreviation})", instrument=instrument)
        return InstrumentError(f"VISA error during {what!r}: {exc}", instrument=instrument)
    if isinstance(exc, (UnicodeDecodeError, UnicodeEncodeError)):
        raw = exc.object if isinstance(exc, UnicodeDecodeError) else None
        return BadReply(f"unreadable reply to {what!r} (undecodable bytes)", reply=raw, instrument=instrument)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return InstrumentTimeout(f"no answer to {what!r} within the timeout", instrument=instrument)
    if isinstance(exc, (ConnectionError, EOFError, OSError)):
        return ConnectionLost(f"link lost during {what!r}: {exc}", instrument=instrument)
    if isinstance(exc, pyvisa.errors.InvalidSession):
        return ConnectionLost(f"session closed during {what!r}", instrument=instrument)
    if isinstance(exc, pyvisa.errors.Error):
        return InstrumentError(f"VISA error during {what!r}: {exc}", instrument=instrument)
    if type(exc).__name__ == "SerialException":  # pyserial, without importing it here
        return ConnectionLost(f"serial link lost during {what!r}: {exc}", instrument=instrument)
    return exc


@contextmanager
def translated(instrument: str, what: str) -> Iterator[None]:
    """Raise the typed error of :func:`translate` for a transport exception in the block."""
    try:
        yield
    except Exception as exc:
        typed = translate(exc, instrument, what)
        if typed is exc:
            raise
        raise typed from exc


class GuardedIO:
    """Mixin for pymeasure instruments: typed transport errors, late replies discarded.

    Put it before the pymeasure base class. A model sets ``default_name`` and, if it needs
    other link settings, ``connection_defaults`` (keyword arguments for pymeasure/pyvisa,
    each overridable by the caller).
    """

    name: str
    default_name = "instrument"
    connection_defaults: dict[str, Any] = {"read_termination": "\n", "write_termination": "\n", "timeout": 5000}
    _last_command = ""
    _late_reply_possible = False

    def __init__(self, adapter: Any, name: str | None = None, **kwargs: Any) -> None:
        for key, value in self.connection_defaults.items():
            kwargs.setdefault(key, value)
        name = name or self.default_name
        with translated(name, f"open {adapter}"):
            super().__init__(adapter, name, **kwargs)  # type: ignore[call-arg]
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

    def disconnect(self) -> None:
        """Close the VISA session (outputs and relays keep their state)."""
        with translated(self.name, "close"):
            self.adapter.close()  # type: ignore[attr-defined]
