"""The Lua standard library a TSP script may use, and nothing that reaches outside the instrument.

Base functions (``tostring``, ``tonumber``, ``type``, ``pairs``, ``ipairs``, ``next``,
``select``, ``unpack``, ``error``, ``pcall``, ``assert``, ``rawget``, ``rawset``,
``rawequal``), ``string`` (``format``, ``len``, ``sub``, ``upper``, ``lower``, ``rep``,
``byte``, ``char``, ``reverse``, ``find`` with plain text), ``math`` and ``table``
(``insert``, ``remove``, ``getn``, ``concat``, ``sort``). Absent on purpose: ``os``,
``io``, ``require``, ``dofile``, ``loadfile``, ``loadstring``, ``load``, ``debug``,
``setfenv``/``getfenv``, ``collectgarbage``, ``string.dump``, metatables. Every string
built here is charged to the message's memory budget; format widths are bounded.
"""
from __future__ import annotations

import functools
import math
import random
import re
from typing import Any

from .lua_runtime import (
    HostFunction, HostObject, LuaError, LuaLimitError, LuaTable, lua_eq, to_number, tostring, type_name,
)

_FORMAT = re.compile(r"%([-+ #0]{0,5})(\d{0,2})(?:\.(\d{1,2}))?([diouxXeEfgGcsq%])")


def _num(v: Any, fname: str, i: int) -> float:
    n = to_number(v)
    if n is None:
        raise LuaError(f"bad argument #{i} to '{fname}' (number expected, got {type_name(v)})")
    return n


def _str(v: Any, fname: str, i: int) -> str:
    if type(v) in (str, float, int):
        return tostring(v)
    raise LuaError(f"bad argument #{i} to '{fname}' (string expected, got {type_name(v)})")


def _table(v: Any, fname: str, i: int = 1) -> LuaTable:
    if type(v) is not LuaTable:
        raise LuaError(f"bad argument #{i} to '{fname}' (table expected, got {type_name(v)})")
    return v


def _quoted(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\0", "\\000") + '"'


def lua_format(fmt: Any, *args: Any) -> str:
    """string.format: C conversions, widths and precisions of at most two digits."""
    fmt = _str(fmt, "format", 1)
    out: list[str] = []
    pos, argi = 0, 0
    while True:
        at = fmt.find("%", pos)
        if at < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:at])
        m = _FORMAT.match(fmt, at)
        if m is None:
            raise LuaError("invalid option to 'format'")
        pos = m.end()
        flags, width, prec, conv = m.groups()
        if conv == "%":
            out.append("%")
            continue
        if argi >= len(args):
            raise LuaError(f"bad argument #{argi + 2} to 'format' (no value)")
        arg = args[argi]
        argi += 1
        spec = "%" + flags + width + (f".{prec}" if prec is not None else "")
        if conv in "dioxXc":
            n = int(_num(arg, "format", argi + 1))
            out.append((spec + "c") % (n % 256) if conv == "c" else (spec + ("d" if conv == "i" else conv)) % n)
        elif conv in "eEfgG":
            out.append((spec + conv) % _num(arg, "format", argi + 1))
        elif conv == "u":
            out.append((spec + "d") % abs(int(_num(arg, "format", argi + 1))))
        elif conv == "q":
            out.append(_quoted(_str(arg, "format", argi + 1)))
        else:
            out.append((spec + "s") % tostring(arg))
    return "".join(out)


def _sub(s: Any, i: Any = 1.0, j: Any = -1.0) -> str:
    s = _str(s, "sub", 1)
    n = len(s)
    a, b = int(_num(i, "sub", 2)), int(_num(j, "sub", 3))
    a = a + n + 1 if a < 0 else a
    b = b + n + 1 if b < 0 else b
    a, b = max(a, 1), min(b, n)
    return s[a - 1:b] if a <= b else ""


def _find(s: Any, pattern: Any, init: Any = 1.0, plain: Any = None) -> Any:
    s, p = _str(s, "find", 1), _str(pattern, "find", 2)
    if not plain and re.search(r"[\^$*+?.(\[%-]", p):
        raise LuaError("string.find: patterns are not supported by this instrument; pass plain = true")
    start = int(_num(init, "find", 3))
    start = max(start + len(s) + 1 if start < 0 else start, 1)
    at = s.find(p, start - 1)
    return (float(at + 1), float(at + len(p))) if at >= 0 else None


