"""The TSP Lua machine: globals, calls, indexing, concatenation, and loading chunks.

:class:`Machine` holds the global environment (the host's protected names and the
script's own globals), the :class:`~sim_backend.instruments.lua_runtime.Budget` of the
running message and the operations every compiled closure calls. :meth:`Machine.load`
parses and compiles a chunk (:mod:`~sim_backend.instruments.lua_compile`) into a
:class:`~sim_backend.instruments.lua_runtime.LuaFunction`.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .lua_compile import Compiler
from .lua_parse import parse
from .lua_runtime import (
    MAX_DEPTH, SLOT_BYTES, Activation, Budget, HostFunction, HostObject, LuaError, LuaFunction,
    LuaLimitError, LuaTable, Proto, Return, to_lua, tostring, type_name,
)

# A driver sends the same few command chunks thousands of times, and parsing and compiling
# one costs more than running it (2.5-3 s of a 22 s profiled film training). A compiled chunk depends on its text and name alone (globals are
# looked up when it runs, locals live in frames made per call, the budget object is the
# machine's for its lifetime), so it is kept by (text, name) and run afresh each time.
CHUNK_CACHE_SIZE = 256  # distinct chunks kept (least recently used dropped first)
CHUNK_CACHE_MAX_CHARS = 16_384  # longer chunks (uploaded scripts) are compiled every time


class Machine:
    """One Lua state: host globals (read-only names), script globals, the running budget."""

    def __init__(self) -> None:
        self.host: dict[str, Any] = {}
        self.user = LuaTable()
        self.budget = Budget()
        self.depth = 0
        self.line = 1
        self._chunks: OrderedDict[tuple[str, str], Proto] = OrderedDict()

    # -- globals ----------------------------------------------------------------------------
    def get_global(self, name: str) -> Any:
        v = self.host.get(name)
        return v if v is not None else self.user.get(name)

    def set_global(self, name: str, value: Any) -> None:
        if name in self.host:
            raise LuaError(f"cannot assign '{name}' (an instrument name)")
        self.set_table(self.user, name, value)

    # -- operations --------------------------------------------------------------------------
    def index(self, obj: Any, key: Any, desc: str = "") -> Any:
        if type(obj) is LuaTable:
            return obj.get(key)
        if isinstance(obj, HostObject):
            return to_lua(obj.lua_get(key))
        if type(obj) is str:
            lib = self.host.get("string")
            return lib.get(key) if isinstance(lib, LuaTable) else None
        where = f" ({desc})" if desc else ""
        raise LuaError(f"attempt to index a {type_name(obj)} value{where}")

    def set_table(self, t: LuaTable, key: Any, value: Any) -> None:
        if key is None:
            raise LuaError("table index is nil")
        if key != key:
            raise LuaError("table index is NaN")
        if value is not None and t.get(key) is None:
            self.budget.charge(SLOT_BYTES)
        t.set(key, value)

    def setindex(self, obj: Any, key: Any, value: Any, desc: str = "") -> None:
        if type(obj) is LuaTable:
            self.set_table(obj, key, value)
        elif isinstance(obj, HostObject):
            obj.lua_set(key, value)
        else:
            where = f" ({desc})" if desc else ""
            raise LuaError(f"attempt to index a {type_name(obj)} value{where}")

    def call(self, fn: Any, args: tuple[Any, ...], desc: str = "") -> tuple[Any, ...]:
        self.budget.step()
        if type(fn) is LuaFunction:
            p = fn.proto
            if self.depth >= MAX_DEPTH:
                raise LuaLimitError("stack overflow")
            frame: list[Any] = [None] * p.nslots
            for i in range(p.nparams):
                frame[i] = [args[i] if i < len(args) else None]
            self.depth += 1
            try:
                r = p.body(Activation(frame, fn.upvals, args[p.nparams:] if p.vararg else ()))
            finally:
                self.depth -= 1
            return r.values if type(r) is Return else ()
        if type(fn) is HostFunction:
            try:
                result = fn.fn(*args)
            except TypeError as exc:
                raise LuaError(f"bad argument to '{fn.name}' ({exc})") from None
            if type(result) is tuple:
                return tuple(to_lua(v) for v in result)
            return (to_lua(result),)
        call = getattr(fn, "lua_call", None)
        if call is not None:
            return tuple(to_lua(v) for v in (call(*args) or ()))
        where = f" ({desc})" if desc else ""
        raise LuaError(f"attempt to call a {type_name(fn)} value{where}")

    def concat(self, a: Any, b: Any) -> str:
        ta, tb = type(a), type(b)
        if ta not in (str, float, int) or tb not in (str, float, int):
            bad = a if ta not in (str, float, int) else b
            raise LuaError(f"attempt to concatenate a {type_name(bad)} value")
        return self.budget.string(tostring(a) + tostring(b))

    def length(self, v: Any) -> float:
        if type(v) is str:
            return float(len(v))
        if type(v) is LuaTable:
            return float(v.n)
        if isinstance(v, HostObject):
            return float(v.lua_len())
        raise LuaError(f"attempt to get length of a {type_name(v)} value")

    # -- loading -----------------------------------------------------------------------------
    def load(self, text: str, name: str = "chunk") -> LuaFunction:
        """Parse and compile ``text`` (raises LuaSyntaxError; nothing runs)."""
        key = (text, name)
        proto = self._chunks.get(key)
        if proto is not None:
            self._chunks.move_to_end(key)
            return LuaFunction(proto, [])
        proto = Compiler(self).chunk(parse(text), name)
        if len(text) <= CHUNK_CACHE_MAX_CHARS:
            self._chunks[key] = proto
            if len(self._chunks) > CHUNK_CACHE_SIZE:
                self._chunks.popitem(last=False)
        return LuaFunction(proto, [])
