"""Values and evaluation of the TSP Lua subset: a compiler from the syntax tree of
:mod:`~sim_backend.instruments.lua_parse` to Python closures, run under a budget.

Values: ``None`` (nil), ``bool``, ``float`` (every Lua number is a double, as in Lua 5.0),
``str``, :class:`LuaTable`, :class:`LuaFunction` (closures with upvalues), and the host's
:class:`HostObject` (instrument tables such as ``smua.source``) and :class:`HostFunction`.
A script can reach only what the host registered: there is no file, OS, module or
debug access, and no way from a Lua value to a Python attribute.

Every message runs under a :class:`Budget`: a number of steps (statements and loop turns),
a call depth, bytes of strings and table slots allocated, and wall time; going over raises
:class:`LuaLimitError`, which ``pcall`` cannot catch. Locals are cells in a frame list,
resolved at compile time; closures capture the cells (fresh per loop turn, as in Lua 5.1).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

MAX_STEPS = 400_000
MAX_DEPTH = 100  # Lua calls deep (each costs ~10 Python frames)
MAX_ALLOC = 16_000_000  # bytes of strings and table slots one message may allocate
MAX_STRING = 1_000_000
MAX_SECONDS = 5.0
SLOT_BYTES = 40


class LuaError(Exception):
    """A run-time error a script can catch with pcall; ``value`` is what error() raised."""

    def __init__(self, message: Any, value: Any = None) -> None:
        super().__init__(message)
        self.message = str(message)
        self.value = message if value is None else value


class LuaLimitError(LuaError):
    """A budget ran out (steps, memory, depth, time): the message stops, whatever pcall says."""


@dataclass
class Budget:
    max_steps: int = MAX_STEPS
    max_alloc: int = MAX_ALLOC
    max_string: int = MAX_STRING
    max_seconds: float = MAX_SECONDS
    steps: int = 0
    alloc: int = 0
    deadline: float = field(default=0.0)

    def start(self) -> None:
        self.steps = 0
        self.alloc = 0
        self.deadline = time.monotonic() + self.max_seconds

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.max_steps:
            raise LuaLimitError(f"instruction limit exceeded ({self.max_steps} steps in one message)")
        if not self.steps & 1023 and time.monotonic() > self.deadline:
            raise LuaLimitError(f"time limit exceeded ({self.max_seconds:g} s in one message)")

    def charge(self, nbytes: int) -> None:
        self.alloc += nbytes
        if self.alloc > self.max_alloc:
            raise LuaLimitError("not enough memory")

    def string(self, s: str) -> str:
        if len(s) > self.max_string:
            raise LuaLimitError(f"string too long ({len(s)} > {self.max_string} characters)")
        self.charge(len(s))
        return s


# -- values --------------------------------------------------------------------------------
_TRUE, _FALSE = object(), object()  # bool keys apart from 1.0/0.0 in a dict


def _key(k: Any) -> Any:
    if k is True:
        return _TRUE
    if k is False:
        return _FALSE
    if type(k) is int:
        return float(k)
    return k


def _unkey(k: Any) -> Any:
    return True if k is _TRUE else False if k is _FALSE else k


class LuaTable:
    __slots__ = ("hash", "n")

    def __init__(self, items: dict[Any, Any] | None = None) -> None:
        self.hash: dict[Any, Any] = {}
        self.n = 0  # a border: t[n] ~= nil and t[n+1] == nil
        for k, v in (items or {}).items():
            self.set(k, v)

    def get(self, key: Any) -> Any:
        return self.hash.get(_key(key))

    def set(self, key: Any, value: Any) -> None:
        k = _key(key)
        if value is None:
            self.hash.pop(k, None)
            if type(k) is float and 1 <= k <= self.n:
                self.n = int(k) - 1
            return
        self.hash[k] = value
        if k == self.n + 1:
            n = self.n + 1
            while (n + 1.0) in self.hash:
                n += 1
            self.n = n

    def items(self) -> list[tuple[Any, Any]]:
        return [(_unkey(k), v) for k, v in self.hash.items()]

    @classmethod
    def array(cls, values: Any) -> "LuaTable":
        t = cls()
        for i, v in enumerate(values, 1):
            t.set(float(i), to_lua(v))
        return t


class HostObject:
    """An instrument table: subclasses answer ``lua_get``/``lua_set``; unknown keys read nil."""

    lua_name = "table"

    def lua_get(self, key: Any) -> Any:
        return None

    def lua_set(self, key: Any, value: Any) -> None:
        raise LuaError(f"cannot assign '{self.lua_name}.{key}'")

    def lua_len(self) -> float:
        return 0.0


@dataclass(frozen=True, eq=False)
class HostFunction:
    name: str
    fn: Callable[..., Any]


@dataclass(eq=False)
class Proto:
    name: str
    nparams: int
    vararg: bool
    nslots: int
    upvals: list[tuple[bool, int]]
    body: Callable[["Activation"], Any]


@dataclass(eq=False)
class LuaFunction:
    proto: Proto
    upvals: list[list[Any]]


class Activation:
    __slots__ = ("f", "u", "v")

    def __init__(self, frame: list[Any], upvals: list[list[Any]], varargs: tuple[Any, ...]) -> None:
        self.f = frame
        self.u = upvals
        self.v = varargs


class Return:
    __slots__ = ("values",)

    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = values


BREAK = object()


def to_lua(value: Any) -> Any:
    """A host value as a Lua value (ints become numbers, lists tables)."""
    if value is None or isinstance(value, (bool, float, str, LuaTable, HostObject, HostFunction, LuaFunction)):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, (list, tuple)):
        return LuaTable.array(value)
    raise TypeError(f"host value {type(value).__name__} has no Lua form")


def type_name(v: Any) -> str:
    if v is None:
        return "nil"
    t = type(v)
    if t is bool:
        return "boolean"
    if t is float or t is int:
        return "number"
    if t is str:
        return "string"
    if t is LuaFunction or t is HostFunction:
        return "function"
    return "table"


def number_to_string(x: float) -> str:
    """tostring(number) as Lua does: ``%.14g``."""
    if x != x:
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return "%.14g" % x


def to_number(v: Any) -> float | None:
    """Lua's coercion of a number or numeric string; None if it is neither."""
    t = type(v)
    if t is float:
        return v
    if t is int:
        return float(v)
    if t is str:
        s = v.strip()
        try:
            return float(int(s, 16)) if s.lower().startswith(("0x", "-0x")) else float(s)
        except ValueError:
            return None
    return None


