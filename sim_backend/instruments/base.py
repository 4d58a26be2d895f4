"""Base of the simulated instruments: one message in, one reply out, plus faults.

A simulated instrument only parses text and acts on the shared simulated bench; how the
text arrives (TCP socket, pseudo-terminal, in-process VISA library) is the transport's
business. Every transport calls :meth:`SimInstrument.respond`, so faults behave the same
whichever way an instrument is reached.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

GARBAGE = b"\xff\xfe#?\x00garbage\x7f"
MESSAGE_TIME_S = 5.0  # wall time one message may take (a hung message would hang the server thread)
# A long wait advances the simulated physics in slices of growing length, so one message
# cannot hold the shared bench for longer than its time budget (a driven film integrates
# its physics: delay(100) at 1 V took > 8 s in one piece while every instrument waited).
FIRST_SLICE_S = 1.0


def _printable(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in str(text))


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
        self.message_time_s = MESSAGE_TIME_S
        self.deadline = float("inf")  # monotonic time the present message must be done by
        self.faults = Faults()
        self.error_queue: deque[tuple[int, str]] = deque(maxlen=100)
        self.lock = threading.RLock()  # one message at a time, whichever transport

    # -- to implement -------------------------------------------------------
    def handle(self, message: str) -> str | bytes | None:
        """Execute one message (no terminator); return the reply (text or binary block), or None."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------
    def push_error(self, code: int, message: str) -> None:
        # Error messages are printable ASCII, as an instrument's are: a message quoting a
        # client's non-ASCII or control byte would otherwise make every ASCII client's
        # error-queue read fail to decode, and the error queue would look dead.
        self.error_queue.append((code, _printable(message)))

    def next_error(self) -> tuple[int, str]:
        return self.error_queue.popleft() if self.error_queue else (0, "No error")

    def budget_error(self, message: str) -> Exception:
        """The error a message that ran out of time queues (a model's own error type)."""
        return RuntimeError(message)

    def advance_bounded(self, seconds: float, what: str) -> None:
        """Advance the bench by ``seconds`` of virtual time within this message's time budget.

        Up to :data:`FIRST_SLICE_S` in one piece (a pulse's delay is integrated as before),
        longer in slices that double; between slices other instruments may use the bench.
        Checked before every slice, also for a zero wait, so a trigger loop of many short
        waits is bounded too. Out of time, the wait stops there with :meth:`budget_error`
        naming how far it got (a simulator limit: a real instrument would simply wait).
        """
        bench = getattr(self, "bench", None)
        done, step = 0.0, FIRST_SLICE_S
        while True:
            if time.monotonic() > self.deadline:
                raise self.budget_error(f"{what}: simulating {seconds:g} s ran past the {self.message_time_s:g} s "
                                        f"time budget of one message; stopped after {done:.6g} s")
            if bench is None or not done < seconds:
                return
            h = min(step, seconds - done)
            bench.advance(h)
            done += h
            step *= 2

    def respond(self, message: str) -> Response:
        """Handle one message with the active faults applied."""
        with self.lock:
            self.deadline = time.monotonic() + self.message_time_s
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
