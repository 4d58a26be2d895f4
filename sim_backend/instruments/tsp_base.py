"""Base of the simulated TSP instruments: common commands, script blocks, the tables all share.

See :mod:`sim_backend.instruments.tsp` for the interpreter. A message is one chunk, except
inside a script block: ``loadscript name`` / ``loadandrunscript [name]`` start one, every
line until ``endscript`` is collected (not run), and ``endscript`` compiles it (a syntax
error queues -285 and defines nothing), defines ``name`` (``name()``, ``name.run()``) and,
for ``loadandrunscript``, runs it under one message's budget.
"""
from __future__ import annotations

import functools
import math
import struct
from typing import Any

from .base import SimInstrument
from .lua_parse import MAX_CHUNK_CHARS, LuaSyntaxError
from .lua_runtime import LuaTable
from .scpi import ScpiError
from .tsp import (
    PARAMETER_ERROR, PARAMETER_TOO_SMALL, RUNTIME_ERROR, SYNTAX_ERROR, UNDEFINED_HEADER, TspError, TspInterpreter, _Script,
    format_value, number_argument,
)

# format.* constants (2600BS-901-01, "format.data", "format.byteorder")
ASCII, REAL32, REAL64 = 1, 4, 3
NORMAL, SWAPPED = 0, 1
# delay(): "the number of seconds to delay (1 µs to 100 000 s)" (2600BS-901-01, delay()).
MAX_DELAY_S = 100_000.0
PARAMETER_TOO_BIG = 1102


