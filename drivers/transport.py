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

import itertools
import logging
import socket
from contextlib import contextmanager
from typing import Any, Iterator

import pyvisa
from pyvisa import constants as vc

from .errors import BadReply, ConnectionLost, InstrumentError, InstrumentTimeout

log = logging.getLogger(__name__)
_nonces = itertools.count(1)

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


_get = object.__getattribute__


def reserved_names_getattribute(self: Any, name: str) -> Any:
    """pymeasure's ``CommonBase.__getattribute__``, the same check in fewer steps.

    pymeasure keeps the parameters of dynamic properties (``<prop>_values`` ...) under
    reserved names that must not be read. Its check runs on every attribute access as three
    nested Python-level lookups (``hasattr`` and the membership test each go through it
    again): 1.3 s of a 22 s profiled dry run of a film training. Here the same rule (the
    reserved names of this object raise AttributeError, everything else is the plain lookup)
    takes two C-level lookups. Valid because no class between CommonBase and ``object``
    defines its own ``__getattribute__`` (tests/test_sim_speed_exact.py checks the rule).
    """
    if name != "_special_names" and name != "__dict__":
        try:
            special = _get(self, "_special_names")
        except AttributeError:
            special = ()
        if name in special:
            raise AttributeError(f"{name} is a reserved variable name and it cannot be read")
    return _get(self, name)


def reserved_set(obj: Any) -> None:
    """Hold an object's reserved names (pymeasure's ``_special_names``) as a frozenset."""
    object.__setattr__(obj, "_special_names", frozenset(_get(obj, "_special_names")))


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
    __getattribute__ = reserved_names_getattribute

    def __init__(self, adapter: Any, name: str | None = None, **kwargs: Any) -> None:
        for key, value in self.connection_defaults.items():
            kwargs.setdefault(key, value)
        name = name or self.default_name
        with translated(name, f"open {adapter}"):
            super().__init__(adapter, name, **kwargs)  # type: ignore[call-arg]
        reserved_set(self)
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
        try:  # (what ``translated`` does, without a context manager per message)
            super().write(command, **kwargs)  # type: ignore[misc]
        except Exception as exc:
            typed = translate(exc, self.name, command)
            if typed is exc:
                raise
            raise typed from exc

    def read(self, **kwargs: Any) -> str:
        try:
            return super().read(**kwargs)  # type: ignore[misc]
        except Exception as exc:
            typed = translate(exc, self.name, f"reply to {self._last_command}")
            if isinstance(typed, InstrumentTimeout):
                self._late_reply_possible = True
            if typed is exc:
                raise
            raise typed from exc

    def _discard_late_replies(self) -> None:
        # A reply that missed its timeout may still come and would answer the next query: the
        # bytes already received are dropped, and a marker exchange waits out one still on its
        # way (a serial line or raw socket keeps it whatever the host clears).
        self._late_reply_possible = False
        try:
            self.adapter.flush_read_buffer()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - best effort; the marker below or the next exchange tells
            pass
        try:
            self._await_marker()
        except InstrumentTimeout:
            # still too slow to answer: the command itself must go out all the same (a source
            # set to 0 V must never wait for a reply), and the next command tries again
            log.warning("%s: replies still late; sending %r without resynchronising", self.name,
                        self._last_command[:80])

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

    # -- resynchronisation ----------------------------------------------------------------
    def sync_marker(self, nonce: int) -> tuple[str, str] | None:
        """A query whose reply only this exchange can produce: ``(command, reply)``; None = none.

        TSP models print a token, SCPI models echo a register value (see the model classes).
        """
        return None

    def drain_errors(self) -> list[tuple[int, str]]:
        """Empty the error queue (logged, not raised); a model with a queue overrides this."""
        return []

    def resync(self, max_replies: int = 8) -> None:
        """Bring the link back to a message boundary after an exchange was cut short.

        An interrupt (Ctrl-C, SIGTERM) between a query and its reply leaves that reply on its
        way; the next query would read it as its own answer. So, before anything else is said:

        1. VISA device clear (``viClear``): on GPIB, USB-TMC, VXI-11 and HiSLIP the instrument
           empties its input buffer and output queue. A raw socket has no device clear (the
           instrument never hears of it); pyvisa-py then only drops the replies already received.
        2. A lone terminator ends any message an interrupted write left half-sent.
        3. A marker query, and every reply read until the marker's own: a reply still in flight
           is discarded however late it comes.
        4. The error queue emptied (and logged): entries caused by the cut exchange must not be
           blamed on the commands that follow.
        """
        conn = getattr(self.adapter, "connection", None)  # type: ignore[attr-defined]
        clear = getattr(conn, "clear", None)
        # on a raw socket viClear is no device clear, and pyvisa-py's costs a 0.1 s wait: the
        # marker below does the same work
        if clear is not None and getattr(conn, "resource_class", "") != "SOCKET":
            try:
                with translated(self.name, "device clear"):
                    clear()
            except InstrumentError as exc:
                if not isinstance(exc.__cause__, pyvisa.errors.VisaIOError) or \
                        exc.__cause__.error_code != vc.StatusCode.error_nonsupported_operation:
                    raise
        self._late_reply_possible = False
        self._await_marker(max_replies, end_partial=True)
        errors = self.drain_errors()
        if errors:
            log.warning("%s: error queue before cleanup (from the interrupted exchange): %s", self.name, errors)

    def _await_marker(self, max_replies: int = 8, *, end_partial: bool = False) -> None:
        """Ask the model's marker query and discard every reply until the marker's own."""
        marker = self.sync_marker(next(_nonces))
        if marker is None:
            return
        if end_partial:
            self.write("")
        command, expected = marker
        self.write(command)
        for _ in range(max_replies):
            reply = self.read().strip()
            if reply == expected:
                return
            log.info("%s: discarded a stale reply %r", self.name, reply[:80])
        raise BadReply(f"no answer to the resync marker {command!r} in {max_replies} replies",
                       instrument=self.name)

    def disconnect(self) -> None:
        """Close the VISA session (outputs and relays keep their state)."""
        with translated(self.name, "close"):
            self.adapter.close()  # type: ignore[attr-defined]