def _string_lib(m: Any) -> LuaTable:
    def rep(s: Any, n: Any) -> str:
        s, count = _str(s, "rep", 1), int(_num(n, "rep", 2))
        if count <= 0 or not s:
            return ""
        if len(s) * count > m.budget.max_string:
            raise LuaLimitError(f"string too long ({len(s) * count} > {m.budget.max_string} characters)")
        return m.budget.string(s * count)

    def byte(s: Any, i: Any = 1.0, j: Any = None) -> tuple[float, ...]:
        part = _sub(s, i, i if j is None else j)
        return tuple(float(ord(c)) for c in part)

    def char(*codes: Any) -> str:
        return m.budget.string("".join(chr(int(_num(c, "char", k + 1)) % 256) for k, c in enumerate(codes)))

    fns = {
        "format": lambda *a: m.budget.string(lua_format(*a)),
        "len": lambda s: float(len(_str(s, "len", 1))),
        "sub": _sub,
        "upper": lambda s: _str(s, "upper", 1).upper(),
        "lower": lambda s: _str(s, "lower", 1).lower(),
        "reverse": lambda s: _str(s, "reverse", 1)[::-1],
        "rep": rep, "byte": byte, "char": char, "find": _find,
    }
    return LuaTable({k: HostFunction(f"string.{k}", f) for k, f in fns.items()})


def _math_lib() -> LuaTable:
    def one(name: str, f: Any) -> HostFunction:
        def wrapped(x: Any = None) -> float:
            try:
                return float(f(_num(x, name, 1)))
            except (ValueError, OverflowError):
                return math.nan

        return HostFunction(f"math.{name}", wrapped)

    t = LuaTable({name: one(name, f) for name, f in {
        "abs": abs, "ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt, "exp": math.exp,
        "log": math.log, "log10": math.log10, "sin": math.sin, "cos": math.cos, "tan": math.tan,
        "asin": math.asin, "acos": math.acos, "atan": math.atan, "deg": math.degrees, "rad": math.radians,
    }.items()})
    rng = random.Random(0)

    def rand(lo: Any = None, hi: Any = None) -> float:
        if lo is None:
            return rng.random()
        a, b = (1, int(_num(lo, "random", 1))) if hi is None else (int(_num(lo, "random", 1)), int(_num(hi, "random", 2)))
        if a > b:
            raise LuaError("bad argument to 'random' (interval is empty)")
        return float(rng.randint(a, b))

    extra = {
        "max": lambda *xs: max(_num(x, "max", i + 1) for i, x in enumerate(xs)) if xs else _num(None, "max", 1),
        "min": lambda *xs: min(_num(x, "min", i + 1) for i, x in enumerate(xs)) if xs else _num(None, "min", 1),
        "pow": lambda x, y: _pow(_num(x, "pow", 1), _num(y, "pow", 2)),
        "mod": lambda x, y: math.fmod(_num(x, "mod", 1), _num(y, "mod", 2)),
        "fmod": lambda x, y: math.fmod(_num(x, "fmod", 1), _num(y, "fmod", 2)),
        "modf": lambda x: (float(math.trunc(_num(x, "modf", 1))), math.modf(_num(x, "modf", 1))[0]),
        "random": rand, "randomseed": lambda s=None: rng.seed(_num(s, "randomseed", 1)),
    }
    for name, f in extra.items():
        t.set(name, HostFunction(f"math.{name}", f))
    t.set("pi", math.pi)
    t.set("huge", math.inf)
    return t


