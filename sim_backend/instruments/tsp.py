"""The one TSP (Lua) interpreter of the simulated TSP instruments, and their shared base.

TSP instruments (Keithley 2600B, 707B/708B) run every message as a Lua chunk. The language
is the Lua a TSP script uses (:mod:`~sim_backend.instruments.lua_parse`: locals, multiple
assignment, control flow, functions and closures, tables, string concatenation,
``string.format`` ...), run by :class:`~sim_backend.instruments.lua_machine.Machine` under
a per-message budget of steps, memory and wall time (``while true do end`` becomes an error
in the queue, not a hung server). Scripts reach nothing but the instrument: no file, OS or
module access. A chunk is compiled whole before anything runs (a syntax error executes
nothing, -285); a run-time error stops it where it happened (-286), and what it printed
before stays printed. Numbers print as ``format.asciiprecision`` says (6: ``1.23400e-06``),
``print`` arguments separated by tabs.

:class:`TspInterpreter` is the host side: a model registers its tables with
:meth:`~TspInterpreter.constant`, :meth:`~TspInterpreter.attribute`,
:meth:`~TspInterpreter.function` and :meth:`~TspInterpreter.object` by dotted path
(``smua.source.levelv``; a numeric part indexes, ``trigger.timer.1.delay``).

:class:`TspInstrument` is the base of the simulated TSP instruments: the IEEE 488.2 common
commands a TSP instrument still takes (``*IDN?``, ``*RST``, ``*OPC?`` ...), one chunk per
message, ``loadscript``/``loadandrunscript`` ... ``endscript`` blocks, and what every TSP
instrument has (``errorqueue``, ``delay``, ``reset``, ``waitcomplete``, ``localnode``,
``format``, ``timer``, ``print``); a model adds its own tables in :meth:`add_functions`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .lua_machine import Machine
from .lua_parse import LuaSyntaxError
from .lua_runtime import HostFunction, HostObject, LuaError, LuaTable, tostring, type_name
from .lua_stdlib import install

SYNTAX_ERROR = -285
RUNTIME_ERROR = -286
MAX_HEAP = 32_000_000  # bytes the script's own globals may hold between messages


class TspError(LuaError):
    """An error the instrument reports in its error queue: ``code`` and ``message``."""

    code = RUNTIME_ERROR

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class TspSyntaxError(TspError):
    code = SYNTAX_ERROR


class TspRuntimeError(TspError):
    code = RUNTIME_ERROR


def format_value(value: Any, precision: int = 6) -> str:
    """Format a value the way TSP ``print`` does (``format.asciiprecision`` digits)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{float(value):.{max(precision - 1, 0)}e}"
    return tostring(value)


@dataclass
class _Property:
    get: Callable[[], Any]
    setter: Callable[[Any], None] | None = None


class HostTable(HostObject):
    """A table of the instrument: attributes (getter/setter), functions, constants, sub-tables."""

    def __init__(self, path: str) -> None:
        self.lua_name = path
        self.fields: dict[Any, Any] = {}
        self.props: dict[Any, _Property] = {}

    def lua_get(self, key: Any) -> Any:
        prop = self.props.get(key)
        if prop is not None:
            return prop.get()
        return self.fields.get(key)

    def lua_set(self, key: Any, value: Any) -> None:
        prop = self.props.get(key)
        name = f"{self.lua_name}.{tostring(key)}" if isinstance(key, str) else f"{self.lua_name}[{tostring(key)}]"
        if prop is None:
            raise LuaError(f"cannot assign '{name}'")
        if prop.setter is None:
            raise LuaError(f"{name} is read-only")
        prop.setter(value)

    def lua_len(self) -> float:
        n = 0
        while float(n + 1) in self.fields:
            n += 1
        return float(n)


def _parts(path: str) -> list[Any]:
    return [float(p) if p.isdigit() else p for p in path.split(".")]


