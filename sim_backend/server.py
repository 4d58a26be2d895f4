"""Serve simulated instruments the way real ones are reached: raw TCP sockets and RS-232.

Each LAN instrument gets its own raw-socket server on the loopback interface (port 0 picks
a free port), addressed by pyvisa-py as ``TCPIP::127.0.0.1::PORT::SOCKET``, exactly like a
SCPI/TSP instrument on port 5025. Each serial instrument gets a real pseudo-terminal and is
addressed as ``ASRL/dev/pts/N::INSTR`` (pyvisa-py opens it with pyserial). Messages are
newline-terminated; every message is logged with wall time and instrument name in
:attr:`SimServer.command_log` (a bounded ring, :mod:`sim_backend.message_log`, whose length
counts every message ever logged), which is how tests prove nothing was sent before a
validation error.

What a client sends cannot take the server down: a line longer than an instrument's input
buffer is dropped whole (-363 Input buffer overrun, as a real one queues) and costs no more
memory than the buffer; the log is bounded; an instrument that raises is logged and the
thread goes on; a listener that cannot accept (descriptors exhausted: EMFILE) backs off and
retries instead of dying.

Faults come from :meth:`SimInstrument.respond`, so they behave as in process: ``timeout``
swallows messages, ``drop`` resets the TCP connection (the listener stays, so a client may
reconnect) or hangs the pseudo-terminal up (the port is gone, like an unplugged adapter),
``garbage`` and ``error`` come from the instrument, ``delay_s`` holds the answer back.

One thread per instrument multiplexes its listener and connections, so an instrument
handles one message at a time, as a real one does; :meth:`SimServer.stop` wakes every
thread, joins it and closes every socket and file descriptor.

Pseudo-terminals exist on POSIX systems only: elsewhere this module imports and serves
TCP as usual, and serving an instrument over a pty raises :class:`PtyUnavailable`.
"""
from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from .instruments.base import Response, SimInstrument
from .message_log import LogEntry, MessageLog

try:
    import tty  # POSIX only (it needs termios): the pty transport alone uses it
except ImportError:  # Windows
    tty = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class PtyUnavailable(RuntimeError):
    """Serial instruments are served on pseudo-terminals, which this system does not have."""

def deliver(instrument: SimInstrument, message: str, command_log: MessageLog | list[LogEntry]) -> Response:
    """Log one message, bring a realtime bench up to date, let the instrument respond."""
    command_log.append((time.time(), instrument.name, message))
    bench = getattr(instrument, "bench", None)
    sync = getattr(bench, "sync_realtime", None)
    if sync is not None:
        sync()
    return instrument.respond(message)


MAX_MESSAGE_BYTES = 4_000_000  # an instrument's input buffer: longer unterminated input is dropped


class InputBuffer(bytearray):
    """A connection's input bytes, and whether the rest of an overlong line is being skipped."""

    discarding = False


def split_messages(buffer: bytearray, instrument: SimInstrument | None = None) -> list[str]:
    """Take the complete newline-terminated messages out of ``buffer``.

    A message longer than :data:`MAX_MESSAGE_BYTES` is discarded and, if ``instrument`` is
    given, queues -363 Input buffer overrun there, as a real one does. With an
    :class:`InputBuffer` the whole line goes, up to its newline, however long it is (with a
    plain bytearray only what overflowed: its tail arrives as a message of its own).
    """
    messages = []
    while True:
        end = buffer.find(b"\n")
        if getattr(buffer, "discarding", False):
            if end < 0:
                buffer.clear()
                return messages
            del buffer[: end + 1]
            buffer.discarding = False  # type: ignore[attr-defined]
            continue
        if end < 0 and len(buffer) <= MAX_MESSAGE_BYTES:
            return messages
        if end < 0 or end > MAX_MESSAGE_BYTES:
            if end < 0:
                buffer.clear()
                if isinstance(buffer, InputBuffer):
                    buffer.discarding = True
            else:
                del buffer[: end + 1]
            if instrument is not None:
                with instrument.lock:
                    instrument.push_error(-363, "Input buffer overrun")
            continue
        raw = bytes(buffer[:end]).rstrip(b"\r")
        del buffer[: end + 1]
        messages.append(raw.decode("ascii", errors="replace"))


# accept() errors that mean "no resources now" (descriptors, buffers): retry later
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.05, 1.0