def _pow(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except (OverflowError, ValueError):
        return math.inf if abs(x) > 1 else math.nan


def _table_lib(m: Any) -> LuaTable:
    def insert(t: Any, *args: Any) -> None:
        t = _table(t, "insert")
        if len(args) == 1:
            m.set_table(t, float(t.n + 1), args[0])
            return
        if len(args) != 2:
            raise LuaError("wrong number of arguments to 'insert'")
        pos = int(_num(args[0], "insert", 2))
        for k in range(t.n, pos - 1, -1):
            m.budget.step()
            t.set(float(k + 1), t.get(float(k)))
        m.set_table(t, float(pos), args[1])

    def remove(t: Any, pos: Any = None) -> Any:
        t = _table(t, "remove")
        n = t.n
        if n == 0:
            return None
        p = n if pos is None else int(_num(pos, "remove", 2))
        value = t.get(float(p))
        for k in range(p, n):
            m.budget.step()
            t.set(float(k), t.get(float(k + 1)))
        t.set(float(n), None)
        return value

    def concat(t: Any, sep: Any = "", i: Any = 1.0, j: Any = None) -> str:
        t = _table(t, "concat")
        last = t.n if j is None else int(_num(j, "concat", 4))
        parts = [_str(t.get(float(k)), "concat", 1) for k in range(int(_num(i, "concat", 3)), last + 1)]
        return m.budget.string(_str(sep, "concat", 2).join(parts))

    def sort(t: Any, comp: Any = None) -> None:
        t = _table(t, "sort")
        values = [t.get(float(k)) for k in range(1, t.n + 1)]

        def cmp(x: Any, y: Any) -> int:
            if comp is not None:
                less = m.call(comp, (x, y))
                return -1 if less and less[0] not in (None, False) else 1
            from .lua_runtime import compare

            return -1 if compare("<", x, y) else (1 if compare("<", y, x) else 0)

        values.sort(key=functools.cmp_to_key(cmp))
        for k, v in enumerate(values, 1):
            t.set(float(k), v)

    fns = {"insert": insert, "remove": remove, "concat": concat, "sort": sort,
           "getn": lambda t: float(_table(t, "getn").n)}
    return LuaTable({k: HostFunction(f"table.{k}", f) for k, f in fns.items()})


def _iterate(items: list[tuple[Any, Any]]) -> HostFunction:
    it = iter(items)

    def step(*_: Any) -> Any:
        for k, v in it:
            if v is not None:
                return (k, v)
        return None

    return HostFunction("next", step)


def _base(m: Any) -> dict[str, Any]:
    def pairs(t: Any) -> tuple[Any, ...]:
        return (_iterate(_table(t, "pairs").items()), t, None)

    def ipairs(t: Any) -> tuple[Any, ...]:
        t = _table(t, "ipairs")

        def step(_: Any, i: Any) -> Any:
            k = i + 1.0
            v = t.get(k)
            return None if v is None else (k, v)

        return (HostFunction("ipairs_iterator", step), t, 0.0)

    def next_(t: Any, key: Any = None) -> Any:
        items = [(k, v) for k, v in _table(t, "next").items() if v is not None]
        if key is None:
            return items[0] if items else None
        for n, (k, _) in enumerate(items):
            if lua_eq(k, key):
                return items[n + 1] if n + 1 < len(items) else None
        raise LuaError("invalid key to 'next'")

    def select(n: Any, *args: Any) -> Any:
        if n == "#":
            return float(len(args))
        i = int(_num(n, "select", 1))
        if i < 1:
            raise LuaError("bad argument #1 to 'select' (index out of range)")
        return tuple(args[i - 1:])

    def unpack(t: Any, i: Any = 1.0, j: Any = None) -> tuple[Any, ...]:
        t = _table(t, "unpack")
        last = t.n if j is None else int(_num(j, "unpack", 3))
        first = int(_num(i, "unpack", 2))
        if last - first > 10_000:
            raise LuaError("too many results to unpack")
        return tuple(t.get(float(k)) for k in range(first, last + 1))

    def error(message: Any = None, level: Any = None) -> None:
        raise LuaError(tostring(message) if type(message) in (str, float) else message, message)

    def pcall(f: Any = None, *args: Any) -> tuple[Any, ...]:
        try:
            return (True,) + m.call(f, args)
        except LuaLimitError:
            raise
        except LuaError as exc:
            return (False, exc.value if exc.value is not None else exc.message)

    def assert_(v: Any = None, message: Any = "assertion failed!", *rest: Any) -> tuple[Any, ...]:
        if v is None or v is False:
            raise LuaError(tostring(message), message)
        return (v, message) + rest

    def tonumber(v: Any = None, base: Any = None) -> Any:
        if base is None:
            return to_number(v) if type(v) in (str, float) else None
        try:
            return float(int(_str(v, "tonumber", 1).strip(), int(_num(base, "tonumber", 2))))
        except ValueError:
            return None

    def rawset(t: Any, k: Any, v: Any) -> Any:
        m.set_table(_table(t, "rawset"), k, v)
        return t

    fns = {
        "pairs": pairs, "ipairs": ipairs, "next": next_, "select": select, "unpack": unpack,
        "error": error, "pcall": pcall, "assert": assert_, "tonumber": tonumber, "rawset": rawset,
        "tostring": lambda v=None: m.budget.string(tostring(v)),
        "type": lambda v=None: type_name(v),
        "rawget": lambda t, k: _table(t, "rawget").get(k),
        "rawequal": lambda a, b: lua_eq(a, b),
    }
    return {k: HostFunction(k, f) for k, f in fns.items()}


def install(m: Any) -> None:
    """Put the standard library into machine ``m``'s protected globals."""
    m.host.update(_base(m))
    m.host["string"] = _string_lib(m)
    m.host["math"] = _math_lib()
    m.host["table"] = _table_lib(m)


__all__ = ["install", "lua_format", "HostObject"]
