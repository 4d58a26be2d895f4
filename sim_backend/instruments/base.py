"""Base of the simulated instruments: one message in, one reply out, plus faults.

A simulated instrument only parses text and acts on the shared simulated bench; how the
text arrives (TCP socket, pseudo-terminal, in-process VISA library) is the transport's
business. Every transport calls :meth:`SimInstrument.respond`, so faults behave the same
whichever way an instrument is reached.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

GARBAGE = b"\xff\xfe#?\x00garbage\x7f"


@dataclass
class Faults:
    """Ways to make an instrument misbehave, for tests of everything above it."""

    timeout: bool = False  # read and swallow every message, never answer
    drop: bool = False  # close the connection at the next message
    garbage: bool = False  # answer queries with bytes that parse as nothing
    delay_s: float = 0.0  # wall-clock delay before every answer
    error: tuple[int, str] | None = None  # pushed into the error queue at the next message
    compliance: bool = False  # source-meters report their output clamped

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]


@dataclass(frozen=True)
class Response:
    action: Literal["reply", "silent", "drop"]
    data: bytes = b""
    delay_s: float = 0.0


class SimInstrument:
    """Subclasses implement :meth:`handle` for their command language."""

    model: str = "generic"
    idn: str = "hopbench,Simulated instrument,0,0.1"
    termination: str = "\n"

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.faults = Faults()
        self.error_queue: deque[tuple[int, str]] = deque(maxlen=100)
        self.lock = threading.RLock()  # one message at a time, whichever transport

    # -- to implement -------------------------------------------------------
    def handle(self, message: str) -> str | bytes | None:
        """Execute one message (no terminator); return the reply (text or binary block), or None."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------
    def push_error(self, code: int, message: str) -> None:
        self.error_queue.append((code, message))

    def next_error(self) -> tuple[int, str]:
        return self.error_queue.popleft() if self.error_queue else (0, "No error")

    def respond(self, message: str) -> Response:
        """Handle one message with the active faults applied."""
        with self.lock:
            f = self.faults
            if f.drop:
                return Response("drop")
            if f.error is not None:
                self.push_error(*f.error)
                f.error = None
            if f.timeout:
                return Response("silent")
            reply = self.handle(message.strip())
            if reply is None:
                return Response("silent", delay_s=f.delay_s)
            raw = reply if isinstance(reply, bytes) else reply.encode("latin-1", errors="replace")
            data = GARBAGE if f.garbage else raw
            return Response("reply", data + self.termination.encode(), f.delay_s)