class _Endpoint:
    """One instrument's server thread: a selector over its listener/pty and a wake pipe."""

    def __init__(self, instrument: SimInstrument, command_log: MessageLog, stop: threading.Event) -> None:
        self.instrument = instrument
        self.command_log = command_log
        self.stop_event = stop
        self.selector = selectors.DefaultSelector()
        # a socket pair, not a pipe: a selector on Windows watches sockets only
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self.thread = threading.Thread(target=self._run, name=f"sim-{instrument.name}", daemon=True)
        self.resource = ""
        self.retry_at: float | None = None  # when a paused listener is watched again (monotonic s)

    def retry(self) -> None:
        """Watch again what :meth:`_TcpEndpoint._back_off` paused."""
        self.retry_at = None

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _run(self) -> None:
        try:
            while not self.stop_event.is_set():
                timeout = None if self.retry_at is None else max(self.retry_at - time.monotonic(), 0.0)
                for key, _ in self.selector.select(timeout):
                    if key.data is None:
                        return
                    try:
                        key.data(key.fileobj)
                    except Exception:  # one bad connection must not stop the instrument
                        log.exception("%s: connection handler failed; closing that connection", self.instrument.name)
                        self._drop_fileobj(key.fileobj)
                if self.retry_at is not None and time.monotonic() >= self.retry_at:
                    self.retry()
        finally:
            self._close_all()

    def _drop_fileobj(self, fileobj: Any) -> None:
        self._close_fileobj(fileobj)

    def _answer(self, buffer: bytearray, send: Callable[[bytes], None], drop: Callable[[], None]) -> bool:
        """Handle complete messages in ``buffer``; False once the link was dropped."""
        for message in split_messages(buffer, self.instrument):
            try:
                response = deliver(self.instrument, message, self.command_log)
            except Exception:  # a simulator bug must not kill the server thread
                log.exception("%s: simulated instrument failed on %r", self.instrument.name, message)
                continue
            if response.action == "drop":
                drop()
                return False
            if response.action == "reply":
                if response.delay_s > 0 and self.stop_event.wait(response.delay_s):
                    return False
                send(response.data)
        return True

    def _close_all(self) -> None:
        for key in list(self.selector.get_map().values()):
            self._close_fileobj(key.fileobj)
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _close_fileobj(self, fileobj: Any) -> None:
        if fileobj == self._wake_r:
            return
        try:
            self.selector.unregister(fileobj)
        except (KeyError, ValueError):
            pass
        try:
            fileobj.close() if hasattr(fileobj, "close") else os.close(fileobj)
        except OSError:
            pass


