"""An in-process VISA library serving simulated instruments.

``pyvisa.ResourceManager(SimVisaLibrary(twin.by_resource))`` opens the simulated
instruments by the very resource strings of the bench file (``TCPIP::192.168.1.20::5025::
SOCKET``, ``GPIB0::24::INSTR``, ``ASRL/dev/ttyUSB0::INSTR``...). Why a VISA library rather
than binding the roles straight to the simulated bench: the drivers run unchanged, byte
for byte, through pyvisa's real message-based resources (termination characters, timeouts,
encodings, pymeasure's VISAAdapter), so a dry run exercises exactly the code a lab run
does, only without sockets or threads.

The library follows pyvisa-sim's structure (a ``VisaLibraryBase`` subclass dispatching to
one session object per open resource), but the answers are computed by the simulated
instruments instead of read from a table. Semantics kept from real VISA: a read stops at
the termination character when enabled (for serial: ``VI_ATTR_ASRL_END_IN``), after
``count`` bytes, or at the END of a message on GPIB/USB/VXI-11; a read with nothing to
come fails with ``VI_ERROR_TMO``; a dropped link fails with ``VI_ERROR_CONN_LOST``.
Nothing can arrive later in process, so a read that has nothing pending fails at once
instead of sleeping through the timeout; a delayed ("slow") answer is waited for up to
the timeout, in wall time.
"""
from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from pyvisa import attributes, constants, highlevel, rname
from pyvisa.constants import ResourceAttribute, StatusCode
from pyvisa.util import LibraryPath

from .instruments.base import SimInstrument
from .message_log import MessageLog
from .server import InputBuffer, deliver, split_messages

_counter = itertools.count(1)
_STREAM_INTERFACES = {constants.InterfaceType.asrl}  # no END indicator on the wire


def canonical_resource(name: str) -> str:
    """The normalized form pyvisa gives a resource string (board numbers filled in)."""
    try:
        return str(rname.parse_resource_name(name))
    except rname.InvalidResourceName:
        return name