class TspInterpreter:
    """Runs chunks against the tables an instrument registered; :meth:`execute` returns the printed lines."""

    def __init__(self) -> None:
        self.machine = Machine()
        install(self.machine)
        self.precision = 6  # format.asciiprecision
        self._printed: list[Any] = []
        self.function("print", self._print)

    @property
    def variables(self) -> LuaTable:
        """The script's own globals (``x = 1``)."""
        return self.machine.user

    # -- registration ------------------------------------------------------------------------
    def table(self, path: str) -> HostTable:
        """The host table at ``path``, created (with its parents) if new."""
        parts = _parts(path)
        node = self.machine.host.get(parts[0])
        if node is None:
            node = self.machine.host[parts[0]] = HostTable(str(parts[0]))
        for i, part in enumerate(parts[1:], 1):
            child = node.fields.get(part)
            if child is None:
                child = node.fields[part] = HostTable(".".join(map(str, parts[: i + 1])))
            node = child
        return node

    def _place(self, path: str) -> tuple[Any, Any]:
        parts = _parts(path)
        if len(parts) == 1:
            return None, parts[0]
        return self.table(".".join(path.split(".")[:-1])), parts[-1]

    def constant(self, path: str, value: Any) -> None:
        self.object(path, value)

    def object(self, path: str, value: Any) -> None:
        """Put a value (a constant, a :class:`HostObject` such as a reading buffer) at ``path``."""
        parent, key = self._place(path)
        if parent is None:
            self.machine.host[key] = value
        else:
            parent.fields[key] = value

    def attribute(self, path: str, get: Callable[[], Any], setter: Callable[[Any], None] | None = None) -> None:
        parent, key = self._place(path)
        if parent is None:
            raise ValueError(f"an attribute needs a table: {path!r}")
        parent.props[key] = _Property(get, setter)

    def function(self, path: str, fn: Callable[..., Any]) -> None:
        self.object(path, HostFunction(path, fn))

    # -- running -------------------------------------------------------------------------------
    def _print(self, *values: Any) -> None:
        line = "\t".join(format_value(v, self.precision) for v in values)
        self.machine.budget.charge(len(line) + 1)
        self._printed.append(line)

    def emit(self, data: str | bytes) -> None:
        """Output of a host function (``printbuffer``, ``printnumber``), as print's is."""
        self.machine.budget.charge(len(data) + 1)
        self._printed.append(data)

    def execute(self, chunk: str, printed: list[Any] | None = None) -> list[Any]:
        """Run one chunk; return the printed lines. Raises :class:`TspError`.

        ``printed``: the list to print into; whatever error stops the chunk, it keeps what
        was printed before (a :class:`TspError` carries it as ``printed`` too).
        """
        printed = [] if printed is None else printed
        m = self.machine
        try:
            fn = m.load(chunk)
        except LuaSyntaxError as exc:
            raise TspSyntaxError(exc.message) from None
        except RecursionError:
            raise TspSyntaxError("TSP Syntax error at line 1: chunk has too many syntax levels") from None
        self._printed = printed
        m.budget.start()
        m.depth = 0
        m.line = 1
        try:
            m.call(fn, ())
            self._check_heap()
        except TspError as exc:
            exc.printed = printed  # type: ignore[attr-defined]
            raise
        except (LuaError, RecursionError) as exc:
            message = exc.message if isinstance(exc, LuaError) else "stack overflow"
            err = TspRuntimeError(f"TSP Runtime error at line {m.line}: {message}")
            err.printed = printed  # type: ignore[attr-defined]
            raise err from None
        return printed

    def _check_heap(self) -> None:
        """Script globals bigger than MAX_HEAP are cleared, as a full script memory would refuse them."""
        if not self.machine.budget.alloc:
            return
        if _size(self.machine.user, MAX_HEAP) > MAX_HEAP:
            self.machine.user = LuaTable()
            raise TspRuntimeError("TSP Runtime error: not enough memory (script variables cleared)")


def _size(value: Any, limit: int) -> int:
    """Approximate bytes held by ``value`` (strings and table slots), counted up to ``limit``."""
    total, seen, todo = 0, set(), [value]
    while todo and total <= limit:
        v = todo.pop()
        if type(v) is str:
            total += len(v)
        elif type(v) is LuaTable and id(v) not in seen:
            seen.add(id(v))
            total += 40 * len(v.hash)
            for k, x in v.items():
                todo.append(k)
                todo.append(x)
    return total


# -- the instruments -------------------------------------------------------------------------
UNDEFINED_HEADER = -113
PARAMETER_ERROR = 1104  # a TSP function got an argument of the wrong type
PARAMETER_TOO_SMALL = 1103


def number_argument(value: Any, what: str) -> float:
    """A TSP number argument (booleans and strings are not numbers in Lua)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TspError(f"Parameter error {what}: number expected, got {type_name(value)}", PARAMETER_ERROR)
    return float(value)


class _Script(HostObject):
    """A named script (``loadscript name`` ... ``endscript``): ``name()`` or ``name.run()`` runs it."""

    def __init__(self, interpreter: TspInterpreter, name: str, fn: Any, source: str) -> None:
        self.lua_name = name
        self._t = interpreter
        self._fn = fn
        self.source = source

    def lua_call(self, *args: Any) -> tuple[Any, ...]:
        return self._t.machine.call(self._fn, ())

    def lua_get(self, key: Any) -> Any:
        if key == "run":
            return HostFunction(f"{self.lua_name}.run", lambda *a: self.lua_call())
        if key == "name":
            return self.lua_name
        if key == "source":
            return self.source
        return None


from .tsp_base import TspInstrument  # noqa: E402  (the instrument base builds on the interpreter)

__all__ = [
    "PARAMETER_ERROR", "PARAMETER_TOO_SMALL", "RUNTIME_ERROR", "SYNTAX_ERROR", "TspError", "TspInstrument",
    "TspInterpreter", "TspRuntimeError", "TspSyntaxError", "format_value", "number_argument", "HostTable",
]