def tostring(v: Any) -> str:
    t = type(v)
    if t is str:
        return v
    if t is float or t is int:
        return number_to_string(float(v))
    if v is None:
        return "nil"
    if t is bool:
        return "true" if v else "false"
    return f"{type_name(v)}: 0x{id(v) & 0xFFFFFFFF:08x}"


def truthy(v: Any) -> bool:
    return v is not None and v is not False


def lua_eq(a: Any, b: Any) -> bool:
    if a is b:
        return True
    ta, tb = type(a), type(b)
    if ta in (float, int) and tb in (float, int):
        return a == b
    if ta is not tb:
        return False
    return (ta is str and a == b) or (ta is bool and a == b)


def arith(op: str, a: Any, b: Any, desc: str = "") -> float:
    x, y = to_number(a), to_number(b)
    if x is None or y is None:
        bad = a if x is None else b
        where = f" ({desc})" if desc else ""
        raise LuaError(f"attempt to perform arithmetic on a {type_name(bad)} value{where}")
    try:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            return x / y if y else (math.copysign(math.inf, x) * math.copysign(1, y) if x else math.nan)
        if op == "%":
            return x - math.floor(x / y) * y if y else math.nan
        return math.pow(x, y)
    except OverflowError:
        return math.inf
    except (ValueError, ZeroDivisionError):
        return math.nan


def compare(op: str, a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if not ((ta in (float, int) and tb in (float, int)) or (ta is str and tb is str)):
        if type_name(a) == type_name(b):
            raise LuaError(f"attempt to compare two {type_name(a)} values")
        raise LuaError(f"attempt to compare {type_name(a)} with {type_name(b)}")
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b