class _Session:
    """One open resource: attributes, the bytes written so far, the replies not yet read."""

    def __init__(self, library: "SimVisaLibrary", resource_name: str, instrument: SimInstrument) -> None:
        parsed = rname.parse_resource_name(resource_name)
        self.library = library
        self.instrument = instrument
        self.interface = parsed.interface_type_const
        self.is_socket = parsed.resource_class == "SOCKET"
        self.attrs: dict[int, Any] = {
            ResourceAttribute.resource_name: str(parsed),
            ResourceAttribute.resource_class: parsed.resource_class,
            ResourceAttribute.interface_type: parsed.interface_type_const,
        }
        self.inbox = InputBuffer()
        self.outbox = bytearray()
        self.ends: deque[int] = deque()  # outbox offsets where a message ends (END indicator)
        self.pending: deque[tuple[float, bytes]] = deque()  # delayed replies: (ready at, data)
        self.dropped = False
        self.lock = threading.Lock()

    # -- attributes ------------------------------------------------------------------------
    def get_attribute(self, attribute: int) -> tuple[Any, StatusCode]:
        if attribute in self.attrs:
            return self.attrs[attribute], StatusCode.success
        attr = attributes.AttributesByID.get(attribute)
        if attr is None:
            return 0, StatusCode.error_nonsupported_attribute
        return attr.default, StatusCode.success

    def set_attribute(self, attribute: int, value: Any) -> StatusCode:
        if attribute not in attributes.AttributesByID:
            return StatusCode.error_nonsupported_attribute
        self.attrs[attribute] = value
        return StatusCode.success

    def _attr(self, attribute: int) -> Any:
        return self.get_attribute(attribute)[0]

    # -- I/O ---------------------------------------------------------------------------------
    def write(self, data: bytes) -> tuple[int, StatusCode]:
        with self.lock:
            if self.dropped:
                return 0, StatusCode.error_connection_lost
            self.inbox.extend(data)
            messages = split_messages(self.inbox, self.instrument)
            if self.inbox and self._send_end_terminates():
                messages.append(bytes(self.inbox).decode("ascii", errors="replace"))
                self.inbox.clear()
            for message in messages:
                response = deliver(self.instrument, message, self.library.command_log)
                if response.action == "drop":
                    self._drop()
                    return len(data), StatusCode.success
                if response.action == "reply":
                    self._queue(response.data, response.delay_s)
            return len(data), StatusCode.success

    def _send_end_terminates(self) -> bool:
        # GPIB EOI / USB / VXI-11 END ends a message even without a newline
        return self._has_end() and bool(self._attr(ResourceAttribute.send_end_enabled))

    def _queue(self, data: bytes, delay_s: float) -> None:
        if delay_s > 0 or self.pending:
            ready = time.monotonic() + delay_s
            if self.pending:
                ready = max(ready, self.pending[-1][0])
            self.pending.append((ready, data))
        else:
            self._arrive(data)

    def _arrive(self, data: bytes) -> None:
        self.outbox.extend(data)
        self.ends.append(len(self.outbox))

    def _drop(self) -> None:
        self.dropped = True
        self.inbox.clear()
        self.outbox.clear()
        self.ends.clear()
        self.pending.clear()

    def _collect_arrived(self) -> None:
        now = time.monotonic()
        while self.pending and self.pending[0][0] <= now:
            self._arrive(self.pending.popleft()[1])

    def _timeout_s(self) -> float:
        tmo = self._attr(ResourceAttribute.timeout_value)
        if tmo is None or tmo >= constants.VI_TMO_INFINITE:
            return float("inf")
        return max(float(tmo), 0.0) / 1000.0

    def _stop_at_termchar(self) -> bool:
        if self.interface in _STREAM_INTERFACES:
            end_in = self._attr(ResourceAttribute.asrl_end_in)
            return end_in == constants.SerialTermination.termination_char
        return bool(self._attr(ResourceAttribute.termchar_enabled))

    def read(self, count: int) -> tuple[bytes, StatusCode]:
        deadline = time.monotonic() + self._timeout_s()
        with self.lock:
            while True:
                if self.dropped:
                    return b"", StatusCode.error_connection_lost
                self._collect_arrived()
                if self.outbox:
                    return self._take(count)
                now = time.monotonic()
                if not self.pending or now >= deadline:
                    return b"", StatusCode.error_timeout
                wait = min(self.pending[0][0], deadline) - now
                self.lock.release()
                try:
                    time.sleep(max(wait, 0.0))
                finally:
                    self.lock.acquire()

    def _take(self, count: int) -> tuple[bytes, StatusCode]:
        cut: int | None = None
        status = StatusCode.error_timeout
        if self._stop_at_termchar():
            at = self.outbox.find(bytes([self._attr(ResourceAttribute.termchar)]), 0, count)
            if at >= 0:
                cut, status = at + 1, StatusCode.success_termination_character_read
        if cut is None and self._has_end() and self.ends and self.ends[0] <= count:
            cut, status = self.ends[0], StatusCode.success
        if cut is None and len(self.outbox) >= count:
            cut, status = count, StatusCode.success_max_count_read
        if cut is None:
            # a stream without its terminator: the rest never comes in process, and the
            # partial data is consumed with the timeout, as pyvisa-py does
            cut = len(self.outbox)
        data = bytes(self.outbox[:cut])
        del self.outbox[:cut]
        self.ends = deque(e - cut for e in self.ends if e > cut)
        return data, status

    def _has_end(self) -> bool:
        # GPIB EOI, USB and VXI-11 mark the end of a message; raw sockets and serial do not
        return not self.is_socket and self.interface not in _STREAM_INTERFACES

    def clear(self) -> None:
        """``viClear``, as each interface does it.

        GPIB, USB-TMC and VXI-11 carry a device clear: the instrument empties its input buffer
        and its output queue, so nothing asked before it is ever answered. A raw socket or a
        serial line has none (pyvisa-py drops the bytes already received, nothing more): what
        the instrument still holds, a half-received message or a reply on its way, stays.
        """
        with self.lock:
            self._collect_arrived()
            self.outbox.clear()
            self.ends.clear()
            if self._has_end():
                self.inbox.clear()
                self.pending.clear()