class TspInstrument(SimInstrument):
    """Base of the simulated TSP instruments: common commands, a Lua chunk per message.

    Errors of a chunk go to the error queue with their code: :class:`TspError` from the
    interpreter and the model's functions, :class:`~sim_backend.instruments.scpi.ScpiError`
    from the channel state shared with the SCPI models (same codes), and a wrong argument
    count or type as a runtime error. A model sets ``error_severity``/``error_node`` (what
    ``errorqueue.next()`` returns besides code and message), ``unknown_common`` (the error
    an unknown ``*`` command queues), ``model_number``/``serial`` (``localnode``) and
    implements :meth:`reset` and :meth:`add_functions`.
    """

    error_severity = 0
    error_node = 0
    unknown_common = (UNDEFINED_HEADER, "Undefined header: {message}")
    model_number = "TSP"
    serial = "0"
    line_frequency = 50.0

    def __init__(self, name: str = "", bench: Any = None) -> None:
        super().__init__(name)
        self.bench = bench
        self._script: tuple[str | None, bool, list[str]] | None = None  # (name, run?, lines)
        self.data_format = ASCII
        self.byte_order = SWAPPED

    @functools.cached_property
    def tsp(self) -> TspInterpreter:
        """The instrument's interpreter, built at the first message (after the model's state)."""
        t = TspInterpreter()
        t.function("reset", lambda *a: self.full_reset())
        t.function("waitcomplete", lambda *a: None)
        t.function("opc", lambda: None)
        t.function("delay", self._delay)
        t.function("errorqueue.clear", self.error_queue.clear)
        t.function("errorqueue.next", self._next_error)
        t.attribute("errorqueue.count", lambda: len(self.error_queue))
        self._add_localnode(t)
        self._add_format(t)
        self.add_functions(t)
        return t

    def _add_localnode(self, t: TspInterpreter) -> None:
        settings = {"prompts": 0.0, "prompts4882": 1.0, "showerrors": 0.0, "autolinefreq": 1.0}
        t.constant("localnode.model", self.model_number)
        t.constant("localnode.serialno", self.serial)
        t.constant("localnode.revision", self.idn.split(",")[-1].strip().split(" ")[0])
        t.constant("localnode.description", f"Keithley Instruments {self.model_number} - {self.serial}")
        t.attribute("localnode.linefreq", lambda: self.line_frequency, self._set_linefreq)
        for key in settings:
            t.attribute(f"localnode.{key}", lambda k=key: settings[k],
                        lambda v, k=key: settings.__setitem__(k, _switch(v, f"localnode.{k}")))
        t.function("localnode.reset", lambda *a: self.full_reset())
        clock = {"t0": self._now()}
        t.function("timer.reset", lambda: clock.__setitem__("t0", self._now()))
        t.function("timer.measure.t", lambda: self._now() - clock["t0"])

    def _set_linefreq(self, v: Any) -> None:
        f = number_argument(v, "linefreq")
        if f not in (50.0, 60.0):
            raise TspError("Parameter data out of range: linefreq must be 50 or 60", -222)
        self.line_frequency = f

    def _now(self) -> float:
        clock = getattr(self.bench, "clock", None)
        return float(clock.now) if clock is not None else 0.0

    def _add_format(self, t: TspInterpreter) -> None:
        for name, value in (("ASCII", ASCII), ("REAL32", REAL32), ("SREAL", REAL32), ("REAL", REAL64),
                            ("REAL64", REAL64), ("DREAL", REAL64), ("NORMAL", NORMAL), ("BIGENDIAN", NORMAL),
                            ("NETWORK", NORMAL), ("SWAPPED", SWAPPED), ("LITTLEENDIAN", SWAPPED)):
            t.constant(f"format.{name}", float(value))

        def set_precision(v: Any) -> None:
            n = number_argument(v, "asciiprecision")
            if not 0 <= n <= 16:
                raise TspError("Parameter data out of range: asciiprecision 0..16", -222)
            t.precision = int(n) or 6

        def set_data(v: Any) -> None:
            if number_argument(v, "format.data") not in (ASCII, REAL32, REAL64):
                raise TspError("Parameter data out of range: format.data", -222)
            self.data_format = int(v)

        def set_order(v: Any) -> None:
            self.byte_order = int(_switch(v, "format.byteorder"))

        t.attribute("format.asciiprecision", lambda: float(t.precision), set_precision)
        t.attribute("format.data", lambda: float(self.data_format), set_data)
        t.attribute("format.byteorder", lambda: float(self.byte_order), set_order)
        t.function("printnumber", lambda *values: self.print_numbers(values))

    def print_numbers(self, values: Any) -> None:
        """Numbers as ``format.data`` says: ASCII with ``, `` between, or ``#0`` + IEEE-754 floats."""
        nums = [number_argument(v, "printnumber") for v in values]
        if self.data_format == ASCII:
            self.tsp.emit(", ".join(format_value(v, self.tsp.precision) for v in nums))
            return
        code = "f" if self.data_format == REAL32 else "d"
        order = "<" if self.byte_order == SWAPPED else ">"
        self.tsp.emit(b"#0" + struct.pack(f"{order}{len(nums)}{code}", *nums))

    def add_functions(self, tsp: TspInterpreter) -> None:
        """Register the model's constants, attributes and functions."""
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def full_reset(self) -> None:
        """``*RST`` / ``reset()``: the model's state and what every TSP instrument resets
        (``format.*``: "affected by instrument reset" in the manuals)."""
        self.data_format = ASCII
        self.byte_order = SWAPPED
        if "tsp" in self.__dict__:
            self.tsp.precision = 6
        self.reset()

    def _delay(self, seconds: Any = None) -> None:
        s = number_argument(seconds, "delay")
        if math.isnan(s):
            raise TspError("Parameter error delay: not a number", PARAMETER_ERROR)
        if s < 0:
            raise TspError("Parameter too small", PARAMETER_TOO_SMALL)
        if s > MAX_DELAY_S:
            raise TspError(f"Parameter too big: delay {s:g} s (at most {MAX_DELAY_S:g} s)", PARAMETER_TOO_BIG)
        self.advance_bounded(s, "delay")

    def budget_error(self, message: str) -> Exception:
        return TspError(message, RUNTIME_ERROR)

    def _next_error(self) -> tuple[Any, ...]:
        code, message = self.next_error()
        if code == 0:
            return (0, "Queue Is Empty", 0, 0)
        return (code, message, self.error_severity, self.error_node)

    # -- messages ------------------------------------------------------------------------------
    def _common(self, message: str) -> str | None:
        head = message.split()[0].upper()
        if head == "*IDN?":
            return self.idn
        if head == "*OPC?":
            return "1"
        if head == "*RST":
            self.full_reset()
        elif head == "*CLS":
            self.error_queue.clear()
        elif head in ("*OPC", "*WAI", "*TRG"):
            pass
        elif head == "*ESR?":
            return "0"
        elif head == "*STB?":
            return str(4 if self.error_queue else 0)  # EAV bit: error available
        else:
            code, text = self.unknown_common
            self.push_error(code, text.format(message=message))
        return None

    def handle(self, message: str) -> str | bytes | None:
        if self._script is not None:
            return self._script_line(message)
        if not message:
            return None
        if message.startswith("*"):
            return self._common(message)
        words = message.split()
        if words[0] in ("loadscript", "loadandrunscript") and len(words) <= 2:
            self._script = (words[1] if len(words) > 1 else None, words[0] == "loadandrunscript", [])
            return None
        return self.run_chunk(message)

    def _script_line(self, message: str) -> str | bytes | None:
        name, run, lines = self._script  # type: ignore[misc]
        if message.strip() != "endscript":
            lines.append(message)
            if sum(len(x) + 1 for x in lines) > MAX_CHUNK_CHARS:
                self._script = None
                self.push_error(-1101, "Script too large: loading aborted")
            return None
        self._script = None
        source = "\n".join(lines)
        try:
            fn = self.tsp.machine.load(source, name or "anonymous")
        except LuaSyntaxError as exc:
            self.push_error(SYNTAX_ERROR, exc.message)
            return None
        if name:
            self.tsp.machine.user.set(name, _Script(self.tsp, name, fn, source))
        return self.run_chunk(source) if run else None

    def run_chunk(self, chunk: str) -> str | bytes | None:
        printed: list[Any] = []
        try:
            self.tsp.execute(chunk, printed)
        except (TspError, ScpiError) as exc:
            self.push_error(exc.code, exc.message)
        except (TypeError, ValueError) as exc:  # wrong argument type for the instrument
            self.push_error(RUNTIME_ERROR, f"TSP Runtime error at line {self.tsp.machine.line}: {exc}")
        return _join(printed)


def _join(printed: list[Any]) -> str | bytes | None:
    if not printed:
        return None
    if any(isinstance(p, bytes) for p in printed):
        return b"\n".join(p if isinstance(p, bytes) else p.encode("latin-1", "replace") for p in printed)
    return "\n".join(printed)


def _switch(value: Any, what: str) -> float:
    n = number_argument(value, what)
    if n not in (0.0, 1.0):
        raise TspError(f"Parameter data out of range: {what} must be 0 or 1", -222)
    return n


__all__ = ["TspInstrument", "LuaTable"]