class _TcpEndpoint(_Endpoint):
    def __init__(self, instrument: SimInstrument, command_log: MessageLog, stop: threading.Event,
                 host: str, port: int) -> None:
        super().__init__(instrument, command_log, stop)
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        port = self.listener.getsockname()[1]
        address = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.resource = f"TCPIP::{address}::{port}::SOCKET"
        self._buffers: dict[socket.socket, bytearray] = {}
        self._backoff_s = _BACKOFF_MIN_S

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in _OUT_OF_RESOURCES:
                self._back_off(exc)
            else:
                log.warning("%s: accept failed: %s", self.instrument.name, exc)
            return
        self._backoff_s = _BACKOFF_MIN_S
        try:
            conn.setblocking(True)
            conn.settimeout(5.0)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buffers[conn] = InputBuffer()
            self.selector.register(conn, selectors.EVENT_READ, self._receive)
        except (OSError, ValueError):
            self._buffers.pop(conn, None)
            conn.close()

    def _back_off(self, exc: OSError) -> None:
        """No descriptor for a new connection (EMFILE...): the pending one stays in the backlog;
        stop watching the listener (it would be ready again at once) and retry a little later."""
        log.warning("%s: cannot accept a connection (%s); retrying in %.2f s", self.instrument.name,
                    exc.strerror or exc, self._backoff_s)
        try:
            self.selector.unregister(self.listener)
        except (KeyError, ValueError):
            pass
        self.retry_at = time.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, _BACKOFF_MAX_S)

    def retry(self) -> None:
        super().retry()
        try:
            self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        except (KeyError, ValueError):
            pass  # still registered

    def _close_all(self) -> None:
        super()._close_all()
        self.listener.close()  # also when a back-off had it out of the selector

    def _drop_fileobj(self, fileobj: Any) -> None:
        if fileobj is self.listener:
            self._back_off(OSError("listener failed"))
            return
        self._buffers.pop(fileobj, None)
        super()._drop_fileobj(fileobj)

    def _receive(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._buffers.pop(conn, None)
            self._close_fileobj(conn)
            return

        def drop() -> None:
            # SO_LINGER 0: close with a reset, as a rebooting instrument does, so the client
            # sees "connection reset" instead of waiting for its timeout
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._buffers.pop(conn, None)
            self._close_fileobj(conn)

        def send(payload: bytes) -> None:
            try:
                conn.sendall(payload)
            except OSError:
                pass  # the client went away; its next read tells it

        buffer = self._buffers[conn]
        buffer.extend(data)
        self._answer(buffer, send, drop)


class _PtyEndpoint(_Endpoint):
    def __init__(self, instrument: SimInstrument, command_log: MessageLog, stop: threading.Event) -> None:
        if tty is None or not hasattr(os, "openpty"):
            raise PtyUnavailable(
                f"{instrument.name}: serial (pty) simulation needs a POSIX system; "
                "serve this instrument over TCP instead"
            )
        super().__init__(instrument, command_log, stop)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line editing: a plain byte pipe like RS-232
        os.set_blocking(self.master, False)  # a client that never reads must not stall the thread
        # the server keeps the slave open so the master never reads EIO between clients
        self.resource = f"ASRL{os.ttyname(self.slave)}::INSTR"
        self._buffer = InputBuffer()
        self.selector.register(self.master, selectors.EVENT_READ, self._receive)

    def _receive(self, master: int) -> None:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if not data:
            return

        def drop() -> None:
            self.hang_up()

        def send(payload: bytes) -> None:
            try:
                os.write(master, payload)
            except BlockingIOError:
                log.warning("%s: serial output buffer full, reply lost (overrun)", self.instrument.name)
            except OSError:
                pass

        self._buffer.extend(data)
        self._answer(self._buffer, send, drop)

    def hang_up(self) -> None:
        self._close_fileobj(self.master)
        self._close_slave()

    def _close_slave(self) -> None:
        if self.slave >= 0:
            try:
                os.close(self.slave)
            except OSError:
                pass
            self.slave = -1

    def _close_all(self) -> None:
        super()._close_all()
        self._close_slave()


class SimServer:
    """Serve simulated instruments over loopback TCP sockets and pseudo-terminals.

    :param instruments: {name: SimInstrument}.
    :param host: interface to bind; loopback unless told otherwise.
    :param serial_names: names of the instruments to serve over a pseudo-terminal (RS-232).
    :param ports: fixed TCP ports by name (default 0: a free port each).
    """

    def __init__(
        self,
        instruments: Mapping[str, SimInstrument],
        host: str = "127.0.0.1",
        serial_names: Iterable[str] = (),
        ports: Mapping[str, int] | None = None,
    ) -> None:
        self.instruments = dict(instruments)
        self.host = host
        self.serial_names = tuple(serial_names)
        unknown = set(self.serial_names) - set(self.instruments)
        if unknown:
            raise ValueError(f"serial_names names no served instrument: {sorted(unknown)}")
        self.ports = dict(ports or {})
        self.command_log = MessageLog()
        self._stop = threading.Event()
        self._endpoints: dict[str, _Endpoint] = {}

    @classmethod
    def from_twin(cls, twin: Any, host: str = "127.0.0.1", serial_names: Iterable[str] | None = None) -> "SimServer":
        """Serve a twin's instruments; those its bench file reaches over ASRL go on a pty."""
        if serial_names is None:
            serial_names = [
                inst.name for resource, inst in twin.by_resource.items()
                if resource.upper().startswith("ASRL")
            ]
        return cls(twin.instruments, host=host, serial_names=serial_names)

    @property
    def resources(self) -> dict[str, str]:
        """{instrument name: VISA resource string to open it with pyvisa-py}."""
        return {name: ep.resource for name, ep in self._endpoints.items()}

    def start(self) -> "SimServer":
        if self._endpoints:
            return self
        self._stop.clear()
        try:
            for name, inst in self.instruments.items():
                if name in self.serial_names:
                    ep: _Endpoint = _PtyEndpoint(inst, self.command_log, self._stop)
                else:
                    ep = _TcpEndpoint(inst, self.command_log, self._stop, self.host, self.ports.get(name, 0))
                self._endpoints[name] = ep
                ep.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every server thread and close every socket and file descriptor."""
        self._stop.set()
        for ep in self._endpoints.values():
            ep.wake()
        for ep in self._endpoints.values():
            if ep.thread.is_alive():
                ep.thread.join(timeout=5.0)
            elif ep.thread.ident is None:
                ep._close_all()  # never started: release what its constructor opened
        self._endpoints.clear()

    def __enter__(self) -> "SimServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