class SimVisaLibrary(highlevel.VisaLibraryBase):
    """A VISA library whose resources are simulated instruments.

    :param instruments: {resource string: SimInstrument}, e.g. ``twin.by_resource``.
    """

    sessions: dict[int, Any]

    def __new__(cls, instruments: Mapping[str, SimInstrument] | None = None) -> "SimVisaLibrary":
        # VisaLibraryBase caches one library per path; each simulated bench needs its own.
        obj = super().__new__(cls, LibraryPath(f"hopbench-sim-{next(_counter)}", "simulated"))
        obj.instruments = {canonical_resource(k): v for k, v in (instruments or {}).items()}
        return obj  # type: ignore[return-value]

    def _init(self) -> None:
        self.sessions = {}
        self.command_log = MessageLog()  # bounded; len() counts every message
        self.instruments: dict[str, SimInstrument] = {}

    @staticmethod
    def get_library_paths() -> tuple[LibraryPath, ...]:
        return ()

    @staticmethod
    def get_debug_info() -> dict[str, str]:
        return {"backend": "hopbench simulated instruments (in process)"}

    def _register(self, obj: Any) -> int:
        while True:
            session = random.randint(1_000_000, 9_999_999)
            if session not in self.sessions:
                self.sessions[session] = obj
                return session

    def _session(self, session: Any) -> _Session | None:
        sess = self.sessions.get(session)
        return sess if isinstance(sess, _Session) else None

    # -- resource manager -----------------------------------------------------------------
    def open_default_resource_manager(self) -> tuple[Any, StatusCode]:
        return self._register(self), self.handle_return_value(None, StatusCode.success)

    def list_resources(self, session: Any, query: str = "?*::INSTR") -> tuple[str, ...]:
        return tuple(rname.filter(list(self.instruments), query))

    def open(self, session: Any, resource_name: str, access_mode: Any = constants.AccessModes.no_lock,
             open_timeout: Any = constants.VI_TMO_IMMEDIATE) -> tuple[Any, StatusCode]:
        try:
            name = str(rname.parse_resource_name(resource_name))
        except rname.InvalidResourceName:
            return 0, self.handle_return_value(None, StatusCode.error_invalid_resource_name)
        instrument = self.instruments.get(name)
        if instrument is None:
            return 0, self.handle_return_value(None, StatusCode.error_resource_not_found)
        return self._register(_Session(self, name, instrument)), StatusCode.success

    def close(self, session: Any) -> StatusCode:
        if self.sessions.pop(session, None) is None:
            # as pyvisa-sim: a second close (ResourceManager.__del__ after close) is not an error to raise
            return StatusCode.error_invalid_object
        return self.handle_return_value(session, StatusCode.success)

    # -- I/O ----------------------------------------------------------------------------------
    def read(self, session: Any, count: int) -> tuple[bytes, StatusCode]:
        sess = self._session(session)
        if sess is None:
            return b"", self.handle_return_value(session, StatusCode.error_invalid_object)
        data, status = sess.read(count)
        return data, self.handle_return_value(session, status)

    def write(self, session: Any, data: bytes) -> tuple[int, StatusCode]:
        sess = self._session(session)
        if sess is None:
            return 0, self.handle_return_value(session, StatusCode.error_invalid_object)
        written, status = sess.write(bytes(data))
        return written, self.handle_return_value(session, status)

    def buffer_read(self, session: Any, count: int) -> tuple[bytes, StatusCode]:
        return self.read(session, count)

    def buffer_write(self, session: Any, data: bytes) -> tuple[int, StatusCode]:
        return self.write(session, data)

    def clear(self, session: Any) -> StatusCode:
        sess = self._session(session)
        if sess is None:
            return self.handle_return_value(session, StatusCode.error_invalid_object)
        sess.clear()
        return self.handle_return_value(session, StatusCode.success)

    def flush(self, session: Any, mask: Any) -> StatusCode:
        return self.clear(session)

    def read_stb(self, session: Any) -> tuple[int, StatusCode]:
        sess = self._session(session)
        if sess is None:
            return 0, self.handle_return_value(session, StatusCode.error_invalid_object)
        stb = 4 if sess.instrument.error_queue else 0  # EAV: error available
        return stb, self.handle_return_value(session, StatusCode.success)

    def assert_trigger(self, session: Any, protocol: Any) -> StatusCode:
        written, status = self.write(session, b"*TRG\n")
        return status

    # -- attributes and housekeeping --------------------------------------------------------
    def get_attribute(self, session: Any, attribute: Any) -> tuple[Any, StatusCode]:
        sess = self._session(session)
        if sess is None:
            if session in self.sessions:  # the resource manager session
                return None, StatusCode.error_nonsupported_attribute
            return None, self.handle_return_value(session, StatusCode.error_invalid_object)
        value, status = sess.get_attribute(attribute)
        return value, self.handle_return_value(session, status)

    def set_attribute(self, session: Any, attribute: Any, attribute_state: Any) -> StatusCode:
        sess = self._session(session)
        if sess is None:
            return self.handle_return_value(session, StatusCode.error_invalid_object)
        return self.handle_return_value(session, sess.set_attribute(attribute, attribute_state))

    def lock(self, session: Any, lock_type: Any, timeout: int, requested_key: str | None = None) -> tuple[str, StatusCode]:
        return requested_key or "hopbench-sim", StatusCode.success

    def unlock(self, session: Any) -> StatusCode:
        return StatusCode.success

    def disable_event(self, session: Any, event_type: Any, mechanism: Any) -> StatusCode:
        return StatusCode.success

    def discard_events(self, session: Any, event_type: Any, mechanism: Any) -> StatusCode:
        return StatusCode.success
